"""Pictures of what a net predicts, as RGB arrays (H, W, 3) uint8 for TensorBoard's add_image.

- confusion matrix (classification): rows are true classes, columns predictions;
  cells are coloured by the share of their row (recall) and labelled with counts
- decision boundary (2-D classification data): the predicted class over the plane,
  with the training points on top (the perceptron's line, the MLP's curve), a key of
  the class colours and the input axes' values
- predictions vs targets (regression): one dot per sample and target, y = x dashed

Drawn without matplotlib, whose figures cost ~50 ms each (the first ~0.4 s: fonts,
Agg), while the epochs of the default run take ~10 ms: numpy arrays composed
directly, Pillow only for the glyphs (neuralab.diagnostics.raster). A 10-class confusion
matrix costs ~0.7 ms; the decision boundary adds one forward pass of GRID^2 points.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from neuralab.diagnostics import raster
from neuralab.nets.perceptron import scores_to_classes

CHUNK = 4096  # rows per forward pass, so a large split never needs one huge batch
# The net is evaluated on GRID x GRID points; its scores are interpolated to the PLOT x PLOT
# raster. The forward pass dominates (200^2 points took ~30-70 ms on a CPU core, 64^2 ~1 ms)
# and a boundary between grid points is placed by the interpolated scores, not a staircase
# (exact for the perceptron: bilinear interpolation of a linear score is that score).
GRID = 64
PLOT = 280  # the plot area's side, in pixels: pictures ~340 px wide
MAX_LEGEND = 10  # classes keyed in the decision boundary's legend (more would hide the plot)


@torch.no_grad()
def predict(net: nn.Module, x: Tensor, device: torch.device) -> Tensor:
    """net(x) in eval mode, on `device`, in chunks: (N, F) -> (N, K) on the CPU."""
    was_training = net.training
    net.eval()
    try:
        return torch.cat(
            [net(x[i : i + CHUNK].to(device)).float().cpu() for i in range(0, len(x), CHUNK)]
        )
    finally:
        net.train(was_training)


def confusion_matrix_image(targets: Tensor, outputs: Tensor, num_classes: int) -> np.ndarray:
    """targets (N,) class indices, outputs (N, K) scores -> an RGB image."""
    k = num_classes
    preds = scores_to_classes(outputs.cpu()).numpy()
    # numpy from here: each torch call costs ~5-10 us on arrays this small
    counts = np.bincount(targets.cpu().numpy() * k + preds, minlength=k**2).reshape(k, k)
    recall = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)  # (K, K), rows sum to 1
    cell = max(1, round(PLOT / k))  # large K: cells of a few pixels, no text
    # One row of pixels per class, copied down its cell: ~0.03 ms for 10 classes, where
    # repeating the full image's rows as well cost ~0.4 ms (a slow strided copy).
    rows = np.repeat(raster.blues(recall), cell, axis=1)  # (K, K * cell, 3)
    plot = np.empty((k, cell, *rows.shape[1:]), dtype=np.uint8)
    plot[:] = rows[:, None]
    plot = plot.reshape(k * cell, k * cell, 3)
    ticks = []
    if k <= 20:  # beyond that the numbers would not fit in their cells
        size = min(12, max(7, cell // 2))
        # Python lists: indexing numpy arrays cell by cell cost ~2 us a cell
        number, dark = counts.tolist(), (recall > 0.5).tolist()
        for i, j in np.argwhere(counts).tolist():  # empty cells stay blank
            color = raster.WHITE if dark[i][j] else raster.BLACK
            centre = (j * cell + cell // 2, i * cell + cell // 2)
            raster.text(plot, str(number[i][j]), *centre, color=color, size=size)
        ticks = [(c * cell + cell // 2, str(c)) for c in range(k)]
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    return raster.framed(plot, f"accuracy {accuracy:.3f}", "predicted", "true", ticks, ticks)


def _grid(x: Tensor) -> tuple[Tensor, tuple[float, float, float, float]]:
    """GRID^2 points (GRID^2, 2) over x (N, 2) with a 10% margin, row by row from the
    bottom, and their extent (x0, x1, y0, y1): the first and last grid lines."""
    low, high = x.min(dim=0).values, x.max(dim=0).values
    pad = (high - low).clamp_min(1e-3) * 0.1
    (x0, y0), (x1, y1) = (low - pad).tolist(), (high + pad).tolist()
    gx, gy = torch.meshgrid(
        torch.linspace(x0, x1, GRID), torch.linspace(y0, y1, GRID), indexing="xy"
    )  # (GRID, GRID) each: row = y, column = x
    return torch.stack([gx.flatten(), gy.flatten()], dim=1), (x0, x1, y0, y1)


def _regions(scores: Tensor) -> np.ndarray:
    """Grid scores (GRID^2, C), rows from the bottom -> classes (PLOT, PLOT), top row first:
    scores_to_classes of the scores interpolated to every pixel."""
    planes = scores.reshape(GRID, GRID, -1).permute(2, 0, 1)[None]  # (1, C, GRID, GRID)
    if planes.shape[1] == 2:  # arg-max of two: the sign of their (linearly interpolated) gap
        planes = planes[:, 1:] - planes[:, :1]
    # align_corners: the grid's first and last lines fall on the first and last pixels.
    fine = torch.nn.functional.interpolate(
        planes, size=(PLOT, PLOT), mode="bilinear", align_corners=True
    )[0]  # (C', PLOT, PLOT)
    # max(dim=0) is ~20x faster than argmax over this strided dim; like argmax (and "> 0"
    # for two), it gives the first of tied classes.
    classes = (fine[0] > 0).long() if len(fine) == 1 else fine.max(dim=0).indices
    return classes.flip(0).numpy()  # image rows run downwards, y upwards


def decision_boundary_image(
    net: nn.Module, x: Tensor, y: Tensor, num_classes: int, device: torch.device
) -> np.ndarray:
    """The predicted class of every point around x (N, 2), with the points y (N,) on top."""
    x = x.float().cpu()
    points, (x0, x1, y0, y1) = _grid(x)
    regions = _regions(predict(net, points, device))
    colors = raster.class_colors(max(num_classes, int(regions.max()) + 1))
    # (PLOT, PLOT, 3) light class colours; np.take: ~5x faster than indexing with [regions]
    plot = np.take(raster.lighten(colors), regions, axis=0)
    # Pixel centres run from the first grid line to the last, origin lower-left.
    cols = (x[:, 0].numpy() - x0) / (x1 - x0) * (PLOT - 1)
    rows = (y1 - x[:, 1].numpy()) / (y1 - y0) * (PLOT - 1)
    point_colors = colors[y.cpu().numpy() % len(colors)]
    raster.dots(plot, rows, cols, point_colors, radius=1.5, outline=(30, 30, 30))
    x_ticks = [((v - x0) / (x1 - x0) * (PLOT - 1), f"{v:g}") for v in raster.nice_ticks(x0, x1)]
    y_ticks = [((y1 - v) / (y1 - y0) * (PLOT - 1), f"{v:g}") for v in raster.nice_ticks(y0, y1)]
    image = raster.framed(plot, "predicted class; training points", "x0", "x1", x_ticks, y_ticks)
    if len(colors) > MAX_LEGEND:  # a key of many colours would be taller than the plot
        return image
    return raster.with_legend(image, [(colors[c], f"class {c}") for c in range(len(colors))])


def pred_vs_target_image(targets: Tensor, outputs: Tensor) -> np.ndarray:
    """targets, outputs (N, T) -> a scatter of every value, with the y = x line."""
    t = targets.detach().float().cpu().flatten().numpy()
    p = outputs.detach().float().cpu().flatten().numpy()
    rmse = float(np.sqrt(np.mean((p - t) ** 2))) if len(t) else float("nan")
    finite = np.isfinite(t) & np.isfinite(p)  # a diverged net: draw what can be drawn
    t, p = t[finite], p[finite]
    low, high = (float(min(t.min(), p.min())), float(max(t.max(), p.max()))) if len(t) else (0, 1)
    pad = max(high - low, 1e-6) * 0.05  # as matplotlib's autoscale: no dot on the border
    low, high = low - pad, high + pad
    scale = (PLOT - 1) / (high - low)  # value -> pixel, the same on both axes

    plot = np.full((PLOT, PLOT, 3), 255, dtype=np.uint8)
    raster.density_dots(plot, (high - p) * scale, (t - low) * scale, raster.TAB10[0])
    # y = x is the plot's diagonal (same range on both axes): dashed, 6 on, 4 off.
    i = np.arange(PLOT)
    i = i[i % 10 < 6]
    plot[PLOT - 1 - i, i] = (80, 80, 80)
    ticks = raster.nice_ticks(low, high)
    x_ticks = [((v - low) * scale, f"{v:g}") for v in ticks]
    y_ticks = [((high - v) * scale, f"{v:g}") for v in ticks]
    return raster.framed(plot, f"rmse {rmse:.3f}", "target", "prediction", x_ticks, y_ticks)
