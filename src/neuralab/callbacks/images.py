"""Pictures of what a net predicts, as RGB arrays (H, W, 3) for TensorBoard's add_image.

- confusion matrix (classification): rows are true classes, columns predictions;
  cells are coloured by the share of their row (recall) and labelled with counts
- decision boundary (2-D classification data): the predicted class over a grid,
  with the training points on top (the perceptron's line, the MLP's curve)
- predictions vs targets (regression): one dot per sample and target, y = x dashed

matplotlib is imported inside the functions (it costs ~0.5 s) and drawn on an Agg
canvas directly: no pyplot, no GUI backend, no global figure state.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from neuralab.nets.perceptron import scores_to_classes

CHUNK = 4096  # rows per forward pass, so a large split never needs one huge batch
GRID = 200  # decision-boundary grid: GRID x GRID points
FIGSIZE, DPI = (4.0, 4.0), 80  # 320 x 320 pixels


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


def _figure():
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGSIZE, dpi=DPI)
    # Fixed margins: tight_layout would draw the figure twice (~+30 ms an image).
    fig.subplots_adjust(left=0.15, right=0.96, bottom=0.13, top=0.92)
    return fig, fig.add_subplot()


def _to_rgb(fig) -> np.ndarray:  # -> (H, W, 3) uint8
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def confusion_matrix_image(targets: Tensor, outputs: Tensor, num_classes: int) -> np.ndarray:
    """targets (N,) class indices, outputs (N, K) scores -> an RGB image."""
    preds = scores_to_classes(outputs)
    counts = torch.bincount(targets * num_classes + preds, minlength=num_classes**2)
    counts = counts.reshape(num_classes, num_classes).numpy()
    recall = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = _figure()
    ax.imshow(recall, cmap="Blues", vmin=0, vmax=1)
    if num_classes <= 20:  # beyond that the numbers would not fit in their cells
        for i, j in zip(*np.nonzero(counts), strict=True):  # empty cells stay blank (cheaper)
            n = counts[i, j]
            color = "white" if recall[i, j] > 0.5 else "black"
            ax.text(j, i, str(n), ha="center", va="center", fontsize=7, color=color)
    ticks = range(num_classes) if num_classes <= 20 else []
    ax.set(xticks=ticks, yticks=ticks, xlabel="predicted", ylabel="true")
    ax.set_title(f"accuracy {np.trace(counts) / max(counts.sum(), 1):.3f}", fontsize=9)
    return _to_rgb(fig)


def _grid(x: Tensor) -> tuple[Tensor, tuple[float, float, float, float]]:
    """GRID^2 points (GRID^2, 2) over x (N, 2) with a 10% margin, row by row from the
    bottom, and their extent (x0, x1, y0, y1) for imshow."""
    low, high = x.min(dim=0).values, x.max(dim=0).values
    pad = (high - low).clamp_min(1e-3) * 0.1
    (x0, y0), (x1, y1) = (low - pad).tolist(), (high + pad).tolist()
    gx, gy = torch.meshgrid(
        torch.linspace(x0, x1, GRID), torch.linspace(y0, y1, GRID), indexing="xy"
    )  # (GRID, GRID) each: row = y, column = x
    return torch.stack([gx.flatten(), gy.flatten()], dim=1), (x0, x1, y0, y1)


def decision_boundary_image(
    net: nn.Module, x: Tensor, y: Tensor, num_classes: int, device: torch.device
) -> np.ndarray:
    """The predicted class of every grid point around x (N, 2), with the points y (N,)."""
    points, extent = _grid(x)
    regions = scores_to_classes(predict(net, points, device)).reshape(GRID, GRID)
    fig, ax = _figure()
    colors = {"cmap": "coolwarm" if num_classes == 2 else "tab10"}
    colors.update(vmin=-0.5, vmax=num_classes - 0.5)  # class k -> the k-th colour
    # A raster of the regions: as sharp as contourf at this size, and several times cheaper.
    ax.imshow(
        regions.numpy(),
        origin="lower",
        extent=extent,
        aspect="auto",
        alpha=0.35,
        interpolation="nearest",
        **colors,
    )
    ax.scatter(x[:, 0], x[:, 1], c=y.numpy(), s=8, edgecolors="k", linewidths=0.3, **colors)
    ax.set(xlabel="x0", ylabel="x1", xticks=[], yticks=[], xlim=extent[:2], ylim=extent[2:])
    ax.set_title("predicted class; training points", fontsize=9)
    return _to_rgb(fig)


def pred_vs_target_image(targets: Tensor, outputs: Tensor) -> np.ndarray:
    """targets, outputs (N, T) -> a scatter of every value, with the y = x line."""
    t, p = targets.flatten().numpy(), outputs.flatten().numpy()
    fig, ax = _figure()
    ax.scatter(t, p, s=6, alpha=0.6)
    low, high = float(min(t.min(), p.min())), float(max(t.max(), p.max()))
    ax.plot([low, high], [low, high], "k--", linewidth=1)
    rmse = float(np.sqrt(np.mean((p - t) ** 2)))
    ax.set(xlabel="target", ylabel="prediction")
    ax.set_title(f"rmse {rmse:.3f}", fontsize=9)
    return _to_rgb(fig)
