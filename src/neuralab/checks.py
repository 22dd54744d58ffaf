"""Checks on settings that torch would only reject mid-run (or never): the refusal table.

Each check raises ConfigError (setting, value, what is allowed); the entry points turn it
into one line on stderr and exit 2, with nothing written (runtime/run_guard.py). This
module imports no torch: `check_config` runs before the heavy imports, so a typo is
answered in about a second (the checks that need the data, the net or the machine's
devices run later, still before any data loads or training starts).
"""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf

from neuralab.errors import ConfigError


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


MAX_SEED = 2**32 - 1  # numpy's seeds are 32-bit
NOT_ONLY_NUMBERS = frozenset({"trainer.devices"})  # also "auto", "0,1" (check_devices)
# Settings that count something (their last name): integers. Other numbers may be floats.
COUNTS = frozenset(
    {"seed", "max_epochs", "min_epochs", "max_steps", "batch_size", "eval_batch_size"}
    | {"patience", "check_every_n_steps", "num_nodes", "log_every_n_steps", "steps_per_chunk"}
)


def check_types(cfg: DictConfig, defaults: DictConfig | None, overrides: list[str]) -> None:
    """A setting whose default is a number takes a number (or null): `seed=abc` or
    `optimizer.lr=1e-3x` would otherwise reach torch as a string and fail mid-run.
    `defaults` is the config composed without this command's value overrides."""
    if defaults is None:
        return
    for key in (override_key(o) for o in overrides):
        default = OmegaConf.select(defaults, key, default=None, throw_on_resolution_failure=False)
        if not _is_number(default) or key in NOT_ONLY_NUMBERS:
            continue
        value = OmegaConf.select(cfg, key, default=None, throw_on_resolution_failure=False)
        if value is not None and not _is_number(value):
            kind = "an integer" if key.rpartition(".")[2] in COUNTS else "a number"
            raise ConfigError(key, value, f"{kind} (the default is {default})")


def override_key(override: str) -> str:
    """`optimizer.lr` of `optimizer.lr=0.1`, `+optimizer.lr=0.1`, `~optimizer.lr`."""
    return str(override).partition("=")[0].lstrip("+~")


def check_seed(seed: object) -> None:
    """null: Lightning draws one (and logs it)."""
    if seed is not None and (not _is_int(seed) or not 0 <= seed <= MAX_SEED):
        raise ConfigError("seed", seed, f"an integer in [0, {MAX_SEED}]")


EPOCHS = "an integer >= 1, or -1 (no limit) with trainer.max_steps > 0 or trainer.max_time set"


def check_epochs(trainer: DictConfig) -> None:
    """max_epochs < 1 trains nothing (0: the untrained net is tested and reported ok) or
    forever (-1): -1 only with a limit of another kind. null is Lightning's default."""
    max_epochs = trainer.get("max_epochs")
    if max_epochs is not None and (not _is_int(max_epochs) or max_epochs < 1):
        max_steps = trainer.get("max_steps", -1)
        stops = (_is_int(max_steps) and max_steps > 0) or trainer.get("max_time") is not None
        if max_epochs != -1 or not stops:
            raise ConfigError("trainer.max_epochs", max_epochs, EPOCHS)
    min_epochs = trainer.get("min_epochs")
    if min_epochs is not None and (not _is_int(min_epochs) or min_epochs < 0):
        raise ConfigError("trainer.min_epochs", min_epochs, "null or an integer >= 0")


def check_config(
    cfg: DictConfig, defaults: DictConfig | None, overrides: list[str], multirun: bool
) -> None:
    """Everything neuralab-train refuses from the config alone (no torch needed)."""
    check_types(cfg, defaults, overrides)
    check_run_settings(cfg)
    check_trainer(cfg, multirun=multirun)
    if cfg.get("optimizer"):
        check_optimizer(cfg.optimizer)


def check_optimizer(opt: DictConfig) -> None:
    lr = opt.get("lr")
    if not _is_number(lr) or lr <= 0:
        raise ConfigError("optimizer.lr", lr, "a number > 0")
    wd = opt.get("weight_decay", 0.0)
    if not _is_number(wd) or wd < 0:
        raise ConfigError("optimizer.weight_decay", wd, "a number >= 0")
    momentum = opt.get("momentum", 0.0)
    if not _is_number(momentum) or not 0 <= momentum < 1:
        raise ConfigError("optimizer.momentum", momentum, "a number in [0, 1)")


def check_trainer(cfg: DictConfig, multirun: bool) -> None:
    """Refuse what Lightning would start and then break."""
    check_strategy(cfg.trainer, multirun)
    check_precision(cfg.trainer)
    check_epochs(cfg.trainer)
    clip = cfg.trainer.get("gradient_clip_val")
    if clip is not None and (not _is_number(clip) or clip <= 0):
        raise ConfigError("trainer.gradient_clip_val", clip, "null or a number > 0")
    algo = cfg.trainer.get("gradient_clip_algorithm", "norm")
    if algo not in ("norm", "value"):
        raise ConfigError("trainer.gradient_clip_algorithm", algo, ["norm", "value"])


# Lightning strategies that start ranks > 0 by re-running this command (sys.argv).
SUBPROCESS_DDP = ("ddp", "ddp_find_unused_parameters_false", "ddp_find_unused_parameters_true")
PRECISIONS = ("32-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true")


def check_strategy(trainer: DictConfig, multirun: bool) -> None:
    """Subprocess DDP inside a multirun re-runs the whole sweep on every rank (and an Optuna
    sweeper samples other hyperparameters there), unless the cluster started the ranks:
    a SLURM job of hydra/launcher=slurm, one task per device, runs exactly one job."""
    strategy = trainer.get("strategy", "auto")
    if multirun and strategy in SUBPROCESS_DDP and not ranks_started_by_submitit():
        raise ConfigError(
            "trainer.strategy",
            strategy,
            "ddp_notebook inside a multirun (trainer=ddp_fork, or trainer=ddp_cpu on CPU), or "
            "trainer=ddp with hydra/launcher=slurm: subprocess ddp re-runs the whole sweep "
            "on every rank",
        )


def ranks_started_by_submitit() -> bool:
    """This process is one task of a SLURM job that submitit started (every rank a task)."""
    return os.environ.get("SUBMITIT_EXECUTOR") == "slurm" and "SLURM_NTASKS" in os.environ


def check_precision(trainer: DictConfig) -> None:
    """A known precision, and no float16 autocast on CPU: Lightning would quietly train in
    bfloat16 instead of what the config says."""
    precision = trainer.get("precision", "32-true")
    if precision not in PRECISIONS:  # also Lightning's older 16, 32, "bf16": one name each
        raise ConfigError("trainer.precision", precision, list(PRECISIONS))
    if precision == "16-mixed" and not _trains_on_gpu(trainer):
        raise ConfigError(
            "trainer.precision",
            precision,
            "bf16-mixed or 32-true on CPU (float16 autocast needs a GPU)",
        )


def _trains_on_gpu(trainer: DictConfig) -> bool:
    from lightning.fabric.accelerators import CUDAAccelerator, MPSAccelerator

    accelerator = str(trainer.get("accelerator", "auto"))
    if accelerator == "auto":  # what Lightning picks: CUDA, else MPS, else the CPU
        return CUDAAccelerator.is_available() or MPSAccelerator.is_available()
    return accelerator in ("gpu", "cuda", "mps")


ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")
DEVICES = "a count >= 1, -1 or auto (all of them), or a list of device indices"


def check_devices(trainer: DictConfig, gpus: int, mps: bool, strategies: list[str]) -> None:
    """An accelerator, device count and strategy that can start on this machine (`gpus`
    CUDA devices, an Apple GPU or not), before Lightning fails with a long traceback."""
    accelerator = str(trainer.get("accelerator", "auto"))
    if accelerator not in ACCELERATORS:
        raise ConfigError("trainer.accelerator", accelerator, list(ACCELERATORS))
    kind = ("cuda" if gpus else "mps" if mps else "cpu") if accelerator == "auto" else accelerator
    available = {"cpu": None, "cuda": gpus, "mps": int(mps), "gpu": gpus or int(mps)}[kind]
    if available == 0:
        usable = ["auto", "cpu", *(["gpu", "cuda"] if gpus else []), *(["mps"] if mps else [])]
        raise ConfigError(
            "trainer.accelerator", accelerator, f"one of {', '.join(usable)} (no {kind} here)"
        )
    devices = trainer.get("devices", "auto")
    asked = _device_choice(devices)
    if kind == "cpu" and isinstance(asked, list):
        raise ConfigError("trainer.devices", devices, "a number of CPU processes >= 1")
    if available is not None and asked is not None:
        top = asked if isinstance(asked, int) else max(asked) + 1
        if top > available:
            raise ConfigError(
                "trainer.devices", devices, f"at most {available}: this machine has {available}"
            )
    strategy = trainer.get("strategy", "auto")
    if strategies and isinstance(strategy, str) and strategy not in ("auto", *strategies):
        raise ConfigError("trainer.strategy", strategy, ["auto", *sorted(strategies)])


def _device_choice(devices: object) -> int | list[int] | None:
    """What `trainer.devices` asks for: a count, indices, or None (all there are)."""
    if devices in ("auto", -1, "-1"):
        return None
    if isinstance(devices, str):
        parts = [p.strip() for p in devices.split(",") if p.strip()]
        if parts and all(p.isdigit() for p in parts):
            if "," in devices:
                return [int(p) for p in parts]
            if int(parts[0]) >= 1:
                return int(parts[0])
    elif _is_int(devices) and devices >= 1:
        return devices
    elif isinstance(devices, ListConfig | list) and all(_is_int(d) and d >= 0 for d in devices):
        if len(devices) > 0:
            return list(devices)
    raise ConfigError("trainer.devices", devices, DEVICES)


def check_compile(value: object) -> None:
    if not isinstance(value, bool):
        raise ConfigError("model.compile", value, "true or false")


def check_run_settings(cfg: DictConfig) -> None:
    """seed / resume / fail_fast / ckpt_path / divergence: conf/train.yaml's run block."""
    check_seed(cfg.get("seed"))
    for name in ("resume", "fail_fast"):
        if not isinstance(cfg.get(name, False), bool):
            raise ConfigError(name, cfg.get(name), "true or false")
    ckpt = cfg.get("ckpt_path")
    if cfg.get("resume") and ckpt not in (None, "last"):
        raise ConfigError(
            "resume",
            True,
            "resume=true without ckpt_path (it continues the run dir's checkpoints/last.ckpt)"
            f", or ckpt_path={ckpt} without resume (a new run from that checkpoint)",
        )
    every = (cfg.get("divergence") or {}).get("check_every_n_steps", 1)
    if not isinstance(every, int) or isinstance(every, bool) or every < 1:
        raise ConfigError("divergence.check_every_n_steps", every, "an integer >= 1")


def logged_metrics(task: str) -> list[str]:
    """Every epoch metric neuralab's own modules log during fit for `task` (what a
    monitor can watch), from metrics.METRICS: a metric added there is monitorable."""
    from neuralab.metrics import best_tag, metric_names

    names = metric_names(task)
    stages = [f"{stage}/{name}" for stage in ("train", "val") for name in names]
    return sorted([*stages, *(best_tag(f"val/{name}") for name in names)])


def check_monitors(cfg: DictConfig) -> None:
    """`monitor.metric` and a plateau schedule's monitor must be metrics that get logged.

    Otherwise ModelCheckpoint/EarlyStopping, or Lightning's ReduceLROnPlateau, fail
    only at the end of the first epoch. The metrics of neuralab's own modules are known
    now; a module of your own is checked at its first validation (runtime/run_record.py).
    """
    from neuralab.losses import CLASSIFICATION, REGRESSION

    if cfg.monitor.get("mode") not in ("min", "max"):
        raise ConfigError("monitor.mode", cfg.monitor.get("mode"), ["max", "min"])
    task = cfg.data.get("task")
    if task not in (CLASSIFICATION, REGRESSION) or not _own_module(cfg):
        return  # the data module reports an unknown task
    logged = logged_metrics(task)
    scheduler = cfg.get("scheduler") or {}
    for setting, value in (
        ("monitor.metric", cfg.monitor.get("metric")),
        ("scheduler.monitor", scheduler.get("monitor")),
    ):
        if value is not None and value not in logged:
            raise ConfigError(setting, value, f"a metric logged for {task}: {', '.join(logged)}")


def _own_module(cfg: DictConfig) -> bool:
    from hydra.utils import get_class

    from neuralab.modules.base import MetricsModule

    try:
        return issubclass(get_class(cfg.module._target_), MetricsModule)
    except Exception:  # an unknown class: compose reports it when it builds the module
        return False


def check_data_dir(data: DictConfig) -> None:
    """A data dir that is a file or cannot be read fails before anything loads."""
    params = data.get("params") or {}
    data_dir = params.get("data_dir")
    if data_dir is None:
        return
    path = Path(str(data_dir))
    if path.exists() and not path.is_dir():
        raise ConfigError("data.params.data_dir", str(data_dir), "a directory (this is a file)")
    if path.is_dir() and not os.access(path, os.R_OK | os.X_OK):
        raise ConfigError("data.params.data_dir", str(data_dir), "a directory this user can read")


# The settings neuralab-eval takes from the command line (and their groups): it rebuilds
# data, model, loss and seed from the checkpoint's saved config.
EVAL_SETTINGS = ("ckpt_path", "run_dir", "trainer", "logger", "paths", "extras", "local")


def check_eval_overrides(overrides: list[str]) -> None:
    """Refuse what neuralab-eval would otherwise silently ignore (`+data=moons`, `seed=1`)."""
    for override in overrides:
        key = override_key(override)
        if key.split(".")[0] not in EVAL_SETTINGS:
            raise ConfigError(
                key,
                str(override).partition("=")[2],
                f"a setting neuralab-eval takes from the command line ({', '.join(EVAL_SETTINGS)}"
                "): data, model and seed come from the checkpoint's saved config",
            )
