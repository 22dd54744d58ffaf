"""What neuralab's own LightningModules share: epoch metrics summed on the device.

A module of your own does not need this: plain `self.log` works everywhere
(docs/EXTENDING.md). This base buys speed: metrics are sums on the device (no sync,
no `self.log` per step: metrics.py), reduced and logged once per epoch, and training
batches may come in chunks of several steps (`accepts_chunks`, runtime/chunks.py).
"""

from __future__ import annotations

import lightning as L
import torch
from torch import Tensor, nn

from neuralab.metrics import STAGES, EpochMetrics
from neuralab.runtime.publish import publish, train_epoch_step


class MetricsModule(L.LightningModule):
    accepts_chunks = True  # training_step takes `batches_of(batch)`: chunks welcome

    def __init__(self, net: nn.Module, task: str):
        super().__init__()
        self.net = net
        self.metrics = {stage: EpochMetrics(task) for stage in STAGES}
        self._epoch_start_logs: dict[str, float] = {}  # see log_at_epoch_start

    def forward(self, x: Tensor) -> Tensor:  # (B, F) -> (B, out_features)
        if torch.jit.is_tracing():  # TensorBoard's graph: torch.jit cannot trace a net
            # compiled by model.compile=true, so trace the plain call (_call_impl, what
            # nn.Module.__call__ runs uncompiled): it opens the net's scope, so the net's
            # ops nest under its node (`.forward` would put them beside it).
            return self.net._call_impl(x)
        return self.net(x)

    def _log_epoch(self, stage: str) -> None:
        values = self.metrics[stage].compute(
            lambda t: self.trainer.strategy.reduce(t, reduce_op="sum")
        )
        self.metrics[stage].reset()
        logged = {f"{stage}/{name}": v for name, v in values.items()}
        if stage == "train":
            logged.update(self._epoch_start_logs)
        if self.trainer.sanity_checking:
            return
        if self.trainer.state.fn == "fit":  # train values at the epoch's last step
            publish(
                self.trainer, logged, train_epoch_step(self.trainer) if stage == "train" else None
            )
        else:  # trainer.test/validate return (and print) what went through self.log
            self.log_dict(logged, sync_dist=False)  # already reduced: no second average

    def on_train_epoch_start(self) -> None:
        self.metrics["train"].reset()
        self._epoch_start_logs = {}

    def log_at_epoch_start(self, name: str, value: float) -> None:
        """Log a value taken in on_train_epoch_start (the epoch's lr) with the epoch's
        train metrics, at the epoch's end step.

        One write per epoch, as before. Lightning skips on_train_epoch_start when a run
        resumes mid-epoch, so these values are also kept in the checkpoint.
        """
        self._epoch_start_logs[name] = float(value)

    def on_validation_epoch_start(self) -> None:
        self.metrics["val"].reset()

    def on_test_epoch_start(self) -> None:
        self.metrics["test"].reset()

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    # A checkpoint taken mid-epoch (on SIGTERM) holds the train sums so far, so the
    # resumed epoch's metrics count every batch once. Under DDP each rank has its own
    # sums and only rank 0's are saved: they are restored on rank 0 alone.
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        sums = self.metrics["train"].sums
        if sums is not None:
            checkpoint["neuralab_train_sums"] = sums.detach().cpu()
            checkpoint["neuralab_epoch_start_logs"] = dict(self._epoch_start_logs)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        sums = checkpoint.get("neuralab_train_sums")
        if sums is not None and self.global_rank == 0:
            self.metrics["train"].sums = sums
        self._epoch_start_logs = dict(checkpoint.get("neuralab_epoch_start_logs", {}))

    def on_train_start(self) -> None:
        sums = self.metrics["train"].sums  # restored on the CPU, before the move to the device
        if sums is not None:
            self.metrics["train"].sums = sums.to(self.device)
