"""A pack's parts against the lone run's, without a trainer:

- data (neuralab/pack/data.py): row m of every pack batch is exactly the batch member
  m's own data module yields at that step (its seed's split, standardization, order);
- stacked nets (neuralab/pack/stacked.py): one vmapped call over the members' nets
  gives each member's own outputs, gradients and BatchNorm statistics;
- the nets a pack starts from are the lone runs' seeded nets (compose.build_net).
"""

from __future__ import annotations

import copy

import lightning as L
import pytest
import torch
from omegaconf import OmegaConf

from neuralab.compose import build_net
from neuralab.data import ArrayDataModule
from neuralab.losses import CrossEntropy
from neuralab.nets import MLP
from neuralab.pack.data import pack_loader, unequal_splits
from neuralab.pack.optim import Active, PackOptimizer
from neuralab.pack.stacked import StackedCall, StackedNets, unstackable
from neuralab.runtime.chunks import batches_of

SEEDS = (1, 2, 3)


def digits(seed: int, **settings) -> ArrayDataModule:
    dm = ArrayDataModule(
        source="digits",
        task="classification",
        num_features=64,
        num_classes=10,
        seed=seed,
        **settings,
    )
    dm.setup()
    return dm


@pytest.fixture(scope="module")
def datamodules() -> list[ArrayDataModule]:
    return [digits(seed) for seed in SEEDS]


def epoch_batches(loader, epoch: int) -> list:
    """Every batch of one epoch (a chunk's batches one by one)."""
    loader.sampler.set_epoch(epoch)
    return [batch for item in loader for batch in batches_of(item)]


def assert_rows_are_the_members_batches(pack_batches: list, lone: list[list]) -> None:
    for m, member_batches in enumerate(lone):
        assert len(pack_batches) == len(member_batches)
        for step, (packed, own) in enumerate(zip(pack_batches, member_batches, strict=True)):
            for p, o in zip(packed, own, strict=True):
                assert torch.equal(p[m], o), f"member {m}, step {step}"


@pytest.mark.parametrize("epoch", [0, 1])
def test_each_member_trains_on_its_own_batches_in_its_own_order(datamodules, epoch):
    pack = epoch_batches(pack_loader(datamodules, "train", "cpu", chunk=1), epoch)
    lone = [epoch_batches(dm.train_dataloader(), epoch) for dm in datamodules]
    assert_rows_are_the_members_batches(pack, lone)
    # The members' orders differ (else this test would prove little).
    assert not torch.equal(pack[0][1][0], pack[0][1][1])


def test_chunks_hold_the_same_batches_as_single_steps(datamodules):
    chunked = pack_loader(datamodules, "train", "cpu", chunk=5)
    single = pack_loader(datamodules, "train", "cpu", chunk=1)
    assert len(chunked) == 4 and chunked.num_batches == len(single) == 20
    for a, b in zip(epoch_batches(chunked, 0), epoch_batches(single, 0), strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("split", ["val", "test"])
def test_eval_splits_are_each_members_own_in_order(datamodules, split):
    pack = list(pack_loader(datamodules, split, "cpu", chunk=1))
    lone = [list(getattr(dm, f"{split}_dataloader")()) for dm in datamodules]
    assert_rows_are_the_members_batches(pack, lone)


def test_splits_of_other_sizes_cannot_be_stacked(datamodules):
    assert unequal_splits(datamodules) is None
    other = digits(4, val_fraction=0.2)
    assert "split has another shape" in unequal_splits([*datamodules, other])


# ------------------------------------------------------------------ stacked nets


def mlp(seed: int, norm: str | None = None) -> MLP:
    torch.manual_seed(seed)
    return MLP(64, 10, hidden_sizes=[32, 16], norm=norm)


@pytest.mark.parametrize("norm", [None, "batch"])
def test_stacked_forward_and_gradients_are_each_members_own(datamodules, norm):
    nets = [mlp(seed, norm) for seed in SEEDS]
    lone = [copy.deepcopy(n) for n in nets]
    x, y = next(iter(pack_loader(datamodules, "train", "cpu", chunk=1)))  # (3, 64, 64), (3, 64)

    stacked = StackedNets(nets)
    out = stacked.forward(x, active=[0, 1, 2], train=True)
    losses = torch.nn.functional.cross_entropy(out.flatten(0, 1), y.flatten(), reduction="none")
    losses.view(3, -1).mean(1).sum().backward()  # the pack's loss: sum of the members' means
    stacked.share_grads()

    for m, net in enumerate(lone):
        own = net(x[m])
        torch.nn.functional.cross_entropy(own, y[m]).backward()
        torch.testing.assert_close(out[m], own, atol=1e-6, rtol=0)
        for (name, p), q in zip(nets[m].named_parameters(), net.parameters(), strict=True):
            torch.testing.assert_close(p.grad, q.grad, atol=1e-6, rtol=0, msg=name)
        for (name, b), c in zip(nets[m].named_buffers(), net.buffers(), strict=True):
            torch.testing.assert_close(b, c, atol=1e-6, rtol=0, msg=name)  # running stats


def test_members_gradients_are_views_made_again_when_dropped():
    """Zeroed in place between steps; Lightning's zero_grad before validation drops a
    member's .grad, and the next step gives it its view again."""
    nets = [mlp(seed) for seed in SEEDS]
    stacked, x = StackedNets(nets), torch.randn(3, 4, 64)

    def step() -> torch.Tensor:
        stacked.zero_grad()
        stacked.forward(x, active=[0, 1, 2], train=True).square().sum().backward()
        stacked.share_grads()
        return nets[1].head.bias.grad

    first = step().clone()
    torch.testing.assert_close(step(), first)  # zeroed, not accumulated
    nets[1].zero_grad(set_to_none=True)
    again = step()
    torch.testing.assert_close(again, first)
    assert again.data_ptr() == stacked.params["head.bias"].grad[1].data_ptr()


def test_a_members_own_step_changes_what_the_stacked_call_uses(datamodules):
    nets = [mlp(seed) for seed in SEEDS]
    stacked = StackedNets(nets)
    x, _ = next(iter(pack_loader(datamodules, "train", "cpu", chunk=1)))
    with torch.no_grad():
        nets[1].head.bias.add_(1.0)  # as member 1's optimizer step would
        out = stacked.forward(x, active=[0, 1, 2], train=False)
        assert torch.equal(out[1], nets[1].eval()(x[1]))
        assert torch.equal(out[0], nets[0].eval()(x[0]))


def test_a_stopped_member_is_left_alone(datamodules):
    """Members 0 and 2 run (rows 0 and 1 of the call); member 1's weights and running
    statistics stay as they were."""
    nets = [mlp(seed, "batch") for seed in SEEDS]
    before = copy.deepcopy(nets[1].state_dict())
    third = copy.deepcopy(nets[2])
    x, _ = next(iter(pack_loader(datamodules, "train", "cpu", chunk=1)))
    out = StackedNets(nets).forward(x[[0, 2]], active=[0, 2], train=True)
    assert out.shape == (2, 64, 10)
    after = nets[1].state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # running stats too
    torch.testing.assert_close(out[1], third(x[2]), atol=1e-6, rtol=0)
    for (name, b), c in zip(nets[2].named_buffers(), third.buffers(), strict=True):
        torch.testing.assert_close(b, c, atol=1e-6, rtol=0, msg=name)


def test_nets_of_another_structure_cannot_be_stacked():
    assert unstackable([mlp(1), mlp(2)]) is None
    assert "differs" in unstackable([mlp(1), mlp(2, norm="batch")])
    assert "differs" in unstackable([mlp(1), MLP(64, 10, hidden_sizes=[32, 8])])


def test_the_seeded_build_is_the_same_net_every_time():
    """What makes a member's initial net its lone run's: compose.build_net after
    seed_everything(seed) (train.start) is a pure function of the config and seed."""
    cfg = OmegaConf.create(
        {
            "model": {"_target_": "neuralab.nets.MLP", "in_features": 64, "out_features": 10},
            "init": {"scheme": "default"},
        }
    )

    def seeded(seed: int) -> dict:
        L.seed_everything(seed, verbose=False)
        return build_net(cfg).state_dict()

    first, again, other = seeded(1), seeded(1), seeded(2)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not torch.equal(first["head.weight"], other["head.weight"])


@pytest.mark.parametrize(
    "make",
    [
        lambda p, scale: torch.optim.Adam(p, lr=1e-2 * scale),
        lambda p, scale: torch.optim.SGD(p, lr=0.1 * scale, momentum=0.9, nesterov=True),
        lambda p, scale: torch.optim.Adagrad(p, lr=0.1 * scale),
    ],
    ids=["adam", "nesterov", "adagrad"],
)
@pytest.mark.parametrize("fused", [False, True])
# One group (rows 0-3: fused where asked), or two learning rates in alternate rows
# (rows 0, 2 and 1, 3: strided views, never fused).
@pytest.mark.parametrize("scales", [(1, 1, 1, 1), (1, 3, 1, 3)], ids=["one_lr", "two_lrs"])
def test_members_stepped_as_rows_equal_each_stepping_alone(make, fused, scales):
    """PackOptimizer's steps over rows (pack/stacked_step.py), then, after a member
    stops, each member on its own: bit-equal to per-member optimizers throughout;
    within a few ulps with torch's fused kernel (the pack's default where it applies)."""
    count = len(scales)

    def trained(stacked: bool) -> list[torch.Tensor]:
        torch.manual_seed(0)
        nets = [MLP(8, 3, hidden_sizes=[16]) for _ in range(count)]
        stack, losses = StackedNets(nets), StackedCall([CrossEntropy() for _ in range(count)])
        active = Active(count)
        optimizers = [make(n.parameters(), k) for n, k in zip(nets, scales, strict=True)]
        pack = PackOptimizer(optimizers, active, stack)
        pack.stacked.released, pack.stacked.fused = not stacked, fused
        x, y = torch.randn(count, 5, 8), torch.randint(0, 3, (count, 5))
        for step in range(6):
            if step == 3:
                active.stop(1)
            pack.zero_grad()
            rows = active.members
            out = stack.forward(x[rows], active=rows, train=True)
            losses.forward(out, y[rows], active=rows).sum().backward()
            stack.share_grads()
            pack.step()
            if stacked and step == 0:  # the row steps ran, with the kernel asked for
                groups = pack.stacked.groups
                one_lr = len(set(scales)) == 1
                expected = [[0, 1, 2, 3]] if one_lr else [[0, 2], [1, 3]]
                assert [g.members for g in groups] == expected
                fused_groups = [bool(g.stepper.param_groups[0]["fused"]) for g in groups]
                assert fused_groups == [fused and len(groups) == 1] * len(groups)
        return [p.detach().clone() for net in nets for p in net.parameters()]

    for together, alone in zip(trained(True), trained(False), strict=True):
        if fused and len(set(scales)) == 1:
            torch.testing.assert_close(together, alone, atol=1e-6, rtol=0)
        else:
            assert torch.equal(together, alone)


def test_each_members_first_bad_step_is_found_in_its_chunk():
    """A chunk's losses (steps x members) are checked at its end: each member's first
    non-finite loss and its global step, kept across chunks (pack/module.py)."""
    from types import SimpleNamespace

    from neuralab.pack.module import PackedModule

    pack = SimpleNamespace(members=[0, 1, 2], active=Active(3), first_bad=None, bad_value=None)
    nan, inf = float("nan"), float("inf")
    first = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, inf], [1.0, nan, 1.0], [1.0, 2.0, -inf]])
    later = torch.tensor([[1.0, nan, 1.0], [0.5, 1.0, 1.0]])
    PackedModule._record_bad(pack, first, first_step=20)  # steps 20-23
    PackedModule._record_bad(pack, later, first_step=40)  # steps 40-41: the firsts stay
    found = PackedModule.diverged(pack)
    assert sorted(found) == [1, 2]
    assert found[1][0] == 22 and found[1][1] != found[1][1]  # NaN, at step 22
    assert found[2] == (21, inf)
