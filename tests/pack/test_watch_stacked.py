"""The diagnostics a pack measures once for all members (pack/watch.py) are each
member's own: the activation statistics of a stacked forward, reduced per member, and
the pictures' predictions of every member from one forward of the batched net."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
from test_pack_parts import SEEDS, digits, mlp

from neuralab.diagnostics.activations import ActivationProbe
from neuralab.diagnostics.images import predict
from neuralab.pack.data import pack_loader
from neuralab.pack.optim import Active
from neuralab.pack.stacked import StackedNets
from neuralab.pack.watch import StackedPredictions


@pytest.fixture(scope="module")
def datamodules():
    return [digits(seed) for seed in SEEDS]


def stacked_mlps(activation: str, norm: str | None) -> tuple[StackedNets, list]:
    nets = [mlp(seed, norm) for seed in SEEDS]
    for net in nets:
        for block in net.blocks:
            block.act = {"tanh": torch.nn.Tanh(), "relu": torch.nn.ReLU()}[activation]
    lone = [copy.deepcopy(n).eval() for n in nets]
    stacked = StackedNets(nets)
    x = torch.randn(len(nets), 5, 64, generator=torch.Generator().manual_seed(0))
    stacked.forward(x, active=list(range(len(nets))), train=False)  # the twin's check
    assert stacked.twin is not None and stacked.checked
    return stacked, lone


@pytest.mark.parametrize(("activation", "norm"), [("relu", None), ("tanh", "batch")])
def test_stacked_activation_stats_are_each_members_own(datamodules, activation, norm):
    stacked, lone = stacked_mlps(activation, norm)
    x, _ = next(iter(pack_loader(datamodules, "val", "cpu", 1)))  # (3, B, 64)
    probe = ActivationProbe(stacked.twin, members=True)
    probe.attach()
    with torch.no_grad():
        stacked.forward(x, active=[0, 1, 2], train=False)
    probe.detach()
    kinds = {"act_dead"} if activation == "relu" else {"act_saturated"}
    assert kinds <= {tag.split("/")[0] for tag in probe.stats}
    for m, net in enumerate(lone):
        own = ActivationProbe(net)
        own.attach()
        with torch.no_grad():
            net(x[m])
        own.detach()
        assert set(own.stats) == set(probe.stats)
        for tag, value in own.stats.items():
            torch.testing.assert_close(probe.stats[tag][m], value, atol=1e-6, rtol=1e-5)


def fake_pack(stacked: StackedNets, datamodules: list, active: list[int]) -> SimpleNamespace:
    """What StackedPredictions reads of a PackedModule."""
    members = [SimpleNamespace(run=SimpleNamespace(datamodule=dm)) for dm in datamodules]
    running = Active(len(members))
    for index in set(range(len(members))) - set(active):
        running.stop(index)
    trainer = SimpleNamespace(global_step=7)
    return SimpleNamespace(
        members=members, active=running, stacked_nets=stacked, device="cpu", trainer=trainer
    )


def test_stacked_predictions_are_each_members_own_from_one_forward(datamodules, monkeypatch):
    stacked, lone = stacked_mlps("relu", None)
    calls = []
    forward = stacked.forward
    monkeypatch.setattr(stacked, "forward", lambda *a, **k: calls.append(1) or forward(*a, **k))
    predictions = StackedPredictions(fake_pack(stacked, datamodules, active=[0, 2]))

    for m in (0, 2):
        x = datamodules[m].splits["val"][0]
        got = predictions.of(m)(lone[m], x, torch.device("cpu"))
        torch.testing.assert_close(got, predict(lone[m], x, torch.device("cpu")), atol=1e-5, rtol=0)
    assert len(calls) == 1  # both members' outputs came from one forward

    # A stopped member, and inputs that are not one of the member's splits: its own net.
    x = datamodules[1].splits["val"][0]
    got = predictions.of(1)(lone[1], x, torch.device("cpu"))
    assert torch.equal(got, predict(lone[1], x, torch.device("cpu")))
    grid = torch.randn(10, 64)
    assert torch.equal(predictions.of(0)(lone[0], grid, "cpu"), predict(lone[0], grid, "cpu"))
    assert len(calls) == 1
