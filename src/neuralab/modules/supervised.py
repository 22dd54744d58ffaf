"""The generic training system: any net, any loss, optimizer and schedule.

The net is a plain nn.Module; optimizer and scheduler arrive as Hydra
`_partial_` factories (they need the parameters / the optimizer, which only
exist here). Hyperparameters saved into checkpoints are primitives only (the
resolved config as a dict), so checkpoints load under weights_only=True.
"""

from __future__ import annotations

import functools

from lightning.pytorch.utilities.types import OptimizerLRScheduler
from torch import Tensor, nn

from neuralab.modules.base import MetricsModule
from neuralab.schedulers import build_scheduler


class SupervisedModule(MetricsModule):
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
        in_features: int = 1,
        config: dict | None = None,
    ):
        super().__init__(net, task, in_features)
        self.save_hyperparameters(ignore=["net", "loss", "optimizer", "scheduler"], logger=False)
        self.loss_fn, self.optimizer_factory, self.scheduler_factory = loss, optimizer, scheduler

    def _step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        x, y = batch  # x (B, F); y (B,) class indices or (B, T) targets
        outputs = self.net(x)
        loss = self.loss_fn(outputs, y)
        self.metrics[stage].update(outputs, y, loss)
        return loss

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss = self._step(batch, "train")
        return (
            loss + self._penalty() if self.hparams.l1_penalty or self.hparams.l2_penalty else loss
        )

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

    def on_train_epoch_start(self) -> None:
        super().on_train_epoch_start()
        # The lr in force for this epoch (one log per epoch, not per step).
        self.log_at_epoch_start("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"])

    def configure_optimizers(self) -> OptimizerLRScheduler:
        optimizer = self.optimizer_factory(self.net.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = build_scheduler(
            self.scheduler_factory, optimizer, self.trainer.estimated_stepping_batches
        )
        config = {"scheduler": scheduler, "interval": self.hparams.scheduler_interval}
        if self.hparams.scheduler_monitor:
            config["monitor"] = self.hparams.scheduler_monitor
        return {"optimizer": optimizer, "lr_scheduler": config}
