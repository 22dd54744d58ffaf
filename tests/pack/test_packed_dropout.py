"""The dropout rate is a member's own setting (neuralab/pack/): nets that differ only in
it stack (nn.Identity is nn.Dropout(p=0)), each member drawing its masks at its own
rate through `BatchedDropout`; nets without batched twins are refused then, since vmap
runs one rate. A p=0 member equals its lone run; masks of p>0 members cannot (they are
not drawn from the lone run's random stream).
"""

from __future__ import annotations

import copy

import pytest
import torch
from test_tensorboard import load
from torch import nn
from twins import (
    assert_same_training,
    basic_sweep,
    jobs,
    packed_members,
    packed_sweep,
    results,
    weight_diff,
)

from neuralab.nets import MLP
from neuralab.pack.batched import BatchedDropout
from neuralab.pack.stacked import NO_TWIN, TWIN_DIFFERS, StackedNets, structure, unstackable

RATES = (0.0, 0.2, 0.5)


def mlps(rates=RATES, hidden=(16, 8)) -> list[MLP]:
    torch.manual_seed(0)
    return [MLP(6, 4, hidden_sizes=list(hidden), dropout=p) for p in rates]


def dropout(rates: list[float]) -> BatchedDropout:
    return BatchedDropout("drop", lambda: {"drop": torch.tensor(rates)})


def test_mlps_of_any_dropout_rate_stack_and_other_widths_do_not():
    nets = mlps((0.0, 0.3, 0.5))
    assert isinstance(nets[0].blocks[0].drop, nn.Identity)  # p=0 builds no Dropout
    assert len({structure(net) for net in nets}) == 1
    assert unstackable(nets) is None
    assert unstackable(nets, torch.zeros(2, 6)) is None  # its twin checked against vmap
    other = MLP(6, 4, hidden_sizes=[16, 4], dropout=0.3)
    assert "differs" in unstackable([nets[1], other])


def test_other_dropout_layers_still_need_equal_rates():
    nets = [nn.Sequential(nn.Linear(6, 4), nn.Dropout1d(p)) for p in (0.1, 0.2)]
    assert "differs" in unstackable(nets)


def test_batched_dropout_is_the_identity_in_eval_mode():
    x = torch.randn(2, 100, 100)
    assert torch.equal(dropout([0.0, 0.5]).eval()(x), x)


def test_batched_dropout_draws_each_members_own_rate():
    torch.manual_seed(0)
    x = torch.randn(2, 100, 100)  # 10k entries a member
    out = dropout([0.0, 0.5]).train()(x)
    assert torch.equal(out[0], x[0])  # p=0: exactly unchanged
    dropped = out[1] == 0
    assert 0.4 < dropped.float().mean().item() < 0.6
    assert torch.equal(out[1][~dropped], 2 * x[1][~dropped])  # kept: scaled by 1/(1-p)


def test_stacked_mlps_of_different_rates_equal_their_own_forward_in_eval_mode():
    nets = mlps()
    lone = copy.deepcopy(nets)
    stacked = StackedNets(nets)
    assert set(stacked.rates) == {"blocks.0.drop", "blocks.1.drop"}
    x = torch.randn(3, 5, 6)
    out = stacked.forward(x, active=[0, 1, 2], train=False)
    for m, net in enumerate(lone):
        torch.testing.assert_close(out[m], net.eval()(x[m]), atol=1e-6, rtol=0)
    train = stacked.forward(x, active=[0, 1, 2], train=True)
    torch.testing.assert_close(train[0], lone[0].train()(x[0]), atol=1e-6, rtol=0)  # p=0


def test_a_stopped_members_rate_is_left_out_of_the_call():
    """Members 1 (p=0) and 2 (p=0.9) run, as rows 0 and 1: each with its own rate."""
    torch.manual_seed(0)
    nets = [nn.Sequential(nn.Linear(4, 5000), slot) for slot in (nn.Dropout(0.5), nn.Identity())]
    nets.append(nn.Sequential(nn.Linear(4, 5000), nn.Dropout(0.9)))
    lone = copy.deepcopy(nets[1])
    x = torch.randn(2, 2, 4)
    out = StackedNets(nets).forward(x, active=[1, 2], train=True)
    torch.testing.assert_close(out[0], lone(x[0]), atol=1e-6, rtol=0)
    assert 0.85 < (out[1] == 0).float().mean().item() < 0.95


class ConvDrop(nn.Module):
    """No batched twin (Conv1d): only vmap runs it, at one rate."""

    def __init__(self, p: float):
        super().__init__()
        self.conv, self.drop = nn.Conv1d(1, 2, 3), nn.Dropout(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.conv(x.unsqueeze(1)).flatten(1))


class BatchFirstDrop(nn.Module):
    """Twins for every layer, but a forward that mixes members under the twin."""

    def __init__(self, p: float):
        super().__init__()
        self.linear, self.drop = nn.Linear(6, 4), nn.Dropout(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.drop(self.linear(x))
        return out - out.mean(0)


def test_nets_without_a_twin_are_refused_when_rates_differ():
    torch.manual_seed(0)
    assert unstackable([ConvDrop(0.1), ConvDrop(0.1)]) is None  # one rate: vmap
    nets = [ConvDrop(0.1), ConvDrop(0.3)]
    assert unstackable(nets, torch.zeros(2, 6)) == NO_TWIN
    assert "\n" not in NO_TWIN
    with pytest.raises(ValueError, match="no batched twin"):
        StackedNets(nets)


def test_a_twin_that_differs_from_vmap_is_refused_when_rates_differ():
    torch.manual_seed(0)
    nets = [BatchFirstDrop(0.0), BatchFirstDrop(0.5)]
    assert unstackable(nets, torch.zeros(2, 6)) == TWIN_DIFFERS
    # Without an input to check it with, the first call finds it (and does not go on).
    assert unstackable(nets) is None
    with pytest.raises(RuntimeError, match="dropout rates differ"):
        StackedNets(nets).forward(torch.randn(2, 3, 6), active=[0, 1], train=True)


def test_a_dropout_sweep_packs_and_its_p0_member_equals_its_lone_run(tmp_path_factory):
    """`neuralab-train -m model.dropout=0,0.5 seed=1` (digits, the default MLP): one pack;
    the p=0 member is its basic-launcher run; the p=0.5 member trained with dropout."""
    common = ("seed=1", "trainer.max_epochs=1")
    packed = jobs(
        packed_sweep(tmp_path_factory.mktemp("dropout_packed"), "model.dropout=0,0.5", *common)
    )
    (basic,) = jobs(
        basic_sweep(tmp_path_factory.mktemp("dropout_basic"), "model.dropout=0", *common)
    )
    assert [packed_members(job) for job in packed] == [2, 2]
    assert [results(job)["status"] for job in packed] == ["ok", "ok"]
    assert_same_training(packed[0], basic)
    assert weight_diff(packed[1], packed[0]) > 1e-3  # same seed and data: dropout's doing
    # Each member's TensorBoard graph is its own net's: dropout ops only at p=0.5.
    ops = [{node.op for node in load(job).Graph().node} for job in packed]
    assert [any("dropout" in op for op in job_ops) for job_ops in ops] == [False, True], ops
