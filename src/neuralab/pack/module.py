"""The LightningModule of a pack: every member's training step as one vectorized step.

Lightning runs one fit of this module; each step of it is one step of every running
member: the members' batches (M, B, ...) go through their stacked nets at once
(pack/stacked.py), the loss is the sum of the members' mean losses (each member's
gradient is exactly its lone run's: the other terms do not depend on its
parameters), and `PackOptimizer` steps each member's own optimizer. The members'
epoch metrics are sums per member (rows of an (M, S) tensor), handed at each epoch's
end to the member's own module, which logs them as in its lone run (pack/members.py).
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from neuralab.metrics import METRICS
from neuralab.pack.members import Member
from neuralab.pack.modes import EvalModes
from neuralab.pack.optim import Active, PackOptimizer, PackSchedule
from neuralab.pack.stacked import StackedCall, StackedNets
from neuralab.pack.watch import first_val_batch, watches
from neuralab.runtime.chunk_steps import ChunkSteps
from neuralab.runtime.chunks import batches_of
from neuralab.runtime.loggers import traced_graph


class PackedModule(L.LightningModule):
    accepts_chunks = True

    def __init__(self, members: list[Member], task: str):
        super().__init__()
        self.members = members
        # Registered, so the members' modules move to the device with the pack.
        self.member_modules = nn.ModuleList([m.module for m in members])
        self.active = Active(len(members))
        self.metric_fns = METRICS[task]
        self.chunk = ChunkSteps()
        self.modes = EvalModes()
        self.sums: dict[str, Tensor | None] = {"train": None, "val": None, "test": None}
        self.first_bad: Tensor | None = None  # (M,) first step with a non-finite loss, or -1
        self.bad_value: Tensor | None = None
        self._traced: dict[str, Any] = {}  # the members' graphs for TensorBoard (_graph)
        penalties = [(m.module.hparams.l1_penalty, m.module.hparams.l2_penalty) for m in members]
        self.penalties = torch.tensor(penalties) if any(map(any, penalties)) else None

    # ------------------------------------------------------------------ steps
    def forward_members(self, x: Tensor, y: Tensor, train: bool) -> tuple[Tensor, Tensor]:
        """(outputs (A, B, K), mean losses (A,)) of the running members."""
        active = self.active.members
        if len(active) < len(self.members):
            x, y = x[active], y[active]
        outputs = self.stacked_nets.forward(x, active=active, train=train)
        return outputs, self.stacked_losses.forward(outputs, y, active=active)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        batches = batches_of(batch)
        first_step = self.trainer.global_step
        kept: list[tuple[Tensor, Tensor]] = []  # each step's (outputs, losses)
        for x, y in batches[:-1]:
            self.chunk.step(self._train_loss(x, y, kept))
        loss = self._train_loss(*batches[-1], kept)
        # The chunk's metrics and divergence check at once, as a lone module's
        # (modules/supervised.py): a handful of ops per chunk instead of per step.
        losses = torch.stack([step_losses for _, step_losses in kept])  # (S, A)
        self._record_bad(losses, first_step)
        self._add_chunk([outputs for outputs, _ in kept], [y for _, y in batches], losses)
        return loss

    def _train_loss(self, x: Tensor, y: Tensor, kept: list[tuple[Tensor, Tensor]]) -> Tensor:
        outputs, losses = self.forward_members(x, y, train=True)
        kept.append((outputs.detach(), losses.detach()))
        if self.penalties is not None:
            return losses.sum() + self._penalty()
        return losses.sum()

    def _penalty(self) -> Tensor:
        """Each member's L1 / L2 on its weight matrices, as SupervisedModule adds it."""
        lam = self.penalties.to(self.device)[self.active.members]
        weights = [p for p in self.stacked_nets.last_params.values() if p.ndim > 2]
        l1 = sum(w.abs().flatten(1).sum(1) for w in weights) * lam[:, 0]
        l2 = sum(w.pow(2).flatten(1).sum(1) for w in weights) * lam[:, 1]
        return (l1 + l2).sum()

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        if batch_idx == 0 and not self.trainer.sanity_checking:
            outputs, losses = first_val_batch(self, x, y)  # the members' activations too
        else:
            outputs, losses = self.forward_members(x, y, train=False)
        self._add("val", outputs, y, losses)

    # --------------------------------------------------------------- metrics
    def _add(self, stage: str, outputs: Tensor, y: Tensor, losses: Tensor) -> None:
        """Add this batch to each running member's sums [loss * n, n, metric sums]."""
        active = self.active.members
        if len(active) < len(self.members):
            y = y[active]
        outputs, losses = outputs.detach(), losses.detach().float()
        n = y.shape[1]
        stats = [m.per_sample(outputs, y).sum(-1) for m in self.metric_fns.values()]
        rows = torch.stack([losses * n, torch.full_like(losses, n), *stats], dim=1)
        if self.sums[stage] is None:
            self.sums[stage] = rows.new_zeros(len(self.members), rows.shape[1])
        index = self.active.index(rows.device)
        self.sums[stage].index_add_(0, index, rows)

    def _add_chunk(self, outputs: list[Tensor], ys: list[Tensor], losses: Tensor) -> None:
        """`_add` for a chunk's steps: outputs (A, B, K) and targets (M, B) of each, the
        losses (S, A) batch means (weighted here by batch size, as EpochMetrics does)."""
        if len(outputs) == 1:
            self._add("train", outputs[0], ys[0], losses[0])
            return
        counts = losses.new_tensor([y.shape[1] for y in ys], dtype=torch.float32)
        mean = (losses.float() * counts[:, None]).sum(0) / counts.sum()
        self._add("train", torch.cat(outputs, dim=1), torch.cat(ys, dim=1), mean)

    def take_sums(self, stage: str) -> Tensor | None:
        sums, self.sums[stage] = self.sums[stage], None
        return sums

    def _record_bad(self, losses: Tensor, first_step: int) -> None:
        """Remember each member's first non-finite loss and its step (no host sync), from
        a chunk's losses (S, A): its steps' from global step `first_step` on."""
        if self.first_bad is None:
            self.first_bad = torch.full((len(self.members),), -1, device=losses.device)
            self.bad_value = torch.zeros(len(self.members), device=losses.device)
        index = self.active.index(losses.device)
        bad = ~torch.isfinite(losses)
        at = bad.int().argmax(0)  # each member's first bad step in the chunk (0: none)
        new = bad.any(0) & (self.first_bad[index] < 0)
        value = losses.gather(0, at.unsqueeze(0)).squeeze(0).float()
        self.first_bad[index] = torch.where(new, at + first_step, self.first_bad[index])
        self.bad_value[index] = torch.where(new, value, self.bad_value[index])

    def diverged(self) -> dict[int, tuple[int, float]]:
        """{member: (step, loss)} of running members whose loss was not finite."""
        if self.first_bad is None:
            return {}
        steps, values = self.first_bad.tolist(), self.bad_value.tolist()
        return {m: (steps[m], values[m]) for m in self.active.members if steps[m] >= 0}

    # ---------------------------------------------------------- optimization
    def configure_optimizers(self) -> Any:
        # Here, after the move to the device and before the members' optimizers exist:
        # these take the members' parameters, which now are rows of the stacked ones.
        self.stacked_nets = StackedNets([m.net for m in self.member_modules])
        self.stacked_losses = StackedCall([m.loss_fn for m in self.member_modules])
        parts = [m.optimize(self.trainer) for m in self.members]
        optimizer = PackOptimizer([p.optimizer for p in parts], self.active, self.stacked_nets)
        if parts[0].scheduler is None:
            return optimizer
        schedule = PackSchedule([p.scheduler for p in parts], self.active, self._monitored)
        schedule.optimizer = optimizer  # Lightning checks a schedule's optimizer is attached
        config = {"scheduler": schedule, "interval": parts[0].interval}
        if parts[0].monitor:
            config.update(monitor=parts[0].monitor, reduce_on_plateau=schedule.plateau)
        return {"optimizer": optimizer, "lr_scheduler": config}

    def _monitored(self, member: int) -> float:
        return self.members[member].monitored(self.members[member].optimization.monitor)

    def lr_scheduler_step(self, scheduler: PackSchedule, metric: Any) -> None:
        scheduler.step()  # each member's plateau schedule reads its own metric

    def configure_gradient_clipping(
        self, optimizer: Any, gradient_clip_val: Any = None, gradient_clip_algorithm: Any = None
    ) -> None:
        """Each member clipped by its own norm (or values), with its own setting."""
        for index in self.active.members:
            member = self.members[index]
            value, algorithm = member.clip
            if value:
                params = member.module.net.parameters()
                if algorithm == "value":
                    nn.utils.clip_grad_value_(params, value)
                else:
                    nn.utils.clip_grad_norm_(params, value)

    # ----------------------------------------------------------- the members
    def on_after_backward(self) -> None:  # before clipping and the members' steps
        self.stacked_nets.share_grads()

    def on_fit_start(self) -> None:
        for member in self.members:
            member.attach(self.trainer, self._graph)
        for index, watch in watches(self).items():
            self.members[index].watch = watch
        self._watched("on_fit_start")

    def _watched(self, hook: str, *args: Any) -> None:
        """The running members' diagnostics (pack/watch.py)."""
        for index in self.active.members:
            self.members[index].watched(hook, *args)

    def on_before_optimizer_step(self, optimizer: Any) -> None:
        """The members' diagnostics see their gradients (views: pack/stacked.py), at
        the steps where they have work (most steps they have none)."""
        step, epoch = self.trainer.global_step, self.trainer.current_epoch
        for index in self.active.members:
            member = self.members[index]
            if member.watch is not None and member.watch.step_due(step, epoch):
                member.watched("on_before_optimizer_step", member.optimization.optimizer)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self._watched("on_train_batch_end", outputs, batch, batch_idx)

    def _graph(self, module: L.LightningModule) -> Any:
        """A member's graph, traced once per distinct module (members may differ in
        dropout layers: nn.Identity at rate 0), when a logger asks."""
        key = repr(module)  # types, shapes and settings of every layer
        if key not in self._traced:
            example = module.example_input_array.to(self.device)
            self._traced[key] = traced_graph(module, example)
        return self._traced[key]

    def on_train_start(self) -> None:
        self.chunk.setup(self.trainer)
        self._watched("on_train_start")
        sums = [m.metrics["train"].sums for m in self.member_modules]
        if any(s is not None for s in sums):  # resumed mid-epoch: the sums so far
            width = next(s for s in sums if s is not None).shape
            rows = [torch.zeros(width) if s is None else s for s in sums]
            self.sums["train"] = torch.stack(rows).to(self.device)

    def on_train_epoch_start(self) -> None:
        loops = self.trainer.fit_loop.state_dict()
        for index in self.active.members:
            self.members[index].train_epoch_start(loops)

    def on_validation_model_eval(self) -> None:
        self.modes.enter(self)  # as Lightning's default, faster (pack/modes.py)

    def on_validation_model_train(self) -> None:
        self.modes.leave()

    def on_validation_epoch_start(self) -> None:
        self.sums["val"] = None

    def on_validation_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        self._stop_diverged()
        sums, loops = self.take_sums("val"), self.trainer.fit_loop.state_dict()
        for index in list(self.active.members):
            self.members[index].validation_end(loops, sums[index])
        self.trainer.callback_metrics.update(self._monitor_stand_in())

    def _stop_diverged(self) -> None:
        for index, (step, value) in self.diverged().items():
            self.members[index].diverge(step, value)
            self.active.stop(index)

    def _monitor_stand_in(self) -> dict[str, Tensor]:
        """Lightning asks the pack's callback_metrics for a plateau schedule's monitor;
        each member's schedule reads its own (`_monitored`): this only has to exist."""
        monitor = self.members[0].optimization.monitor
        return {monitor: torch.zeros(())} if monitor else {}

    def on_train_epoch_end(self) -> None:
        self._stop_diverged()
        sums, loops = self.take_sums("train"), self.trainer.fit_loop.state_dict()
        for index in list(self.active.members):
            member = self.members[index]
            member.train_epoch_end(loops, None if sums is None else sums[index])
            if member.stopped:
                self.active.stop(index)
        if not self.active.members:
            self.trainer.should_stop = True
