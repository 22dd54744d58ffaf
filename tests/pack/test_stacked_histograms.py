"""pack/stacked_histograms.py: every member's histogram of a layer's weights or gradients,
made at once from the stacked tensor, is the one `histogram` (np.histogram) makes of
the member's own tensor: the same edges, bucket counts, min, max and count."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from neuralab.pack.stacked import StackedNets
from neuralab.pack.stacked_histograms import StackedHistograms, row_histograms
from neuralab.runtime.loggers import histogram

BINS = 64


def on_the_edges() -> torch.Tensor:
    """500 values: 305 drawn, and numpy's 65 bucket edges of them with the floats just
    below and above each, where the index needs numpy's corrections (both kinds occur)."""
    base = np.random.default_rng(0).normal(size=305) * 1e3
    edges = np.linspace(base.min(), base.max(), BINS + 1)
    near = [np.nextafter(edges, -np.inf), edges, np.nextafter(edges, np.inf)]
    values = np.concatenate([base, *near])
    return torch.from_numpy(np.clip(values, base.min(), base.max()))


def test_rows_are_bucketed_as_numpy_buckets_them():
    torch.manual_seed(0)
    rows = [
        torch.randn(500).double(),
        torch.full((500,), 0.25).double(),  # one value: numpy widens the range
        torch.arange(500).double() / 7,  # many values on or near the edges
        torch.randn(500).float().double() * 1e-6,
        torch.tensor([0.0] * 499 + [1.0]).double(),
        on_the_edges(),
    ]
    for row, (lo, hi, n, total, squares, edges, counts) in zip(
        rows, row_histograms(torch.stack(rows), BINS), strict=True
    ):
        array = row.numpy()
        expected_counts, expected_edges = np.histogram(array, bins=BINS)
        assert counts == expected_counts.tolist() and edges == expected_edges.tolist()
        assert (lo, hi, n) == (array.min(), array.max(), array.size)
        assert total == pytest.approx(array.sum(), rel=1e-12, abs=1e-300)
        assert squares == pytest.approx(np.square(array).sum(), rel=1e-12)


def fields(proto) -> tuple:
    return proto.min, proto.max, proto.num, list(proto.bucket_limit), list(proto.bucket)


def test_each_members_histograms_are_its_own():
    torch.manual_seed(0)
    nets = [nn.Sequential(nn.Linear(5, 9), nn.ReLU(), nn.Linear(9, 3)) for _ in range(3)]
    stacked = StackedNets(nets)
    stacked.forward(torch.randn(3, 8, 5), active=[0, 1, 2], train=True).sum().backward()
    stacked.share_grads()
    made = StackedHistograms(stacked, lambda: 7)
    for index, net in enumerate(nets):
        member = made.of(index)
        for layer in (net[0], net[2]):
            for values in (layer.weight, layer.weight.grad):
                got, expected = member(values, BINS), histogram(values, BINS)
                assert fields(got) == fields(expected)
                assert got.sum == pytest.approx(expected.sum, rel=1e-9, abs=1e-12)
    assert len(made._made) == 4  # 2 layers x (weights, gradients), once for all members
    other = torch.randn(4, 4)  # not a member's tensor: numpy's own
    assert fields(made.of(0)(other, BINS)) == fields(histogram(other, BINS))
    with torch.no_grad():
        stacked.params["0.weight"][1, 0, 0] = float("nan")  # member 1's: non-finite
    nan_made = StackedHistograms(stacked, lambda: 8)
    for index, net in enumerate(nets):
        got = nan_made.of(index)(net[0].weight, BINS)
        assert fields(got) == fields(histogram(net[0].weight, BINS))
