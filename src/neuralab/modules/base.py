"""What every neuralab LightningModule shares: epoch metrics and their logging."""

from __future__ import annotations

import lightning as L
import torch
from torch import Tensor, nn

from neuralab.metrics import EpochMetrics, best_tag, better, tag

STAGES = ("train", "val", "test")
EPOCHS_TAG = "train/epochs"


class MetricsModule(L.LightningModule):
    """Accumulates `EpochMetrics` per stage and logs them once per epoch.

    It also logs the running best of every validation metric (val/acc_best, ...):
    a device-side max/min, so "best val accuracy" reaches the HParams table (and
    crosses process boundaries with Lightning's callback_metrics) without a sync.
    """

    def __init__(self, net: nn.Module, task: str, in_features: int):
        super().__init__()
        self.net = net
        self.metrics = {stage: EpochMetrics(task) for stage in STAGES}
        self.best: dict[str, Tensor] = {}
        self._epoch_start_logs: dict[str, float] = {}  # see log_at_epoch_start
        # Lightning traces the graph and prints the summary with this (batch 2: BatchNorm).
        self.example_input_array = torch.zeros(2, in_features)

    def forward(self, x: Tensor) -> Tensor:  # (B, F) -> (B, out_features)
        if torch.jit.is_tracing():  # TensorBoard's graph: torch.jit cannot trace a net
            return self.net.forward(x)  # compiled by model.compile=true, so trace it plainly
        return self.net(x)

    def _log_epoch(self, stage: str) -> None:
        values = self.metrics[stage].compute(
            lambda t: self.trainer.strategy.reduce(t, reduce_op="sum")
        )
        self.metrics[stage].reset()
        logged = {tag(stage, k): v for k, v in values.items()}
        if stage == "train":
            # Epochs completed: with fork/spawn DDP only logged metrics reach the
            # parent process, so this is how results.json learns the count.
            logged[EPOCHS_TAG] = float(self.current_epoch + 1)
            logged.update(self._epoch_start_logs)
        if self.trainer.sanity_checking:
            return
        if stage == "val":
            for k, v in values.items():
                self.best[k] = v if k not in self.best else better(k, self.best[k], v)
                logged[best_tag(k)] = self.best[k]
        if self.trainer.state.fn == "fit":
            # Lightning logs train epoch values at the epoch's last step (0-based).
            last = self.trainer.fit_loop.epoch_loop._batches_that_stepped - 1
            self.publish(logged, step=last if stage == "train" else None)
        else:  # trainer.test/validate return (and print) what went through self.log
            self.log_dict(logged, sync_dist=False)  # already reduced: no second average

    def publish(self, metrics: dict[str, Tensor | float], step: int | None = None) -> None:
        """Epoch values to where `self.log_dict` would put them, without its cost.

        `self.log` builds and updates a torchmetrics object per key (~0.15 ms a key on
        CPU: ~1.5 ms an epoch here, a sixth of a digits epoch). These values are already
        reduced over ranks, so they go straight to `trainer.callback_metrics` (read by
        checkpointing, early stopping, pruning and results.json; device tensors, as
        Lightning keeps them) and, as floats (one host sync), to every logger at `step`
        (default: the step Lightning would use now).
        """
        trainer = self.trainer
        tensors = {k: torch.as_tensor(v, device=self.device).float() for k, v in metrics.items()}
        trainer.callback_metrics.update(tensors)
        if trainer.loggers:
            floats = torch.stack(list(tensors.values())).tolist()
            trainer._logger_connector.log_metrics(dict(zip(tensors, floats, strict=True)), step)

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

    # The running bests are plain floats in the checkpoint, so a resumed run keeps them.
    # A checkpoint taken mid-epoch (on SIGTERM) also holds the train sums so far, so the
    # resumed epoch's metrics count every batch once. Under DDP each rank has its own
    # sums and only rank 0's are saved: they are restored on rank 0 alone.
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["neuralab_best"] = {k: float(v) for k, v in self.best.items()}
        sums = self.metrics["train"].sums
        if sums is not None:
            checkpoint["neuralab_train_sums"] = sums.detach().cpu()
            checkpoint["neuralab_epoch_start_logs"] = dict(self._epoch_start_logs)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.best = {k: torch.tensor(v) for k, v in checkpoint.get("neuralab_best", {}).items()}
        sums = checkpoint.get("neuralab_train_sums")
        if sums is not None and self.global_rank == 0:
            self.metrics["train"].sums = sums
        self._epoch_start_logs = dict(checkpoint.get("neuralab_epoch_start_logs", {}))

    def on_train_start(self) -> None:
        sums = self.metrics["train"].sums  # restored on the CPU, before the move to the device
        if sums is not None:
            self.metrics["train"].sums = sums.to(self.device)
