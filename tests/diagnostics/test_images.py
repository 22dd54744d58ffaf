"""The diagnostic pictures of neuralab.diagnostics.images, read back pixel by pixel.

The plot area is found from its 1-pixel border (raster.FRAME), so the tests hold
whatever the margins, fonts and tick labels.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from neuralab.diagnostics import images, raster
from neuralab.nets.perceptron import scores_to_classes

CPU = torch.device("cpu")


def plot_area(image: np.ndarray) -> np.ndarray:
    """The pixels inside the plot's border: (h, w, 3)."""
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    border = (image == raster.FRAME).all(axis=-1)
    cols = np.flatnonzero(border.sum(axis=0) > 0.8 * border.sum(axis=0).max())
    rows = np.flatnonzero(border.sum(axis=1) > 0.8 * border.sum(axis=1).max())
    return image[rows[0] + 1 : rows[-1], cols[0] + 1 : cols[-1]]


def cells(image: np.ndarray, k: int) -> np.ndarray:
    """Median brightness (0 black .. 765 white) of each confusion-matrix cell: (k, k)."""
    plot = plot_area(image).astype(int).sum(axis=-1)
    assert plot.shape[0] == plot.shape[1] and plot.shape[0] % k == 0, plot.shape
    c = plot.shape[0] // k
    return np.median(plot.reshape(k, c, k, c), axis=(1, 3))  # counts' text is a minority


def one_hot(preds: torch.Tensor, k: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(preds, k).float()


@pytest.mark.parametrize("k", [2, 3, 10, 20, 100])
def test_confusion_matrix_diagonal_dark_for_perfect_and_off_for_all_wrong(k):
    targets = torch.arange(5 * k) % k
    perfect = images.confusion_matrix_image(targets, one_hot(targets, k), k)
    wrong = images.confusion_matrix_image(targets, one_hot((targets + 1) % k, k), k)
    for image in (perfect, wrong):
        assert image.dtype == np.uint8 and image.shape[2] == 3
        assert 250 <= image.shape[1] <= 420 and 250 <= image.shape[0] <= 420, image.shape
    diagonal = np.eye(k, dtype=bool)
    shifted = np.roll(diagonal, 1, axis=1)  # true i -> predicted i + 1
    lum = cells(perfect, k)
    assert lum[diagonal].max() < 300 < 700 < lum[~diagonal].min()  # dark blue vs white
    lum = cells(wrong, k)
    assert lum[shifted].max() < 300 < 700 < lum[~shifted].min()


def test_confusion_matrix_counts_written_in_nonempty_cells_only():
    k, targets = 4, torch.arange(40) % 4
    image = images.confusion_matrix_image(targets, one_hot(targets, k), k)
    plot = plot_area(image)
    c = plot.shape[0] // k
    for i in range(k):
        for j in range(k):
            cell = plot[i * c + 2 : (i + 1) * c - 2, j * c + 2 : (j + 1) * c - 2]
            lum = cell.astype(int).sum(axis=-1)
            if i == j:  # "10" in white on dark blue
                assert lum.max() > 700 and np.median(lum) < 300
            else:  # empty: one flat colour, no text
                assert lum.min() == lum.max()


def net_on(axis: int, units: int) -> nn.Module:
    """Class 1 exactly where x[axis] > 0: one unit (threshold) or two (arg-max)."""
    linear = nn.Linear(2, units)
    with torch.no_grad():
        w = torch.zeros(units, 2)
        w[-1, axis] = 1.0
        if units == 2:
            w[0, axis] = -1.0
        linear.weight.copy_(w)
        linear.bias.zero_()
    return linear


CORNERS = torch.tensor([[-1.0, -1.0], [1.0, 1.0], [-1.0, 1.0], [1.0, -1.0]])


@pytest.mark.parametrize("units", [1, 2])
def test_decision_boundary_regions_left_right_and_bottom_top(units):
    light = raster.lighten(raster.class_colors(2))  # (2, 3): region colours
    # class = (x0 > 0): class 0 on the left half, class 1 on the right
    plot = plot_area(
        images.decision_boundary_image(
            net_on(0, units), CORNERS, torch.tensor([0, 1, 0, 1]), 2, CPU
        )
    )
    h, w, _ = plot.shape
    assert (plot[h // 2, 5 : w // 2 - 3] == light[0]).all()
    assert (plot[h // 2, w // 2 + 3 : w - 5] == light[1]).all()
    # class = (x1 > 0): origin lower-left, so class 1 is the top half
    plot = plot_area(
        images.decision_boundary_image(
            net_on(1, units), CORNERS, torch.tensor([0, 1, 1, 0]), 2, CPU
        )
    )
    assert (plot[5 : h // 2 - 3, w // 2] == light[1]).all()
    assert (plot[h // 2 + 3 : h - 5, w // 2] == light[0]).all()


def test_decision_boundary_points_in_full_colour_where_they_lie():
    colors = raster.class_colors(3)
    y = torch.tensor([0, 1, 2, 0])  # bottom-left, top-right, top-left, bottom-right
    image = images.decision_boundary_image(net_on(0, 2), CORNERS, y, 3, CPU)
    plot = plot_area(image)
    h, w, _ = plot.shape
    # The corners lie 1/12 of the way in from each edge (10% padding on a width of 2).
    for (x0, x1), cls in zip(CORNERS.tolist(), y.tolist(), strict=True):
        row = round((1 - (x1 + 1.2) / 2.4) * (h - 1))
        col = round((x0 + 1.2) / 2.4 * (w - 1))
        patch = plot[row - 1 : row + 2, col - 1 : col + 2]
        assert (patch == colors[cls]).all(axis=-1).any(), (x0, x1, cls)
    assert image.shape[0] > 100 and image.shape[1] > 100


@pytest.mark.parametrize("units", [1, 2, 5])
def test_decision_regions_are_scores_to_classes_at_the_grid_points(units):
    torch.manual_seed(0)
    scores = torch.randn(images.GRID**2, units)  # rough scores: many boundaries
    regions = images._regions(scores)[::-1]  # rows from the bottom, as the grid
    # Pixels p that fall exactly on grid lines: p * (GRID - 1) / (PLOT - 1) is an integer.
    step = (images.PLOT - 1) // math.gcd(images.PLOT - 1, images.GRID - 1)
    pixels = np.arange(0, images.PLOT, step)
    nodes = pixels * (images.GRID - 1) // (images.PLOT - 1)
    expected = scores_to_classes(scores).reshape(images.GRID, images.GRID).numpy()
    assert len(pixels) > 2
    assert (regions[np.ix_(pixels, pixels)] == expected[np.ix_(nodes, nodes)]).all()


def test_decision_boundary_of_many_classes_and_points():
    torch.manual_seed(0)
    x, y = torch.randn(1000, 2), torch.randint(0, 12, (1000,))
    image = images.decision_boundary_image(nn.Linear(2, 12), x, y, 12, CPU)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3


def off_diagonal(plot: np.ndarray) -> np.ndarray:
    """|distance| in pixels from the y = x diagonal (bottom-left to top-right) of every
    pixel that is not white: (n,)."""
    rows, cols = np.nonzero((plot != 255).any(axis=-1))
    return np.abs(rows + cols - (plot.shape[0] - 1)) / np.sqrt(2)


def test_pred_vs_target_perfect_predictions_lie_on_the_diagonal():
    targets = torch.linspace(-3, 5, 200)[:, None]
    plot = plot_area(images.pred_vs_target_image(targets, targets.clone()))
    assert plot.shape[0] == plot.shape[1]
    assert off_diagonal(plot).max() < 4  # dots of radius 2.5 and the dashed line only
    blue = (np.abs(plot.astype(int) - raster.TAB10[0]).sum(axis=-1) < 120).sum()
    assert blue > 500  # the dots are there, in their colour


def test_pred_vs_target_wrong_predictions_leave_the_diagonal():
    targets = torch.linspace(-3, 5, 200)[:, None]
    image = images.pred_vs_target_image(targets, 2 - targets)  # the anti-diagonal
    assert (off_diagonal(plot_area(image)) > 50).sum() > 500


def test_pred_vs_target_survives_non_finite_and_constant_values():
    t = torch.tensor([[1.0], [2.0], [3.0]])
    for outputs in (torch.tensor([[1.0], [float("nan")], [float("inf")]]), torch.ones(3, 1)):
        image = images.pred_vs_target_image(t, outputs)
        assert image.dtype == np.uint8 and image.shape[2] == 3
    image = images.pred_vs_target_image(torch.ones(4, 2), torch.ones(4, 2))  # one value
    assert image.shape[0] > 100


def test_nice_ticks_are_round_and_inside():
    ticks = raster.nice_ticks(-0.37, 2.61)
    assert list(ticks) == pytest.approx([0, 0.5, 1, 1.5, 2, 2.5])
    assert [f"{v:g}" for v in raster.nice_ticks(-3.3, 5.3)] == ["-2", "0", "2", "4"]


# Every picture drawn while matplotlib cannot be imported at all: torchmetrics (via
# lightning) imports it when installed, so it is blocked after that, before drawing.
NO_MATPLOTLIB = """
import sys, torch
from torch import nn
import neuralab.diagnostics.images as m
for name in [n for n in sys.modules if n == "matplotlib" or n.startswith("matplotlib.")]:
    sys.modules[name] = None  # any import of it now raises ImportError
sys.modules["matplotlib"] = None
t, x = torch.arange(30) % 3, torch.randn(30, 2)
m.confusion_matrix_image(t, torch.randn(30, 3), 3)
m.decision_boundary_image(nn.Linear(2, 3), x, t, 3, torch.device("cpu"))
m.pred_vs_target_image(torch.randn(30, 1), torch.randn(30, 1))
assert not [n for n, mod in sys.modules.items() if n.startswith("matplotlib") and mod]
print("drawn without matplotlib")
"""


def test_pictures_need_no_matplotlib():
    run = subprocess.run(
        [sys.executable, "-c", NO_MATPLOTLIB], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "drawn without matplotlib" in run.stdout
