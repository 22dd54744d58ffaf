"""Checks on settings that torch would only reject mid-run (or never)."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from omegaconf import DictConfig

from neuralab.errors import ConfigError
from neuralab.losses import CLASSIFICATION, REGRESSION
from neuralab.metrics import EpochMetrics, best_tag, tag


def _is_number(v) -> bool:
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
    if multirun and cfg.trainer.get("strategy") == "ddp":
        raise ConfigError(
            "trainer.strategy",
            "ddp",
            "ddp_fork (trainer=ddp_fork or ddp_cpu) inside a multirun: "
            "subprocess ddp re-runs the whole sweep on every rank",
        )
    clip = cfg.trainer.get("gradient_clip_val")
    if clip is not None and (not _is_number(clip) or clip <= 0):
        raise ConfigError("trainer.gradient_clip_val", clip, "null or a number > 0")
    algo = cfg.trainer.get("gradient_clip_algorithm", "norm")
    if algo not in ("norm", "value"):
        raise ConfigError("trainer.gradient_clip_algorithm", algo, ["norm", "value"])


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
    """Every epoch metric a module logs during fit for `task` (what a monitor can watch).

    Derived from EpochMetrics itself (one probe batch), so a metric added there is
    monitorable at once and names are never repeated here.
    """
    probe = EpochMetrics(task)
    targets = torch.zeros(1, dtype=torch.long) if task == CLASSIFICATION else torch.zeros(1, 1)
    probe.update(torch.zeros(1, 1), targets, torch.zeros(()))
    names = probe.compute(lambda sums: sums)
    stages = [tag(stage, name) for stage in ("train", "val") for name in names]
    return sorted([*stages, *(best_tag(name) for name in names)])


def check_monitors(cfg: DictConfig) -> None:
    """`monitor.metric` and a plateau schedule's monitor must be metrics that get logged.

    Otherwise ModelCheckpoint/EarlyStopping, or Lightning's ReduceLROnPlateau, fail
    only at the end of the first epoch.
    """
    task = cfg.data.get("task")
    if task not in (CLASSIFICATION, REGRESSION):
        return  # the data module reports an unknown task
    logged = logged_metrics(task)
    scheduler = cfg.get("scheduler") or {}
    for setting, value in (
        ("monitor.metric", cfg.monitor.get("metric")),
        ("scheduler.monitor", scheduler.get("monitor")),
    ):
        if value is not None and value not in logged:
            raise ConfigError(setting, value, f"a metric logged for {task}: {', '.join(logged)}")
    if cfg.monitor.get("mode") not in ("min", "max"):
        raise ConfigError("monitor.mode", cfg.monitor.get("mode"), ["max", "min"])


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
