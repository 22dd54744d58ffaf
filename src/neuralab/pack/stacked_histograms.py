"""The members' weight and gradient histograms (diagnostics) from their stacked tensors.

At a picture epoch every member's Diagnostics histograms each layer's weights and
gradients (runtime/loggers.py `histogram`: numpy, ~0.3 ms each; a 64-member pack
makes 2,300 of them in 20 epochs, ~0.7 s). Here the first member to ask for a layer's
tensor at a step gets every member's histogram of it at once, rows of the stacked
(M, ...) tensor in float64, each row bucketed exactly as np.histogram buckets it (the
same edges and the same corrections at the edges); the others read theirs. The sum and
sum of squares may differ from numpy's in the last bits (another order of additions).
A tensor that is not one of the stacked ones, or a stacked one with a non-finite value,
is left to `histogram`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from neuralab.pack.stacked import StackedNets
from neuralab.runtime.loggers import histogram, histogram_proto


def row_histograms(rows: Tensor, bins: int) -> list[tuple]:
    """rows (M, N) finite float64 -> each row's (min, max, n, sum, sum of squares, edges,
    counts) as np.histogram(row, bins) and numpy's reductions give them."""
    low, high = rows.min(dim=1).values, rows.max(dim=1).values
    flat = low == high  # numpy widens an empty range by 0.5 on each side
    first, last = torch.where(flat, low - 0.5, low), torch.where(flat, high + 0.5, high)
    steps = torch.arange(bins + 1, dtype=rows.dtype, device=rows.device)
    edges = steps * ((last - first) / bins)[:, None] + first[:, None]  # np.linspace's
    edges[:, -1] = last
    index = ((rows - first[:, None]) / (last - first)[:, None] * bins).long()
    index[index == bins] -= 1
    index -= (rows < edges.gather(1, index)).long()
    index += ((rows >= edges.gather(1, index + 1)) & (index != bins - 1)).long()
    counts = torch.zeros(len(rows), bins, dtype=torch.long, device=rows.device)
    counts.scatter_add_(1, index, torch.ones_like(index))
    sums, squares = rows.sum(dim=1), rows.square().sum(dim=1)
    n = rows.shape[1]
    columns = zip(low.tolist(), high.tolist(), sums.tolist(), squares.tolist(), strict=True)
    return [
        (lo, hi, n, total, square, edge, count)
        for (lo, hi, total, square), edge, count in zip(
            columns, edges.tolist(), counts.tolist(), strict=True
        )
    ]


class StackedHistograms:
    def __init__(self, nets: StackedNets, step: Callable[[], int]):
        self.params, self.members, self.step = nets.params, nets.members, step
        self._made: dict[tuple, list[tuple] | None] = {}  # (step, name, grad) -> rows

    def of(self, index: int) -> Callable[[Tensor, int], Any]:
        """Member `index`'s histogram function (Diagnostics.histogram)."""

        def member_histogram(values: Tensor, bins: int) -> Any:
            found = self._stacked(index, values)
            if found is None:
                return histogram(values, bins)
            rows = self._rows(*found, bins)
            return histogram(values, bins) if rows is None else histogram_proto(*rows[index])

        return member_histogram

    def _stacked(self, index: int, values: Tensor) -> tuple[str, bool] | None:
        """(stacked tensor's name, whether the gradient) of a member's view, or None."""
        for name, view in self.members[index].items():
            if values is view:
                return name, False
            if values is view.grad:
                return name, True
        return None

    @torch.no_grad()
    def _rows(self, name: str, grad: bool, bins: int) -> list[tuple] | None:
        key = (self.step(), name, grad, bins)
        if key not in self._made:
            self._made = {k: v for k, v in self._made.items() if k[0] == key[0]}
            stacked = self.params[name].grad if grad else self.params[name]
            rows = stacked.detach().flatten(1).double().cpu()
            self._made[key] = row_histograms(rows, bins) if rows.isfinite().all() else None
        return self._made[key]
