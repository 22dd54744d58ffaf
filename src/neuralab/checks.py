"""Checks on settings that torch would only reject mid-run (or never)."""

from __future__ import annotations

from omegaconf import DictConfig

from neuralab.errors import ConfigError


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
