"""Every option of every config group composes, resolves and builds; real runs on CPU.

Options are discovered from conf/<group>/*.yaml and tests/fixtures/conf/<group>/*.yaml
(a forker's own net and Lightning-idiom module) when the tests are collected, so a
new YAML is covered without editing this file. An option that only fits some data
(a regression loss, bce) gets its companions from COMPANIONS; every other option is
tried with the defaults of conf/train.yaml. Data options reading IDX files (mnist,
fashion_mnist) get tiny IDX files written into a temp dir instead of a download.
"""

from __future__ import annotations

import gzip
import itertools
import math
import struct
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from conftest import FIXTURES, FORK_CONF
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf
from torch.optim.lr_scheduler import ReduceLROnPlateau

from neuralab.checks import check_trainer
from neuralab.compose import build_datamodule, build_module, build_trainer
from neuralab.layers import ACTIVATIONS
from neuralab.modules.supervised import SupervisedModule
from neuralab.runtime.config import config_dir, register_resolvers, to_plain
from neuralab.schedulers import build_scheduler

CONF = Path(config_dir())
CONF_DIRS = (CONF, FIXTURES / "conf")
# conf/ folders that are not option groups: shared bases, single-option infra, machine-local.
NOT_GROUPS = {"_base", "hydra", "paths", "local"}
EXPECTED_GROUPS = {
    "data",
    "model",
    "module",
    "loss",
    "optimizer",
    "scheduler",
    "init",
    "trainer",
    "logger",
    "callbacks",
    "debug",
    "experiment",
    "hparams_search",
}

GROUPS = sorted(d.name for d in CONF.iterdir() if d.is_dir() and d.name not in NOT_GROUPS)
OPTIONS = {g: sorted({p.stem for c in CONF_DIRS for p in (c / g).glob("*.yaml")}) for g in GROUPS}

# Options that only fit some data (or another option). Anything not listed runs with
# the defaults of conf/train.yaml (digits, mlp, cross_entropy, ...).
REGRESSION = ("data=diabetes",)
COMPANIONS: dict[str, tuple[str, ...]] = {
    "loss=mse": REGRESSION,
    "loss=mae": REGRESSION,
    "loss=huber": REGRESSION,
    "loss=log_cosh": REGRESSION,
    "loss=bce": ("data=breast_cancer",),  # one logit: 2 classes only
    "module=perceptron": ("model=perceptron",),  # the perceptron rule updates a Perceptron
}
# Models trained without backprop: optimizer/scheduler are unused, model.activation absent.
NO_BACKPROP_MODELS = {"perceptron"}

# Hand-picked runs; COMBOS adds more until every optimizer/scheduler/init is in one.
PREFERRED_COMBOS = [
    ("optimizer=sgd", "scheduler=step", "init=he_normal"),
    ("optimizer=adamw", "scheduler=onecycle", "init=xavier_uniform", "model.activation=tanh"),
    ("optimizer=momentum", "scheduler=plateau", "init=orthogonal"),
    ("optimizer=rmsprop", "scheduler=cosine", "init=normal"),
    ("optimizer=nesterov", "scheduler=cyclic", "init=zeros"),
    ("optimizer=adagrad", "scheduler=warmup", "init=he_uniform"),
    ("optimizer=adam", "scheduler=exponential", "init=xavier_normal"),
]
COMBO_GROUPS = ("optimizer", "scheduler", "init")

N_TRAIN_IDX, N_TEST_IDX, SIDE = 40, 20, 28


register_resolvers()


def option_params(*groups: str):
    return [pytest.param(g, o, id=f"{g}={o}") for g in groups for o in OPTIONS.get(g, [])]


def companions(group: str, option: str) -> tuple[str, ...]:
    return COMPANIONS.get(f"{group}={option}", ())


def _choice(override: str) -> tuple[str, str]:
    key, _, value = override.partition("=")
    return key, value


def _build_combos() -> list[tuple[str, ...]]:
    """PREFERRED_COMBOS that still exist, plus cycled combos for every uncovered option."""
    combos = [
        c for c in PREFERRED_COMBOS if all(v in OPTIONS.get(k, [v]) for k, v in map(_choice, c))
    ]
    covered = {_choice(o) for c in combos for o in c}
    missing = {g: [o for o in OPTIONS[g] if (g, o) not in covered] for g in COMBO_GROUPS}
    for i in range(max(map(len, missing.values()))):
        combos.append(
            tuple(
                f"{g}={missing[g][i] if i < len(missing[g]) else OPTIONS[g][i % len(OPTIONS[g])]}"
                for g in COMBO_GROUPS
            )
        )
    return combos


def _model_runs() -> list[tuple[str, tuple[str, ...]]]:
    """Every model with a few combos; the backprop models share all combos between them."""
    combos = _build_combos()
    backprop = [m for m in OPTIONS["model"] if m not in NO_BACKPROP_MODELS]
    per_model = max(3, math.ceil(len(combos) / max(1, len(backprop))))
    counter = itertools.count()
    runs = []
    for model in OPTIONS["model"]:
        for j in range(per_model):
            if model in NO_BACKPROP_MODELS:
                combo = tuple(o for o in combos[j % len(combos)] if not o.startswith("model."))
            else:
                combo = combos[next(counter) % len(combos)]
            runs.append((model, combo))
    return runs


MODEL_RUNS = _model_runs()


# ------------------------------------------------------------------ helpers
def _idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    return header + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()


@pytest.fixture(scope="module")
def idx_dir(tmp_path_factory) -> Path:
    """Tiny gzipped IDX sets (labels 0..9, 28x28) for every name neuralab reads."""
    from neuralab.data.idx import IDX_SETS

    root = tmp_path_factory.mktemp("idx")
    rng = np.random.default_rng(0)
    for name in IDX_SETS:
        arrays = {
            "train-images-idx3-ubyte.gz": rng.integers(0, 256, (N_TRAIN_IDX, SIDE, SIDE)),
            "train-labels-idx1-ubyte.gz": np.arange(N_TRAIN_IDX) % 10,
            "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (N_TEST_IDX, SIDE, SIDE)),
            "t10k-labels-idx1-ubyte.gz": np.arange(N_TEST_IDX) % 10,
        }
        (root / name).mkdir()
        for filename, array in arrays.items():
            (root / name / filename).write_bytes(gzip.compress(_idx_bytes(array), mtime=0))
    return root


def _idx_overrides(idx_dir: Path) -> list[str]:
    return [f"data.params.data_dir={idx_dir}", "data.params.download=false"]


def compose_cfg(overrides: list[str], out_dir: Path, idx_dir: Path | None = None) -> DictConfig:
    """conf/train.yaml composed as neuralab-train would, with the hydra node set.

    A config whose data reads IDX files is composed again pointing at `idx_dir`.
    """
    overrides = [FORK_CONF, *overrides]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
        if idx_dir is not None and cfg.data.source == "idx":
            cfg = compose(
                "train", overrides=[*overrides, *_idx_overrides(idx_dir)], return_hydra_config=True
            )
    # What Hydra fills in when it runs a job: ${hydra:runtime.output_dir} and the job num.
    cfg.hydra.runtime.output_dir = str(out_dir)
    cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    return cfg


@pytest.fixture(autouse=True)
def _forget_hydra_config():
    """compose_cfg sets Hydra's global job config (as a job would); later tests must not
    see it (e.g. Optuna pruning would think it runs inside a sweep)."""
    yield
    HydraConfig.instance().cfg = None


def job_config(cfg: DictConfig) -> DictConfig:
    """The config the job sees (no hydra node), as neuralab-train receives it."""
    return OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])


def uses_idx(overrides: list[str], tmp_path: Path) -> bool:
    return compose_cfg(overrides, tmp_path / "probe").data.source == "idx"


def _trainer_fits_this_machine(cfg: DictConfig) -> bool:
    return cfg.trainer.get("accelerator") not in ("gpu", "cuda") or torch.cuda.is_available()


def fast_dev_run(run_cli, *overrides: str):
    """neuralab-train in-process, one batch per stage, on CPU."""
    return run_cli("train", FORK_CONF, *overrides, "trainer=cpu", "debug=fast")


def assert_ok(run) -> dict:
    assert run.code == 0, run.out[-4000:]
    results = run.results()
    assert results["status"] == "ok", results
    test = {k: v for k, v in results["metrics"].items() if k.startswith("test_")}
    assert test, results["metrics"]
    assert all(math.isfinite(v) for v in test.values()), test
    return results


# ---------------------------------------------------------------- discovery
@pytest.mark.fast
def test_every_group_is_discovered():
    assert EXPECTED_GROUPS <= set(GROUPS), f"missing groups: {EXPECTED_GROUPS - set(GROUPS)}"
    empty = [g for g in GROUPS if not OPTIONS[g]]
    assert not empty, f"config groups without any YAML: {empty}"
    train_defaults = str(OmegaConf.load(CONF / "train.yaml").defaults)
    unwired = [g for g in GROUPS if f"'{g}'" not in train_defaults]
    assert not unwired, f"groups not in conf/train.yaml's defaults: {unwired}"


@pytest.mark.fast
def test_companions_name_real_options():
    for key, extra in COMPANIONS.items():
        for override in (key, *extra):
            group, option = _choice(override)
            assert option in OPTIONS.get(group, []), f"COMPANIONS names missing {override}"


@pytest.mark.fast
def test_model_runs_cover_every_optimizer_scheduler_init():
    covered = {_choice(o) for m, c in MODEL_RUNS if m not in NO_BACKPROP_MODELS for o in c}
    for group in COMBO_GROUPS:
        assert {o for g, o in covered if g == group} == set(OPTIONS[group]), group
    assert {m for m, _ in MODEL_RUNS} == set(OPTIONS["model"])


# ------------------------------------------ compose + resolve + instantiate
@pytest.mark.fast
@pytest.mark.parametrize("group, option", option_params(*GROUPS))
def test_option_composes_and_builds(group, option, tmp_path, monkeypatch, idx_dir):
    monkeypatch.chdir(tmp_path)
    overrides = [f"{group}={option}", *companions(group, option)]
    cfg = compose_cfg(overrides, tmp_path / "run", idx_dir)
    assert cfg.hydra.runtime.choices[group] == option

    resolved = OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
    assert resolved["paths"]["output_dir"] == str(tmp_path / "run")
    job = job_config(cfg)
    config = to_plain(job)  # also raises on any ??? left in the job config

    if group == "hparams_search":
        params = cfg.hydra.sweeper.params
        assert params, f"{option} sets no hydra.sweeper.params"
        for key, values in params.items():
            assert OmegaConf.select(job, key) is not None, f"sweeps unknown key {key}"
            assert str(values).strip(), key
        return

    check_trainer(job, multirun=False)
    datamodule = build_datamodule(job)
    assert datamodule.num_features == job.data.num_features
    module = build_module(job, datamodule, config)
    assert isinstance(module.net, get_class(job.model._target_))
    _one_training_step(module, datamodule)

    if not _trainer_fits_this_machine(job):
        # A GPU trainer on a CPU-only machine: its composed fields, not a Trainer.
        assert job.trainer._target_ == "lightning.Trainer"
        assert get_class(job.trainer._target_) is L.Trainer
        assert job.trainer.accelerator in ("gpu", "cuda")
        assert job.trainer.devices is not None
        return
    trainer = build_trainer(job)
    assert isinstance(trainer, L.Trainer)
    _assert_parts_built(job, trainer)


def _one_training_step(module: L.LightningModule, datamodule) -> None:
    """Forward one train batch; for backprop modules also take one optimizer/scheduler step."""
    x, y = next(iter(datamodule.train_dataloader()))
    out = module(x)
    assert out.shape[0] == x.shape[0] and torch.isfinite(out).all()
    if not isinstance(module, SupervisedModule):
        return
    optimizer = module.optimizer_factory(module.net.parameters())
    scheduler = (
        build_scheduler(module.scheduler_factory, optimizer, total_steps=10)
        if module.scheduler_factory is not None
        else None
    )
    loss = module.loss_fn(out, y)
    assert torch.isfinite(loss)
    loss.backward()
    optimizer.step()
    if isinstance(scheduler, ReduceLROnPlateau):
        scheduler.step(float(loss.detach()))
    elif scheduler is not None:
        scheduler.step()
    lr = optimizer.param_groups[0]["lr"]
    assert math.isfinite(lr) and lr >= 0
    assert all(torch.isfinite(p).all() for p in module.net.parameters())


def _targets(group: DictConfig | None) -> list[type]:
    return [
        get_class(c._target_) for c in (group or {}).values() if c is not None and "_target_" in c
    ]


def _assert_parts_built(job: DictConfig, trainer: L.Trainer) -> None:
    for cls in _targets(job.get("callbacks")):
        assert any(isinstance(cb, cls) for cb in trainer.callbacks), cls
    if job.trainer.get("fast_dev_run"):  # Lightning swaps the loggers for a DummyLogger
        assert trainer.fast_dev_run
        return
    for cls in _targets(job.get("logger")):
        assert any(isinstance(lg, cls) for lg in trainer.loggers), cls
    assert len(trainer.loggers) == len(_targets(job.get("logger")))
    assert trainer.max_epochs == job.trainer.max_epochs


# ------------------------------------------------------- end-to-end (CPU)
def _model_run_params() -> list:
    """Every model run; the first of each model is in the fast tier."""
    seen: set[str] = set()
    params = []
    for m, c in MODEL_RUNS:
        marks = [pytest.mark.fast] if m not in seen else []
        seen.add(m)
        params.append(pytest.param(m, c, id=" ".join([f"model={m}", *c]), marks=marks))
    return params


@pytest.mark.parametrize("model, combo", _model_run_params())
def test_model_fast_dev_run(run_cli, model, combo):
    run = fast_dev_run(run_cli, f"model={model}", *combo)
    hparams = assert_ok(run)["hparams"]
    assert hparams["model"] == model
    chosen = dict(map(_choice, combo))
    if model in NO_BACKPROP_MODELS:
        assert hparams["optimizer"] == "perceptron_rule", hparams
    else:
        assert (hparams["optimizer"], hparams["scheduler"]) == (
            chosen["optimizer"],
            chosen["scheduler"],
        ), hparams
        assert hparams["activation"] == chosen.get("model.activation", hparams["activation"])


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_activation_fast_dev_run(run_cli, activation):
    run = fast_dev_run(run_cli, "model=mlp", f"model.activation={activation}")
    assert assert_ok(run)["hparams"]["activation"] == activation


@pytest.mark.parametrize("group, option", option_params("loss", "data"))
def test_loss_and_data_fast_dev_run(run_cli, group, option, tmp_path, idx_dir):
    overrides = [f"{group}={option}", *companions(group, option)]
    if uses_idx(overrides, tmp_path):
        overrides += _idx_overrides(idx_dir)
    run = fast_dev_run(run_cli, *overrides)
    results = assert_ok(run)
    if group == "loss":
        assert results["hparams"]["loss"] == OmegaConf.load(CONF / "loss" / f"{option}.yaml").name
    else:
        assert results["hparams"]["data"] == option


@pytest.mark.fast
@pytest.mark.parametrize("group, option", option_params("module"))
def test_module_fast_dev_run(run_cli, group, option):
    """Every module (neuralab's and a forker's) trains, validates and tests; results.json
    gets its epoch count and the objective whatever the module logs."""
    results = assert_ok(fast_dev_run(run_cli, f"{group}={option}", *companions(group, option)))
    assert results["epochs"] == 1
    assert math.isfinite(results["metrics"]["best_val_loss"]), results["metrics"]
