"""The generic training system: any net, any loss, optimizer and schedule.

The net is a plain nn.Module; optimizer and scheduler arrive as Hydra
`_partial_` factories (they need the parameters / the optimizer, which only
exist here). Hyperparameters saved into checkpoints are primitives only, so
checkpoints load under weights_only=True.
"""

from __future__ import annotations

import functools

import torch
from lightning.pytorch.utilities.types import OptimizerLRScheduler
from torch import Tensor, nn

from neuralab.modules.base import MetricsModule
from neuralab.runtime.chunk_steps import ChunkSteps, total_steps
from neuralab.runtime.chunks import batches_of
from neuralab.schedulers import build_scheduler


class SupervisedModule(MetricsModule):
    # A sweep's jobs may train as one vectorized fit (hydra/launcher=packed, neuralab/pack/):
    # this module's step is net -> loss (+ penalties), which the pack reproduces per member.
    packable = True

    def __init__(
        self,
        net: nn.Module,
        loss: nn.Module,
        optimizer: functools.partial,
        scheduler: functools.partial | None = None,
        scheduler_interval: str = "epoch",
        scheduler_monitor: str | None = None,
        l1_penalty: float = 0.0,
        l2_penalty: float = 0.0,
        task: str = "classification",
    ):
        super().__init__(net, task)
        self.save_hyperparameters(ignore=["net", "loss", "optimizer", "scheduler"], logger=False)
        self.loss_fn, self.optimizer_factory, self.scheduler_factory = loss, optimizer, scheduler
        self.chunk = ChunkSteps()

    def _step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        x, y = batch  # x (B, F); y (B,) class indices or (B, T) targets
        outputs = self.net(x)
        loss = self.loss_fn(outputs, y)
        self.metrics[stage].update(outputs, y, loss)
        return loss

    def training_step(
        self, batch: tuple[Tensor, Tensor] | list[tuple[Tensor, Tensor]], batch_idx: int
    ) -> Tensor | dict[str, Tensor]:
        """One batch, or a chunk of them: every batch but the last is stepped here
        (`ChunkSteps`), the last one's loss goes back to Lightning's optimization."""
        batches = batches_of(batch)
        outputs: list[Tensor] = []
        losses: list[Tensor] = []
        for x, y in batches[:-1]:
            self.chunk.step(self._train_loss(x, y, outputs, losses))
        loss = self._train_loss(*batches[-1], outputs, losses)
        self.metrics["train"].update_chunk(outputs, [y for _, y in batches], losses)
        if len(losses) == 1:
            return loss
        # Every step's loss, for the divergence check (which names the first bad step).
        return {"loss": loss, "step_losses": torch.stack(losses)}

    def _train_loss(
        self, x: Tensor, y: Tensor, outputs: list[Tensor], losses: list[Tensor]
    ) -> Tensor:
        """The loss to minimize; the outputs and the data loss are kept for the metrics."""
        out = self.net(x)
        loss = self.loss_fn(out, y)
        outputs.append(out.detach())
        losses.append(loss.detach())
        if self.hparams.l1_penalty or self.hparams.l2_penalty:
            return loss + self._penalty()
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def _penalty(self) -> Tensor:
        """Explicit L1 / L2 on the weight matrices (not biases or norm scales).

        Unlike the optimizer's weight_decay, this enters the loss, so with Adam it
        is rescaled by the adaptive step (weight_decay in AdamW is not).
        """
        weights = [p for n, p in self.net.named_parameters() if p.ndim > 1]
        l1 = sum(w.abs().sum() for w in weights) * self.hparams.l1_penalty
        l2 = sum(w.pow(2).sum() for w in weights) * self.hparams.l2_penalty
        return l1 + l2

    def on_train_start(self) -> None:
        super().on_train_start()
        self.chunk.setup(self.trainer)

    def on_train_epoch_start(self) -> None:
        super().on_train_epoch_start()
        # The lr in force for this epoch (one log per epoch, not per step).
        self.log_at_epoch_start("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"])

    def configure_optimizers(self) -> OptimizerLRScheduler:
        optimizer = self.optimizer_factory(self.net.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = build_scheduler(self.scheduler_factory, optimizer, total_steps(self.trainer))
        config = {"scheduler": scheduler, "interval": self.hparams.scheduler_interval}
        if self.hparams.scheduler_monitor:
            config["monitor"] = self.hparams.scheduler_monitor
        return {"optimizer": optimizer, "lr_scheduler": config}
