"""Resolved config -> objects. Shared by train and eval, so a checkpoint's saved
config rebuilds exactly the data and model that were trained.

A LightningModule receives `net` and, if its signature asks for them, `task`,
`in_features`, `loss`, `optimizer` and `scheduler`; the rest of conf/module/*.yaml
are its own arguments. A forked project adds a module class and a yaml, and nothing
here changes. The module needs no neuralab base class (docs/EXTENDING.md).
"""

from __future__ import annotations

import inspect
from typing import Any

import lightning as L
import torch
from hydra.utils import get_class, instantiate
from lightning.pytorch.callbacks import Checkpoint, ProgressBar
from omegaconf import DictConfig, OmegaConf
from torch import nn

from neuralab.checks import check_compile, check_optimizer
from neuralab.data import ArrayDataModule
from neuralab.init import apply_init
from neuralab.losses import build_loss
from neuralab.runtime.checkpoint_io import AtomicCheckpointIO
from neuralab.runtime.instantiate import instantiate as build  # Hydra's, without its copies


def build_datamodule(cfg: DictConfig) -> ArrayDataModule:
    datamodule = build(cfg.data)
    datamodule.setup()  # loads and checks shapes now, before anything trains
    return datamodule


def build_net(cfg: DictConfig) -> nn.Module:
    model = OmegaConf.to_container(cfg.model, resolve=True)
    compile_net = model.pop("compile", False)  # how the net runs, not an argument of it
    check_compile(compile_net)
    net = instantiate(model, _convert_="all")
    init = OmegaConf.to_container(cfg.init)
    apply_init(net, init.pop("scheme"), cfg.model.get("activation", "relu"), **init)
    if compile_net:
        # In place (nn.Module.compile), not torch.compile(net): the state_dict keeps the
        # plain net's keys (no `_orig_mod.`), so checkpoints load into an uncompiled net.
        net.compile()
    return net


def build_loss_from(cfg: DictConfig, datamodule: ArrayDataModule) -> nn.Module:
    params = OmegaConf.to_container(cfg.loss, resolve=True)
    params.pop("out_features", None)  # consumed by the model config, not the loss
    name = params.pop("name")
    targets = datamodule.train_targets
    return build_loss(name, datamodule.task, datamodule.num_classes, targets, **params)


def _scheduler_parts(cfg: DictConfig) -> dict[str, Any]:
    """Split conf/scheduler/*.yaml into the torch factory and Lightning's keys."""
    if not cfg.get("scheduler"):  # scheduler=none is an empty option
        return {"scheduler": None}
    sched = OmegaConf.to_container(cfg.scheduler, resolve=True)
    interval, monitor = sched.pop("interval", "epoch"), sched.pop("monitor", None)
    return {
        "scheduler": instantiate(sched),
        "scheduler_interval": interval,
        "scheduler_monitor": monitor,
    }


def build_module(cfg: DictConfig, datamodule: ArrayDataModule, config: dict) -> L.LightningModule:
    module_cls = get_class(cfg.module._target_)
    wanted = inspect.signature(module_cls).parameters
    parts: dict[str, Any] = {
        "task": datamodule.task,
        "in_features": datamodule.num_features,
        "config": config,
    }
    if "loss" in wanted:
        parts["loss"] = build_loss_from(cfg, datamodule)  # checks loss vs task first
    if "optimizer" in wanted:
        check_optimizer(cfg.optimizer)
        parts["optimizer"] = instantiate(cfg.optimizer)
    if "scheduler" in wanted:
        parts.update(_scheduler_parts(cfg))
    parts["net"] = build_net(cfg)
    settings = OmegaConf.to_container(cfg.module, resolve=True)
    settings.pop("_target_")
    module = module_cls(**settings, **{k: v for k, v in parts.items() if k in wanted})
    if getattr(module, "example_input_array", None) is None:
        # Lightning traces the graph and prints the summary with it (2 rows: BatchNorm).
        module.example_input_array = torch.zeros(2, datamodule.num_features)
    return module


def _instantiate_group(group: DictConfig | None) -> list:
    """Instantiate every entry of a dict-of-configs group (null entries are off)."""
    return [build(c) for c in (group or {}).values() if c is not None and "_target_" in c]


def build_trainer(
    cfg: DictConfig,
    extra_callbacks: list | None = None,
    first_callbacks: list | None = None,
    stamp: dict | None = None,
) -> L.Trainer:
    """The configured Trainer, with neuralab's runtime callbacks after the configured
    ones (`first_callbacks` before them: they must see a validation's end before early
    stopping does). `stamp` goes into every checkpoint written (the run's config)."""
    configured = _instantiate_group(cfg.get("callbacks"))
    callbacks = [*(first_callbacks or []), *configured, *(extra_callbacks or [])]
    if cfg.trainer.get("enable_progress_bar") is False:  # what the user asked, not an error
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    loggers = _instantiate_group(cfg.get("logger"))
    # Checkpoints are written atomically and loaded with weights_only (runtime/checkpoint_io.py).
    # None configured (callbacks=none, ~callbacks.model_checkpoint): none written, rather
    # than Lightning's default ModelCheckpoint saving every epoch behind the user's back.
    checkpoints = any(isinstance(c, Checkpoint) for c in callbacks)
    return build(
        cfg.trainer,
        callbacks=callbacks,
        logger=loggers or False,
        enable_checkpointing=checkpoints,
        plugins=[AtomicCheckpointIO(fsync=cfg.get("checkpoint_fsync", False), stamp=stamp)],
    )
