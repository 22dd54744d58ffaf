"""The members' diagnostics, driven step by step by the pack.

A member's Diagnostics callback (neuralab/diagnostics/) watches every optimizer step of
its net: norms before and after a step, histograms, one validation batch's
activations, pictures of its predictions. In a pack the member's trainer never runs,
so the pack calls the member's Diagnostics hooks at the points its lone run's trainer
would (pack/module.py), with a `WatchedTrainer`: the member's own trainer (its loggers,
its state) with the pack's counters and loaders, which are the lone run's at that
point. The member's parameters and gradients are views of its rows of the stacked ones
(pack/stacked.py), so what the probes read is the member's own. The activations of the
first validation batch come from one extra forward of the member's own net on its own
batch, the probe's hooks attached, as in the lone run.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from neuralab.diagnostics import Diagnostics


class WatchedTrainer:
    """A member's trainer as its step-level callbacks read it (attributes not named
    here are the member trainer's own). Its counters are the pack's while it trains,
    its own (taken at its last epoch end) once it stopped."""

    def __init__(self, member: Any, pack: L.Trainer):
        self._member, self._own, self._pack = member, member.trainer, pack
        self.datamodule = member.run.datamodule

    def __getattr__(self, name: str) -> Any:
        return getattr(self._own, name)

    @property
    def _counting(self) -> L.Trainer:
        return self._own if self._member.stopped else self._pack

    @property
    def global_step(self) -> int:
        return self._counting.global_step

    @property
    def current_epoch(self) -> int:
        return self._counting.current_epoch

    @property
    def sanity_checking(self) -> bool:
        return self._pack.sanity_checking

    @property
    def train_dataloader(self) -> Any:
        return self._pack.train_dataloader

    @property
    def num_training_batches(self) -> int | float:
        return self._pack.num_training_batches


class Watch:
    """One member's Diagnostics callbacks and the trainer they see."""

    def __init__(self, member: Any, pack_trainer: L.Trainer):
        self.member, self.module = member, member.module
        self.callbacks = [cb for cb in member.trainer.callbacks if isinstance(cb, Diagnostics)]
        self.trainer = WatchedTrainer(member, pack_trainer)

    def call(self, hook: str, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self.trainer, self.module, *args)

    def first_val_batch(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """The lone run's forward of its first validation batch, the probes attached."""
        net = self.module.net
        was_training = net.training
        net.eval()
        self.call("on_validation_batch_start", (x, y), 0)
        try:
            with torch.no_grad():
                net(x)
        finally:
            self.call("on_validation_batch_end", None, (x, y), 0)
            net.train(was_training)


def watches(members: list, pack_trainer: L.Trainer) -> dict[int, Watch]:
    """{member index: its Watch}, for the members that have diagnostics."""
    found = {m.index: Watch(m, pack_trainer) for m in members}
    return {index: watch for index, watch in found.items() if watch.callbacks}
