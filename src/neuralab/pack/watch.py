"""The members' diagnostics, driven step by step by the pack.

A member's Diagnostics callback (neuralab/diagnostics/) watches every optimizer step of
its net: norms before and after a step, histograms, one validation batch's
activations, pictures of its predictions. In a pack the member's trainer never runs,
so the pack calls the member's Diagnostics hooks at the points its lone run's trainer
would (pack/module.py), with a `WatchedTrainer`: the member's own trainer (its loggers,
its state) with the pack's counters and loaders, which are the lone run's at that
point. The member's parameters and gradients are views of its rows of the stacked ones
(pack/stacked.py), so what the probes read is the member's own.

Four measurements run once for all members instead of once per member: the layers'
norms at a measured step (pack/stacked_norms.py), their weight and gradient histograms
(pack/stacked_histograms.py), and, when the pack runs batched
layers (pack/batched.py; under vmap each member runs its own net, as in its lone run),
the activations of the first validation batch (hooks on the batched net's activations
during the pack's own forward of that batch, each statistic reduced per member), and
the predictions the pictures draw (one forward of every running member on its own
split, at the first member's request).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from neuralab.diagnostics import Diagnostics
from neuralab.diagnostics.activations import ActivationProbe
from neuralab.diagnostics.images import CHUNK, predict
from neuralab.pack.stacked_histograms import StackedHistograms
from neuralab.pack.stacked_norms import StackedNorms


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

    def __init__(self, member: Any, pack: L.LightningModule, shared: tuple):
        self.member, self.module = member, member.module
        self.callbacks = [cb for cb in member.trainer.callbacks if isinstance(cb, Diagnostics)]
        self.trainer = WatchedTrainer(member, pack.trainer)
        predictions, norms, histograms = shared
        for callback in self.callbacks:
            callback.predict = predictions.of(member.index)
            callback.norm_probe = norms.probe(member.index)
            callback.histogram = histograms.of(member.index)

    def step_due(self, step: int, epoch: int) -> bool:
        """Whether its step hook has work at this step (diagnostics/callback.py)."""
        max_epochs = self.member.trainer.max_epochs
        return any(cb.step_due(step, epoch, max_epochs) for cb in self.callbacks)

    def call(self, hook: str, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self.trainer, self.module, *args)

    def activations(self, stats: dict[str, Tensor]) -> None:
        for callback in self.callbacks:
            callback.record_activations(self.trainer, stats)

    def first_val_batch(self, x: Tensor, y: Tensor) -> None:
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


def watches(pack: L.LightningModule) -> dict[int, Watch]:
    """{member index: its Watch}, for the members that have diagnostics."""

    def step() -> int:
        return pack.global_step

    nets = pack.stacked_nets
    shared = StackedPredictions(pack), StackedNorms(nets, step), StackedHistograms(nets, step)
    found = {m.index: Watch(m, pack, shared) for m in pack.members}
    return {index: watch for index, watch in found.items() if watch.callbacks}


def first_val_batch(pack: L.LightningModule, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """The pack's forward of its first validation batch (outputs, losses), with each
    watched member's activation statistics taken from it."""
    rows = [(row, i) for row, i in enumerate(pack.active.members) if pack.members[i].watch]
    twin = pack.stacked_nets.twin if pack.stacked_nets.checked else None
    if not rows or twin is None:
        for _, index in rows:  # each member's own net on its own batch
            pack.members[index].watch.first_val_batch(x[index], y[index])
        return pack.forward_members(x, y, train=False)
    probe = ActivationProbe(twin, members=True)
    probe.attach()
    try:
        result = pack.forward_members(x, y, train=False)
    finally:
        probe.detach()
    for row, index in rows:
        pack.members[index].watch.activations({t: v[row] for t, v in probe.stats.items()})
    return result


Predict = Callable[[nn.Module, Tensor, torch.device], Tensor]


class StackedPredictions:
    """The pictures' predictions (diagnostics/images.py `predict`) of all running
    members from one forward of the batched net, each on its own split: the first
    member to ask at a point (stage, step) runs it, the others read their rows."""

    def __init__(self, pack: L.LightningModule):
        self.pack = pack
        self._key: tuple | None = None
        self._outputs: Tensor | None = None

    def of(self, index: int) -> Predict:
        def member_predict(net: nn.Module, x: Tensor, device: torch.device) -> Tensor:
            outputs = self._rows(index, x)
            return predict(net, x, device) if outputs is None else outputs

        return member_predict

    def _rows(self, index: int, x: Tensor) -> Tensor | None:
        """Member `index`'s outputs on `x` (one of its splits), or None: not running,
        not one of its splits, splits of other shapes, or no batched net."""
        pack, active = self.pack, self.pack.active.members
        splits = pack.members[index].run.datamodule.splits
        stage = next((s for s, (sx, _) in splits.items() if sx is x), None)
        nets = pack.stacked_nets
        if index not in active or stage is None or nets.twin is None or not nets.checked:
            return None
        key = (stage, pack.trainer.global_step, tuple(active))
        if key != self._key:
            self._key, self._outputs = key, self._forward(stage, active)
        return None if self._outputs is None else self._outputs[active.index(index)]

    @torch.no_grad()
    def _forward(self, stage: str, active: list[int]) -> Tensor | None:
        xs = [self.pack.members[i].run.datamodule.splits[stage][0] for i in active]
        if any(x.shape != xs[0].shape for x in xs):
            return None
        rows = max(1, CHUNK // len(active))  # each call about one lone predict's chunk
        nets, device = self.pack.stacked_nets, self.pack.device
        outputs = [
            nets.forward(
                torch.stack([x[i : i + rows] for x in xs]).to(device), active=active, train=False
            )
            for i in range(0, len(xs[0]), rows)
        ]
        return torch.cat(outputs, dim=1).float().cpu()
