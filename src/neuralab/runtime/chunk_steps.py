"""The optimizer steps of a chunk that Lightning does not take itself.

A chunk (`runtime/chunks.py`) is K batches handed to one `training_step`. The
module runs the first K-1 through `ChunkSteps.step` and returns the last batch's
loss, which Lightning's automatic optimization steps as usual. Each inner step does
what Lightning's own step does, in the same order, with the same parts:

    on_before_zero_grad, zero_grad, on_before_backward, backward, on_after_backward,
    (unscale), on_before_optimizer_step, gradient clipping, optimizer.step,
    the per-step schedulers, the global step count

so a chunked run takes exactly the steps of an unchunked one (a test compares the
weights). The savings: the hooks go only to the callbacks (and the module) that
override them, listed once per fit instead of looked up on every call, and there is
no closure, profiler wrapping or progress-bar/logging bookkeeping per step.
"""

from __future__ import annotations

import contextlib

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor

from neuralab.runtime.chunks import steps_per_epoch
from neuralab.runtime.lightning_internals import count_optimizer_step

HOOKS = (
    "on_before_zero_grad",
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
)


def _overriders(trainer: L.Trainer, name: str) -> list:
    """Bound `name` hooks of the callbacks and the module that define their own."""
    module = trainer.lightning_module
    found = [
        getattr(cb, name)
        for cb in trainer.callbacks
        if getattr(type(cb), name, None) is not getattr(Callback, name)
    ]
    calls = [lambda *args, fn=fn: fn(trainer, module, *args) for fn in found]
    if getattr(type(module), name) is not getattr(L.LightningModule, name):
        calls.append(getattr(module, name))
    return calls


class ChunkSteps:
    """Set up at fit start (`setup`), then one `step(loss)` per inner batch."""

    def __init__(self) -> None:
        self.trainer: L.Trainer | None = None

    def setup(self, trainer: L.Trainer) -> None:
        self.trainer = trainer
        self.optimizer = trainer.optimizers[0]  # the plain torch optimizer
        self.hooks = {name: _overriders(trainer, name) for name in HOOKS}
        self.scaler = getattr(trainer.precision_plugin, "scaler", None)  # 16-mixed only
        self.schedulers = [
            c.scheduler
            for c in trainer.lr_scheduler_configs
            if c.interval == "step" and not c.reduce_on_plateau
        ]

    def _call(self, name: str, *args: object) -> None:
        for hook in self.hooks[name]:
            hook(*args)

    def step(self, loss: Tensor) -> None:
        trainer, optimizer, scaler = self.trainer, self.optimizer, self.scaler
        self._call("on_before_zero_grad", optimizer)
        optimizer.zero_grad()
        self._call("on_before_backward", loss)
        # Backward outside autocast (training_step runs inside it under mixed precision).
        with _no_autocast(loss):
            (scaler.scale(loss) if scaler is not None else loss).backward()
        self._call("on_after_backward")
        if scaler is not None:
            scaler.unscale_(optimizer)
        self._call("on_before_optimizer_step", optimizer)
        trainer.lightning_module.configure_gradient_clipping(
            optimizer,
            gradient_clip_val=trainer.gradient_clip_val,
            gradient_clip_algorithm=trainer.gradient_clip_algorithm,
        )
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        for scheduler in self.schedulers:
            scheduler.step()
        count_optimizer_step(trainer)  # global_step and the logging step advance


def _no_autocast(loss: Tensor) -> contextlib.AbstractContextManager:
    device = loss.device.type
    if torch.is_autocast_enabled(device):
        return torch.autocast(device, enabled=False)
    return contextlib.nullcontext()


def total_steps(trainer: L.Trainer) -> int | float:
    """Optimizer steps of the whole fit (OneCycle's total_steps).

    Lightning's `estimated_stepping_batches` counts `training_step` calls, and a chunk
    is one call of K steps. Chunks come only without limits, max_steps or accumulation
    (`chunks_allowed`), so the count is then plain batches x epochs.
    """
    calls = trainer.estimated_stepping_batches  # also sets up the train loader
    if getattr(trainer.train_dataloader, "steps_per_chunk", 1) == 1:
        return calls
    epochs = trainer.max_epochs if trainer.max_epochs not in (None, -1) else float("inf")
    return steps_per_epoch(trainer) * epochs
