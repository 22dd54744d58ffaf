"""Batched twins of layers and losses (pack/batched.py): the same numbers as vmap, and
vmap kept where a twin would differ."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from neuralab.losses import BinaryCrossEntropy, CrossEntropy, LogCosh
from neuralab.nets import MLP
from neuralab.pack.batched import loss_twin
from neuralab.pack.stacked import StackedCall, StackedNets

M, B = 3, 8


def nets(**kwargs) -> list[nn.Module]:
    torch.manual_seed(0)
    return [MLP(6, 4, hidden_sizes=[8, 8], **kwargs) for _ in range(M)]


def run(stacked: StackedNets, x: torch.Tensor, train: bool) -> torch.Tensor:
    out = stacked.forward(x, active=list(range(M)), train=train)
    out.square().sum().backward()
    return out


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"norm": "batch"}, {"norm": "layer"}, {"residual": True}, {"activation": "gelu"}],
    ids=["plain", "batchnorm", "layernorm", "residual", "gelu"],
)
@pytest.mark.parametrize("train", [True, False])
def test_the_twin_computes_what_vmap_does(kwargs, train):
    twin, vmapped = StackedNets(nets(**kwargs)), StackedNets(nets(**kwargs))
    vmapped.twin = None
    assert twin.twin is not None
    x = torch.randn(M, B, 6)
    for _ in range(2):  # the second call reads running statistics the first updated
        torch.testing.assert_close(run(twin, x, train), run(vmapped, x, train))
    assert twin.twin is not None  # it passed its check
    for name, p in twin.params.items():
        torch.testing.assert_close(p.grad, vmapped.params[name].grad, msg=name)
    for name, b in twin.buffers.items():
        torch.testing.assert_close(b, vmapped.buffers[name], msg=name)


def test_stopped_members_keep_their_running_statistics_under_the_twin():
    stacked = StackedNets(nets(norm="batch"))
    before = copy.deepcopy(stacked.buffers)
    stacked.forward(torch.randn(2, B, 6), active=[0, 2], train=True)
    assert stacked.twin is not None
    for name, after in stacked.buffers.items():
        assert torch.equal(after[1], before[name][1]), name
        assert not torch.equal(after[0], before[name][0]) or "tracked" in name


class BatchFirst(nn.Module):
    """A forward that assumes the batch comes first: the twin would mix members."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.linear(x)
        return out - out.mean(0)


class Conv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.unsqueeze(1)).flatten(1)


def test_nets_a_twin_would_get_wrong_run_under_vmap():
    torch.manual_seed(0)
    members = [BatchFirst() for _ in range(M)]
    lone = copy.deepcopy(members)
    stacked = StackedNets(members)
    assert stacked.twin is not None  # its layers have twins: only the check can tell
    x = torch.randn(M, B, 6)
    out = stacked.forward(x, active=list(range(M)), train=True)
    assert stacked.twin is None
    for m in range(M):
        torch.testing.assert_close(out[m], lone[m](x[m]))


def test_layers_without_a_twin_run_under_vmap():
    assert StackedNets([Conv() for _ in range(M)]).twin is None


def per_member(loss: nn.Module, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.stack([loss(out[m], y[m]) for m in range(M)])


@pytest.mark.parametrize(
    "loss, out, y",
    [
        (CrossEntropy(), torch.randn(M, B, 4), torch.randint(0, 4, (M, B))),
        (CrossEntropy(label_smoothing=0.1), torch.randn(M, B, 4), torch.randint(0, 4, (M, B))),
        (BinaryCrossEntropy(), torch.randn(M, B, 1), torch.randint(0, 2, (M, B))),
        (nn.MSELoss(), torch.randn(M, B, 2), torch.randn(M, B, 2)),
        (nn.L1Loss(), torch.randn(M, B, 2), torch.randn(M, B, 2)),
        (nn.HuberLoss(delta=0.5), torch.randn(M, B, 2), torch.randn(M, B, 2)),
    ],
    ids=["ce", "ce_smoothing", "bce", "mse", "mae", "huber"],
)
def test_loss_twins_give_each_members_mean_loss(loss, out, y):
    twin = loss_twin(loss)
    assert twin is not None
    torch.testing.assert_close(twin(out, y), per_member(loss, out, y))
    stacked = StackedCall([loss] * M)
    torch.testing.assert_close(stacked.forward(out, y, active=list(range(M))), twin(out, y))
    assert stacked.twin is not None


def test_weighted_and_other_losses_run_under_vmap():
    weighted = [CrossEntropy(torch.rand(4)) for _ in range(M)]
    assert loss_twin(weighted[0]) is None and loss_twin(LogCosh()) is None
    out, y = torch.randn(M, B, 4), torch.randint(0, 4, (M, B))
    stacked = StackedCall(weighted)
    expected = torch.stack([weighted[m](out[m], y[m]) for m in range(M)])
    torch.testing.assert_close(stacked.forward(out, y, active=list(range(M))), expected)
