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
        if stage == "val" and not self.trainer.sanity_checking:
            for k, v in values.items():
                self.best[k] = v if k not in self.best else better(k, self.best[k], v)
                logged[best_tag(k)] = self.best[k]
        # Already reduced over ranks: sync_dist would average twice.
        self.log_dict(logged, sync_dist=False)

    def on_train_epoch_start(self) -> None:
        self.metrics["train"].reset()
        self._epoch_start_logs = {}

    def log_at_epoch_start(self, name: str, value: float) -> None:
        """`self.log` for a value logged once in on_train_epoch_start (the epoch's lr).

        Lightning skips on_train_epoch_start when a run resumes mid-epoch, so these
        values are kept in the checkpoint and logged again then (on_train_start).
        """
        self._epoch_start_logs[name] = float(value)
        self.log(name, value)

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
        if self.trainer.fit_loop.restarted_mid_epoch:
            for name, value in self._epoch_start_logs.items():
                self.log(name, value)
