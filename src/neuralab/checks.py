"""Checks on settings that torch would only reject mid-run (or never)."""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import DictConfig

from neuralab.errors import ConfigError
from neuralab.losses import CLASSIFICATION, REGRESSION
from neuralab.metrics import best_tag, metric_names


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


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


def check_compile(value: object) -> None:
    if not isinstance(value, bool):
        raise ConfigError("model.compile", value, "true or false")


def check_run_settings(cfg: DictConfig) -> None:
    """resume / fail_fast / ckpt_path / divergence: the settings of conf/train.yaml's run block."""
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
    names = metric_names(task)
    stages = [f"{stage}/{name}" for stage in ("train", "val") for name in names]
    return sorted([*stages, *(best_tag(f"val/{name}") for name in names)])


def check_monitors(cfg: DictConfig) -> None:
    """`monitor.metric` and a plateau schedule's monitor must be metrics that get logged.

    Otherwise ModelCheckpoint/EarlyStopping, or Lightning's ReduceLROnPlateau, fail
    only at the end of the first epoch. The metrics of neuralab's own modules are known
    now; a module of your own is checked at its first validation (runtime/run_record.py).
    """
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
