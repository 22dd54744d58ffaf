"""Unit tests of the parts: the in-memory loader, the DataModule, losses, init schemes,
layers, the MLP, epoch metrics and schedulers. Fast; one test runs two short trainings."""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

# Imported at collection, see tests/test_bad_input.py: lightning's import-time
# StreamHandler must not hold a capsys stream that closes when one test ends.
import neuralab.train  # noqa: F401
from neuralab.data import ArrayDataModule
from neuralab.data.loader import EpochSampler, InMemoryLoader
from neuralab.data.sources import SOURCES, Arrays
from neuralab.errors import ConfigError
from neuralab.init import SCHEMES, apply_init
from neuralab.layers import ACTIVATIONS, NORMS, activation_class, make_norm, norm_class
from neuralab.losses import (
    CLASSIFICATION,
    LOSSES,
    REGRESSION,
    BinaryCrossEntropy,
    CrossEntropy,
    LogCosh,
    balanced_weights,
    build_loss,
)
from neuralab.metrics import EpochMetrics
from neuralab.nets import MLP
from neuralab.schedulers import build_scheduler, linear_warmup

pytestmark = pytest.mark.fast  # the core contract: pytest -m fast

# ----------------------------------------------------------------- in-memory loader


def _epoch(sampler: EpochSampler, epoch: int) -> list[int]:
    sampler.set_epoch(epoch)
    return sampler.indices().tolist()


@pytest.mark.parametrize("size", [1, 7, 100])
def test_sampler_visits_every_sample_once_per_epoch(size):
    sampler = EpochSampler(size, shuffle=True, seed=3)
    for epoch in range(3):
        order = _epoch(sampler, epoch)
        assert sorted(order) == list(range(size))
        assert len(order) == len(sampler) == size


def test_sampler_reshuffles_each_epoch_and_repeats_for_same_seed_and_epoch():
    sampler = EpochSampler(100, shuffle=True, seed=0)
    orders = [_epoch(sampler, e) for e in range(4)]
    assert len({tuple(o) for o in orders}) == 4  # a new order every epoch
    assert orders[0] != list(range(100))
    again = EpochSampler(100, shuffle=True, seed=0)
    assert [_epoch(again, e) for e in (2, 0)] == [orders[2], orders[0]]
    assert _epoch(EpochSampler(100, shuffle=True, seed=1), 0) != orders[0]  # seed matters


def test_sampler_without_shuffle_is_in_order():
    sampler = EpochSampler(10, shuffle=False, seed=0)
    assert _epoch(sampler, 0) == _epoch(sampler, 5) == list(range(10))


@pytest.mark.parametrize("size", [10, 11, 13])
def test_two_ranks_eval_shards_are_disjoint_and_cover_everything(size):
    ranks = [
        EpochSampler(size, shuffle=True, seed=0, rank=r, world_size=2, pad=False) for r in (0, 1)
    ]
    shards = [_epoch(s, 1) for s in ranks]
    assert not set(shards[0]) & set(shards[1])
    assert sorted(shards[0] + shards[1]) == list(range(size))  # no padding: counted once
    assert [len(s) for s in shards] == [len(s) for s in ranks]


@pytest.mark.parametrize("size", [10, 11, 13])
def test_two_ranks_train_shards_are_padded_to_equal_length(size):
    ranks = [
        EpochSampler(size, shuffle=True, seed=0, rank=r, world_size=2, pad=True) for r in (0, 1)
    ]
    shards = [_epoch(s, 1) for s in ranks]
    assert len(shards[0]) == len(shards[1]) == len(ranks[0]) == len(ranks[1])
    assert len(shards[0]) == math.ceil(size / 2)
    assert set(shards[0]) | set(shards[1]) == set(range(size))  # everything is visited
    assert len(shards[0]) + len(shards[1]) - size == size % 2  # at most one wrapped repeat


@pytest.mark.parametrize(
    "size, batch, pad, world",
    [
        (10, 3, False, 1),
        (10, 5, False, 1),
        (10, 20, False, 1),
        (11, 3, True, 2),
        (11, 3, False, 2),
    ],
)
def test_loader_len_matches_batches_yielded(size, batch, pad, world):
    x = torch.arange(size, dtype=torch.float32).unsqueeze(1)
    y = torch.arange(size)
    for rank in range(world):
        sampler = EpochSampler(size, shuffle=True, seed=0, rank=rank, world_size=world, pad=pad)
        loader = InMemoryLoader((x, y), batch, sampler)
        batches = list(loader)
        assert len(batches) == len(loader)
        assert sum(len(b[1]) for b in batches) == len(sampler)
        assert all(len(b[1]) == batch for b in batches[:-1])


def _devices() -> list:
    devices = ["cpu", "meta"]  # meta: a device other than cpu, without a GPU
    if torch.cuda.is_available():
        devices.append("cuda")
    return devices


@pytest.mark.parametrize("device", _devices())
def test_loader_yields_tensors_sliced_on_the_device(device):
    x = torch.arange(20, dtype=torch.float32).reshape(10, 2)
    y = torch.arange(10)
    sampler = EpochSampler(10, shuffle=True, seed=0)
    loader = InMemoryLoader((x, y), 4, sampler, device=device)
    assert loader.sampler is sampler and loader.batch_sampler is None  # what Lightning reads
    batches = list(loader)
    for bx, by in batches:
        assert isinstance(bx, torch.Tensor) and isinstance(by, torch.Tensor)
        assert bx.device.type == by.device.type == torch.device(device).type
        assert bx.shape[1:] == (2,) and bx.shape[0] == by.shape[0]
    if device != "meta":  # meta tensors hold no values
        xs, ys = torch.cat([b[0] for b in batches]).cpu(), torch.cat([b[1] for b in batches]).cpu()
        assert torch.equal(xs, x[ys])  # rows stay paired with their targets
        assert ys.tolist() == sampler.indices().tolist()


def test_in_memory_and_dataloader_paths_give_the_same_metrics(run_cli, monkeypatch):
    """Full-batch training: both paths see the same (one) batch per epoch, so the runs
    match; only the summation order inside the batch differs."""
    dm = ArrayDataModule("digits", CLASSIFICATION, 64, 10)
    dm.setup()
    batch = 2048
    assert len(dm.splits["train"][0]) <= batch  # ~1259 samples: one batch per epoch

    loaders: list[str] = []  # which path each run really took
    make_loader = ArrayDataModule._loader

    def spy(self, split, train):
        loader = make_loader(self, split, train)
        loaders.append(type(loader).__name__)
        return loader

    monkeypatch.setattr(ArrayDataModule, "_loader", spy)
    results = []
    for in_memory, path in (("true", "InMemoryLoader"), ("false", "DataLoader")):
        loaders.clear()
        run = run_cli(
            "train",
            f"data.in_memory={in_memory}",
            "trainer.max_epochs=2",
            f"data.batch_size={batch}",
            "logger=none",
            "trainer.accelerator=cpu",
        )
        assert run.code == 0, run.out
        assert len(loaders) >= 3 and set(loaders) == {path}  # train, val and test loaders
        new = [d for d in run.run_dirs() if all(d != r["dir"] for r in results)]
        assert len(new) == 1
        results.append({"dir": new[0], **run.results(new[0])})
    memory, loader = (r["metrics"] for r in results)
    assert set(memory) == set(loader) and {"test_acc", "test_loss", "final_train_loss"} <= set(
        memory
    )
    for name in memory:
        assert memory[name] == pytest.approx(loader[name], abs=1e-6), name


# ----------------------------------------------------------------- ArrayDataModule


@pytest.fixture
def id_source(monkeypatch):
    """A source whose first feature is the sample's index, with unbalanced classes."""

    def ids(seed, **_):
        n = 200
        y = np.repeat([0, 1, 2], [120, 60, 20])
        x = np.stack([np.arange(n), np.random.default_rng(seed).normal(size=n)], axis=1)
        return Arrays(x, y)

    monkeypatch.setitem(SOURCES, "ids", ids)
    return "ids"


def test_splits_are_disjoint_cover_everything_and_are_stratified(id_source):
    def make() -> ArrayDataModule:
        return ArrayDataModule(
            id_source,
            CLASSIFICATION,
            2,
            3,
            standardize=False,
            val_fraction=0.2,
            test_fraction=0.1,
            seed=5,
        )

    dm = make()
    dm.setup()
    ids = {k: dm.splits[k][0][:, 0].long().tolist() for k in ("train", "val", "test")}
    assert not set(ids["train"]) & set(ids["val"])
    assert not set(ids["train"]) & set(ids["test"])
    assert not set(ids["val"]) & set(ids["test"])
    assert sorted(ids["train"] + ids["val"] + ids["test"]) == list(range(200))
    counts = {k: torch.bincount(dm.splits[k][1], minlength=3).tolist() for k in ids}
    assert counts["val"] == [24, 12, 4]  # 20 % of each class
    assert counts["test"] == [12, 6, 2]  # 10 % of each class
    assert counts["train"] == [84, 42, 14]
    again = make()
    again.setup()
    assert torch.equal(again.splits["val"][0], dm.splits["val"][0])  # seeded


def test_standardization_uses_train_statistics_only():
    raw = ArrayDataModule("digits", CLASSIFICATION, 64, 10, standardize=False)
    std = ArrayDataModule("digits", CLASSIFICATION, 64, 10, standardize=True)
    raw.setup()
    std.setup()
    x_train = raw.splits["train"][0]
    mean, sd = x_train.mean(0), x_train.std(0, unbiased=False)
    live = sd > 0  # digits has pixels that are always 0 in train
    assert (~live).any()
    z = std.splits["train"][0]
    assert z[:, live].mean(0).abs().max() < 1e-5
    assert (z[:, live].std(0, unbiased=False) - 1).abs().max() < 1e-4
    assert torch.equal(z[:, ~live], x_train[:, ~live] - mean[~live])  # std 1, no division by 0
    safe_sd = torch.where(live, sd, torch.ones_like(sd))
    for split in ("val", "test"):
        expected = (raw.splits[split][0] - mean) / safe_sd
        torch.testing.assert_close(std.splits[split][0], expected)
        # ... which is not the split's own standardization
        assert std.splits[split][0][:, live].mean(0).abs().max() > 1e-2
        assert torch.equal(std.splits[split][1], raw.splits[split][1])


def test_regression_targets_are_standardized_with_train_statistics():
    raw = ArrayDataModule("diabetes", REGRESSION, 10, num_targets=1, standardize=False)
    std = ArrayDataModule("diabetes", REGRESSION, 10, num_targets=1, standardize=True)
    raw.setup()
    std.setup()
    y = raw.splits["train"][1]
    assert y.shape[1] == 1
    torch.testing.assert_close(
        std.splits["test"][1], (raw.splits["test"][1] - y.mean(0)) / y.std(0, unbiased=False)
    )


@pytest.mark.parametrize(
    "kwargs, setting",
    [
        ({"num_features": 63}, "data.num_features"),
        ({"num_classes": 9}, "data.num_classes"),
        ({"num_classes": 11}, "data.num_classes"),
    ],
)
def test_declared_shapes_must_match_the_data(kwargs, setting):
    args = {"num_features": 64, "num_classes": 10, **kwargs}
    dm = ArrayDataModule("digits", CLASSIFICATION, **args)
    with pytest.raises(ConfigError) as info:
        dm.setup()
    assert info.value.setting == setting
    assert str(64 if setting == "data.num_features" else 10) in info.value.allowed


def test_regression_target_count_must_match():
    with pytest.raises(ConfigError) as info:
        ArrayDataModule("diabetes", REGRESSION, 10, num_targets=2).setup()
    assert info.value.setting == "data.num_targets"


@pytest.mark.parametrize(
    "kwargs, setting",
    [
        ({"source": "nosuch"}, "data.source"),
        ({"task": "ranking"}, "data.task"),
        ({"batch_size": 0}, "data.batch_size"),
        ({"eval_batch_size": -1}, "data.eval_batch_size"),
        ({"val_fraction": 0.6, "test_fraction": 0.4}, "data.val_fraction + data.test_fraction"),
    ],
)
def test_datamodule_refuses_bad_settings(kwargs, setting):
    args = {
        "source": "digits",
        "task": CLASSIFICATION,
        "num_features": 64,
        "num_classes": 10,
        **kwargs,
    }
    with pytest.raises(ConfigError) as info:
        ArrayDataModule(**args)
    assert info.value.setting == setting


# ----------------------------------------------------------------- losses


def test_log_cosh_matches_formula_and_stays_finite():
    d = torch.linspace(-8, 8, 161, dtype=torch.float64)
    loss = LogCosh()
    for di in d:
        assert loss(di.view(1), torch.zeros(1, dtype=torch.float64)).item() == pytest.approx(
            math.log(math.cosh(di.item())), rel=1e-9, abs=1e-12
        )
    torch.testing.assert_close(loss(d, torch.zeros_like(d)), torch.log(torch.cosh(d)).mean())
    big = torch.tensor([1000.0, -1000.0])
    assert torch.isinf(torch.log(torch.cosh(big))).all()  # the naive formula overflows
    value = loss(big, torch.zeros(2))
    assert torch.isfinite(value) and value.item() == pytest.approx(1000 - math.log(2), rel=1e-6)
    pred = big.clone().requires_grad_(True)
    loss(pred, torch.zeros(2)).backward()
    torch.testing.assert_close(pred.grad, torch.tensor([0.5, -0.5]))  # tanh(d) / n


def test_balanced_weights_are_n_over_c_times_count():
    targets = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 2])
    weights = balanced_weights(targets, 4)  # class 3 never occurs
    n = 9
    expected = torch.tensor([n / (4 * 6), n / (4 * 2), n / (4 * 1), n / (4 * 1)])
    torch.testing.assert_close(weights, expected)
    # every present class then contributes equally: sum of weights over its samples
    per_class = [weights[c] * (targets == c).sum() for c in range(3)]
    assert per_class[0] == pytest.approx(per_class[1]) == pytest.approx(per_class[2])


def test_bce_uses_pos_weight_from_class_weights():
    targets = torch.tensor([0, 1, 1, 0, 1])
    logits = torch.tensor([[0.3], [-1.2], [2.0], [0.5], [0.1]])
    loss = build_loss("bce", CLASSIFICATION, 2, targets, class_weights=[2.0, 6.0])
    assert isinstance(loss, BinaryCrossEntropy)
    torch.testing.assert_close(loss.pos_weight, torch.tensor([3.0]))
    expected = F.binary_cross_entropy_with_logits(
        logits.squeeze(-1), targets.float(), pos_weight=torch.tensor([3.0])
    )
    torch.testing.assert_close(loss(logits, targets), expected)
    plain = build_loss("bce", CLASSIFICATION, 2, targets)
    assert plain.pos_weight is None
    torch.testing.assert_close(
        plain(logits, targets),
        F.binary_cross_entropy_with_logits(logits.squeeze(-1), targets.float()),
    )
    balanced = build_loss("bce", CLASSIFICATION, 2, targets, class_weights="balanced")
    torch.testing.assert_close(balanced.pos_weight, torch.tensor([2 / 3]))  # (5/6) / (5/4)


def test_cross_entropy_class_weights_and_smoothing():
    targets = torch.tensor([0, 0, 1, 2])
    logits = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    loss = build_loss(
        "cross_entropy", CLASSIFICATION, 3, targets, class_weights="balanced", label_smoothing=0.1
    )
    assert isinstance(loss, CrossEntropy)
    weight = balanced_weights(targets, 3)
    torch.testing.assert_close(
        loss(logits, targets), F.cross_entropy(logits, targets, weight=weight, label_smoothing=0.1)
    )


_CLASS_LOSSES, _REGR_LOSSES = "bce, cross_entropy", "huber, log_cosh, mae, mse"


@pytest.mark.parametrize(
    "name, task, num_classes, kwargs, setting, allowed",
    [
        ("mse", CLASSIFICATION, 10, {}, "loss", _CLASS_LOSSES),
        ("log_cosh", CLASSIFICATION, 2, {}, "loss", _CLASS_LOSSES),
        ("cross_entropy", REGRESSION, None, {}, "loss", _REGR_LOSSES),
        ("bce", REGRESSION, None, {}, "loss", _REGR_LOSSES),
        ("bce", CLASSIFICATION, 10, {}, "loss", "cross_entropy: bce needs 2 classes"),
        ("nosuch", CLASSIFICATION, 10, {}, "loss", "one of: " + ", ".join(sorted(LOSSES))),
        ("mse", REGRESSION, None, {"class_weights": [1, 2]}, "loss.class_weights", "null"),
        (
            "cross_entropy",
            CLASSIFICATION,
            10,
            {"class_weights": [1, 2]},
            "loss.class_weights",
            "10 numbers",
        ),
        (
            "cross_entropy",
            CLASSIFICATION,
            3,
            {"class_weights": "inverse"},
            "loss.class_weights",
            "'balanced' or 3 numbers",
        ),
    ],
)
def test_build_loss_refuses_what_does_not_fit(name, task, num_classes, kwargs, setting, allowed):
    with pytest.raises(ConfigError) as info:
        build_loss(name, task, num_classes, torch.tensor([0, 1]), **kwargs)
    assert info.value.setting == setting
    assert allowed in info.value.allowed


@pytest.mark.parametrize("name", sorted(n for n, (t, _) in LOSSES.items() if t == REGRESSION))
def test_regression_losses_build_and_run(name):
    loss = build_loss(name, REGRESSION, None, torch.zeros(3, 1))
    value = loss(torch.ones(3, 1), torch.zeros(3, 1))
    assert value.item() == pytest.approx(
        {"mse": 1.0, "mae": 1.0, "huber": 0.5, "log_cosh": math.log(math.cosh(1.0))}[name]
    )


# ----------------------------------------------------------------- init


def _mlp(activation: str = "relu", hidden=(32, 16)) -> MLP:
    torch.manual_seed(0)
    return MLP(8, 3, list(hidden), activation=activation)


def _linears(net: nn.Module) -> list[nn.Linear]:
    return [m for m in net.modules() if isinstance(m, nn.Linear)]


@pytest.mark.parametrize("scheme", [*sorted(SCHEMES), "default"])
@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu"])
def test_every_scheme_runs(scheme, activation):
    net = _mlp(activation)
    apply_init(net, scheme, activation)
    for layer in _linears(net):
        assert torch.isfinite(layer.weight).all()
        if scheme != "default":
            assert torch.count_nonzero(layer.bias) == 0
    assert net(torch.randn(4, 8)).shape == (4, 3)


def test_default_keeps_torchs_own_init():
    net = _mlp()
    before = [p.clone() for p in net.parameters()]
    apply_init(net, "default", "relu")
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))
    assert any(torch.count_nonzero(layer.bias) > 0 for layer in _linears(net))


def _big(fan_in: int = 256, fan_out: int = 1024) -> nn.Linear:
    torch.manual_seed(0)
    return nn.Linear(fan_in, fan_out)  # weight (fan_out, fan_in): fans differ on purpose


@pytest.mark.parametrize(
    "activation, gain", [("relu", math.sqrt(2)), ("tanh", 5 / 3), ("identity", 1.0), ("gelu", 1.0)]
)
def test_xavier_normal_std(activation, gain):
    layer = _big()
    apply_init(nn.Sequential(layer), "xavier_normal", activation)
    expected = gain * math.sqrt(2 / (256 + 1024))
    assert layer.weight.std().item() == pytest.approx(expected, rel=0.02)
    assert layer.weight.mean().abs().item() < expected * 0.02


def test_xavier_uniform_bound():
    layer = _big()
    apply_init(nn.Sequential(layer), "xavier_uniform", "identity")
    bound = math.sqrt(6 / (256 + 1024))
    assert layer.weight.abs().max().item() <= bound
    assert layer.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.02)


@pytest.mark.parametrize("scheme", ["he_normal", "he_uniform"])
def test_he_std_is_sqrt_two_over_fan_in(scheme):
    layer = _big()
    apply_init(nn.Sequential(layer), scheme, "relu")
    assert layer.weight.std().item() == pytest.approx(math.sqrt(2 / 256), rel=0.02)


def test_zeros_gives_zero_weights_and_identical_hidden_units():
    net = _mlp(hidden=(6,))
    apply_init(net, "zeros", "relu")
    assert all(torch.count_nonzero(p) == 0 for p in net.parameters())
    hidden = net.blocks(torch.randn(5, 8))
    assert torch.equal(hidden, hidden[:, :1].expand_as(hidden))  # every unit the same
    # ... and stays so: every hidden unit gets the same gradient (symmetry is not broken)
    x, y = torch.randn(16, 8), torch.randint(0, 3, (16,))
    net.head.weight.data.fill_(0.1)  # let gradient reach the hidden layer
    F.cross_entropy(net(x), y).backward()
    grad = net.blocks[0].linear.weight.grad
    assert torch.equal(grad, grad[:1].expand_as(grad))


@pytest.mark.parametrize("shape", [(256, 256), (512, 128)])
def test_orthogonal_rows_are_orthonormal(shape):
    fan_in, fan_out = shape
    layer = _big(fan_in, fan_out)
    apply_init(nn.Sequential(layer), "orthogonal", "identity")  # gain 1
    w = layer.weight.double()  # (fan_out, fan_in), fan_out <= fan_in
    torch.testing.assert_close(w @ w.T, torch.eye(fan_out, dtype=torch.float64), atol=1e-5, rtol=0)


def test_orthogonal_uses_the_activation_gain():
    layer = _big(256, 256)
    apply_init(nn.Sequential(layer), "orthogonal", "relu")
    w = layer.weight.double()
    torch.testing.assert_close(w @ w.T, 2 * torch.eye(256, dtype=torch.float64), atol=1e-5, rtol=0)


@pytest.mark.parametrize("std", [0.01, 0.5])
def test_normal_honours_std(std):
    layer = _big()
    apply_init(nn.Sequential(layer), "normal", "relu", std=std)
    assert layer.weight.std().item() == pytest.approx(std, rel=0.02)
    assert torch.count_nonzero(layer.bias) == 0


def test_init_refuses_unknown_scheme_and_bad_std():
    with pytest.raises(ConfigError) as info:
        apply_init(_mlp(), "glorot", "relu")
    assert info.value.setting == "init.scheme"
    assert info.value.allowed == "one of: " + ", ".join(sorted(SCHEMES))
    for std in (0, -0.1):
        with pytest.raises(ConfigError, match="init.std"):
            apply_init(_mlp(), "normal", "relu", std=std)


# ----------------------------------------------------------------- layers


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_every_activation_builds(name):
    act = activation_class(name)()
    assert isinstance(act, nn.Module)
    x = torch.linspace(-3, 3, 7)
    assert act(x).shape == x.shape


def test_unknown_activation_and_norm_list_the_allowed_names():
    with pytest.raises(ConfigError) as info:
        activation_class("swishy")
    assert info.value.setting == "model.activation"
    assert info.value.allowed == "one of: " + ", ".join(sorted(ACTIVATIONS))
    assert "swishy" in str(info.value) and "leaky_relu" in str(info.value)
    with pytest.raises(ConfigError) as info:
        norm_class("group")
    assert info.value.setting == "model.norm"
    assert info.value.allowed == "one of: batch, layer, none"


def test_norms_build_at_the_given_width():
    assert isinstance(make_norm(None, 8), nn.Identity)
    assert isinstance(make_norm("none", 8), nn.Identity)
    assert make_norm("batch", 8).num_features == 8
    assert make_norm("layer", 8).normalized_shape == (8,)
    assert set(NORMS) == {"none", "batch", "layer"}


def test_leaky_relu_slope_is_a_parameter_not_a_constant():
    """Teaching note: for x < 0 LeakyReLU gives slope * x (default slope 0.01), not 0.01."""
    act = activation_class("leaky_relu")()
    assert act.negative_slope == 0.01
    x = torch.tensor([-100.0, -3.0, -0.5, 0.0, 2.0])
    torch.testing.assert_close(act(x), torch.tensor([-1.0, -0.03, -0.005, 0.0, 2.0]))
    assert len(set(act(x[:3]).tolist())) == 3  # not one constant for every negative input
    steep = nn.LeakyReLU(negative_slope=0.2)
    torch.testing.assert_close(steep(torch.tensor([-3.0])), torch.tensor([-0.6]))


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_dropout_is_inverted_dropout(p):
    """Teaching note: training scales kept units by 1/(1-p); evaluation is the identity."""
    drop = nn.Dropout(p)
    torch.manual_seed(0)
    x = torch.full((100_000,), 3.0)
    out = drop.train()(x)
    kept = out != 0
    torch.testing.assert_close(out[kept], torch.full_like(out[kept], 3.0 / (1 - p)))
    assert kept.float().mean().item() == pytest.approx(1 - p, abs=0.01)
    assert out.mean().item() == pytest.approx(3.0, rel=0.02)  # expectation preserved
    assert torch.equal(drop.eval()(x), x)  # no test-time scaling


# ----------------------------------------------------------------- MLP


def test_mlp_plain_layers_and_shape():
    net = MLP(10, 3, [32, 16])
    assert len(net.blocks) == 2
    first, second = net.blocks
    assert (first.linear.in_features, first.linear.out_features) == (10, 32)
    assert (second.linear.in_features, second.linear.out_features) == (32, 16)
    assert (net.head.in_features, net.head.out_features) == (16, 3)
    for block in net.blocks:
        assert isinstance(block.norm, nn.Identity) and isinstance(block.drop, nn.Identity)
        assert isinstance(block.act, nn.ReLU) and not block.residual
    assert net(torch.randn(5, 10)).shape == (5, 3)
    assert net(torch.randn(1, 10)).shape == (1, 3)


def test_mlp_variants_have_the_expected_layers():
    net = MLP(10, 3, [32, 32, 8], activation="tanh", dropout=0.3, norm="batch", residual=True)
    for block in net.blocks:
        assert isinstance(block.norm, nn.BatchNorm1d) and block.norm.num_features == (
            block.linear.out_features
        )
        assert isinstance(block.drop, nn.Dropout) and block.drop.p == 0.3
        assert isinstance(block.act, nn.Tanh)
    # a skip only where the block's input and output widths agree
    assert [b.residual for b in net.blocks] == [False, True, False]
    assert net(torch.randn(4, 10)).shape == (4, 3)
    layer = MLP(10, 2, [16], norm="layer")
    assert isinstance(layer.blocks[0].norm, nn.LayerNorm)
    assert layer(torch.randn(3, 10)).shape == (3, 2)


def test_mlp_residual_adds_the_input():
    net = MLP(4, 2, [4], activation="identity", residual=True)
    block = net.blocks[0]
    x = torch.randn(3, 4)
    torch.testing.assert_close(block(x), x + block.linear(x))


@pytest.mark.parametrize("hidden", [[], [64, -1], [64, 0], [64, 2.5], "64", 64, None, [[64]]])
def test_mlp_refuses_bad_hidden_sizes(hidden):
    with pytest.raises(ConfigError) as info:
        MLP(10, 3, hidden)
    assert info.value.setting == "model.hidden_sizes"
    assert info.value.allowed == "a non-empty list of positive integers"


@pytest.mark.parametrize(
    "kwargs, setting",
    [
        ({"dropout": 1.0}, "model.dropout"),
        ({"dropout": -0.1}, "model.dropout"),
        ({"activation": "nosuch"}, "model.activation"),
        ({"norm": "nosuch"}, "model.norm"),
    ],
)
def test_mlp_refuses_bad_settings(kwargs, setting):
    with pytest.raises(ConfigError) as info:
        MLP(10, 3, [8], **kwargs)
    assert info.value.setting == setting


# ----------------------------------------------------------------- EpochMetrics


def _identity(t: torch.Tensor) -> torch.Tensor:
    return t


def test_classification_metrics_match_a_direct_computation():
    gen = torch.Generator().manual_seed(0)
    sizes = [3, 7, 1, 5]
    metrics = EpochMetrics(CLASSIFICATION)
    all_logits, all_targets, losses = [], [], []
    for n in sizes:
        logits, targets = torch.randn(n, 4, generator=gen), torch.randint(0, 4, (n,), generator=gen)
        loss = F.cross_entropy(logits, targets)
        metrics.update(logits, targets, loss)
        all_logits.append(logits)
        all_targets.append(targets)
        losses.append(loss)
    logits, targets = torch.cat(all_logits), torch.cat(all_targets)
    out = metrics.compute(_identity)
    torch.testing.assert_close(out["loss"], F.cross_entropy(logits, targets))  # per-sample mean
    assert out["loss"].item() != pytest.approx(torch.stack(losses).mean().item())  # not batch mean
    assert out["acc"].item() == pytest.approx((logits.argmax(1) == targets).float().mean().item())
    metrics.reset()
    assert metrics.compute(_identity) == {}


def test_binary_metrics_use_the_step_on_one_output():
    metrics = EpochMetrics(CLASSIFICATION)
    scores = torch.tensor([[0.5], [-0.2], [0.0], [3.0]])
    metrics.update(scores, torch.tensor([1, 0, 1, 0]), torch.tensor(0.0))
    assert metrics.compute(_identity)["acc"].item() == pytest.approx(0.5)  # 0.0 -> class 0


def test_regression_metrics_match_a_direct_computation():
    gen = torch.Generator().manual_seed(1)
    metrics = EpochMetrics(REGRESSION)
    preds, targets = [], []
    for n in (4, 9, 2):
        p, t = torch.randn(n, 2, generator=gen), torch.randn(n, 2, generator=gen)
        metrics.update(p, t, F.mse_loss(p, t))
        preds.append(p)
        targets.append(t)
    p, t = torch.cat(preds), torch.cat(targets)
    out = metrics.compute(_identity)
    torch.testing.assert_close(out["mae"], (p - t).abs().mean())
    torch.testing.assert_close(out["rmse"], (p - t).pow(2).mean().sqrt())
    torch.testing.assert_close(out["loss"], F.mse_loss(p, t))
    assert set(out) == {"loss", "mae", "rmse"}


def test_metrics_summed_over_ranks_equal_one_process():
    gen = torch.Generator().manual_seed(2)
    logits, targets = torch.randn(10, 3, generator=gen), torch.randint(0, 3, (10,), generator=gen)
    whole, ranks = EpochMetrics(CLASSIFICATION), [EpochMetrics(CLASSIFICATION) for _ in range(2)]
    whole.update(logits, targets, F.cross_entropy(logits, targets))
    for rank, part in zip(ranks, (slice(0, 6), slice(6, 10)), strict=True):
        rank.update(logits[part], targets[part], F.cross_entropy(logits[part], targets[part]))
    other = ranks[1].sums
    merged = ranks[0].compute(lambda t: t + other)  # what an all-reduce sum gives
    for name, value in whole.compute(_identity).items():
        torch.testing.assert_close(merged[name], value)


# ----------------------------------------------------------------- schedulers


def _optimizer(lr: float = 1.0) -> torch.optim.Optimizer:
    return torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)


def _lrs(scheduler, optimizer, steps: int) -> list[float]:
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def test_linear_warmup_rises_linearly_then_decays_to_min():
    opt = _optimizer(0.5)
    lrs = _lrs(linear_warmup(opt, warmup_steps=4, total_steps=14, min_lr_ratio=0.1), opt, 20)
    assert lrs[:4] == pytest.approx([0.125, 0.25, 0.375, 0.5])  # (step + 1) / warmup * lr
    assert lrs[4] == pytest.approx(0.5)  # peak right after warm-up
    decay = lrs[4:15]
    assert all(a > b for a, b in itertools.pairwise(decay))  # strictly decreasing
    mid = 4 + (14 - 4) // 2
    assert lrs[mid] == pytest.approx(0.5 * (0.1 + 0.9 * 0.5))  # half-way down the cosine
    assert lrs[14:] == pytest.approx([0.05] * 6)  # min_lr_ratio * lr, and stays there


def test_linear_warmup_constant_and_unknown_decay():
    opt = _optimizer(1.0)
    lrs = _lrs(linear_warmup(opt, warmup_steps=2, total_steps=10, decay="constant"), opt, 6)
    assert lrs == pytest.approx([0.5, 1.0, 1.0, 1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="cosine"):
        linear_warmup(_optimizer(), 2, decay="linear")


def test_build_scheduler_passes_total_steps_only_where_taken_and_unset():
    opt = _optimizer(0.01)
    onecycle = build_scheduler(
        functools.partial(torch.optim.lr_scheduler.OneCycleLR, max_lr=0.1), opt, 123.0
    )
    assert onecycle.total_steps == 123
    opt = _optimizer(0.01)
    fixed = build_scheduler(
        functools.partial(torch.optim.lr_scheduler.OneCycleLR, max_lr=0.1, total_steps=7), opt, 123
    )
    assert fixed.total_steps == 7  # the config's own value wins
    opt = _optimizer(0.01)
    step = build_scheduler(
        functools.partial(torch.optim.lr_scheduler.StepLR, step_size=2), opt, 123
    )  # StepLR would raise on an unexpected total_steps
    assert isinstance(step, torch.optim.lr_scheduler.StepLR)
    opt = _optimizer(1.0)
    warm = build_scheduler(functools.partial(linear_warmup, warmup_steps=2), opt, 6)
    assert _lrs(warm, opt, 8)[-2:] == pytest.approx([0.0, 0.0])  # decayed to 0 by step 6
