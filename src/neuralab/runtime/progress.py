"""Lightning's TQDM progress bar, counting optimizer steps rather than `training_step` calls,
showing the epoch's metrics; one line per epoch where stdout is not a terminal.

With chunks (`data.steps_per_chunk`) one call takes many steps, and Lightning's bar
would read "1/1" an epoch and its it/s would be chunks per second. This bar's total
is the epoch's batches, it advances by the steps each call took, and it/s is steps
per second. During fit it draws no validation bar: a new tqdm object every epoch
costs ~1 ms, a tenth of a digits epoch, to show one batch; the val metrics still
appear on the training bar when validation ends.

The metrics shown are the epoch values of train/ and val/ (loss, acc, ...), whatever
published them (neuralab's modules skip `self.log(prog_bar=True)`: metrics.py). In a
log file a bar is 4-5 frames an epoch; there, instead, every `lines_every_n_epochs`
epochs one line: `epoch 3/20  train/loss 0.2345  train/acc 0.9120  val/loss ...`.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar

from neuralab.metrics import split_tag
from neuralab.runtime.chunks import batches_of, steps_per_epoch
from neuralab.runtime.tags import EPOCHS_METRIC

log = logging.getLogger("neuralab")
NOT_SHOWN = ("lr", "epochs")  # schedule and progress: not results


class StepProgressBar(TQDMProgressBar):
    def __init__(
        self,
        refresh_rate: int = 10,
        lines_every_n_epochs: int = 1,
        terminal: bool | None = None,
        **kwargs: Any,
    ):
        # None: a bar on a terminal, lines anywhere else (a file, a pipe, a job's log)
        self.terminal = sys.stdout.isatty() if terminal is None else terminal
        super().__init__(refresh_rate=refresh_rate, **kwargs)
        self._steps = 0  # optimizer steps taken in this epoch
        self.lines_every_n_epochs = lines_every_n_epochs
        self._shown_epoch = 0  # the last epoch a line was printed for

    @property
    def is_enabled(self) -> bool:
        return self.terminal and super().is_enabled

    @property
    def total_train_batches(self) -> int | float:
        return steps_per_epoch(self.trainer)

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        """Lightning's (self.log(prog_bar=True), v_num) and the epoch's train and val values."""
        shown = super().get_metrics(trainer, pl_module)
        shown.pop("v_num", None)
        return {**shown, **{k: f"{v:.4g}" for k, v in epoch_values(trainer).items()}}

    def on_train_epoch_start(self, trainer: L.Trainer, *args: Any) -> None:
        super().on_train_epoch_start(trainer, *args)
        self._steps = 0
        self._print_line(trainer)  # the epoch before: its train values came after the hooks

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        self._print_line(trainer, last=True)

    def _print_line(self, trainer: L.Trainer, last: bool = False) -> None:
        values = epoch_values(trainer)
        done = int(float(trainer.callback_metrics.get(EPOCHS_METRIC, 0)))
        due = done % self.lines_every_n_epochs == 0 or last
        if self.terminal or not trainer.is_global_zero or done <= self._shown_epoch or not due:
            return
        self._shown_epoch = done
        total = f"/{trainer.max_epochs}" if trainer.max_epochs and trainer.max_epochs > 0 else ""
        text = "  ".join(f"{k} {v:.4f}" for k, v in values.items())
        log.info("epoch %d%s  %s", done, total, text)

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        taken = len(batches_of(batch))
        self._steps += taken
        bar, rate = self.train_progress_bar, self.refresh_rate
        crossed = self._steps // rate != (self._steps - taken) // rate if rate else False
        if bar is not None and self.is_enabled and (crossed or self._steps == bar.total):
            bar.n = self._steps
            bar.refresh()
            bar.set_postfix(self.get_metrics(trainer, pl_module))

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not _fitting(trainer):
            super().on_validation_start(trainer, pl_module)

    def on_validation_batch_start(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        if not _fitting(trainer):
            super().on_validation_batch_start(trainer, *args, **kwargs)

    def on_validation_batch_end(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        if not _fitting(trainer):
            super().on_validation_batch_end(trainer, *args, **kwargs)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not _fitting(trainer):
            super().on_validation_end(trainer, pl_module)
        elif self._train_progress_bar is not None:
            self.train_progress_bar.set_postfix(self.get_metrics(trainer, pl_module))


def _fitting(trainer: L.Trainer) -> bool:
    """A validation run inside fit (not the sanity check, not trainer.validate)."""
    return trainer.state.fn == "fit" and not trainer.sanity_checking


def epoch_values(trainer: L.Trainer) -> dict[str, float]:
    """The latest train/ and val/ results (loss, acc, ...; not the lr, best or counts)."""
    values = {}
    for key, value in trainer.callback_metrics.items():
        stage, name = split_tag(key) or ("", "")
        if stage in ("train", "val") and name not in NOT_SHOWN and not name.endswith("_best"):
            values[key] = float(value)
    return dict(sorted(values.items(), key=lambda kv: (not kv[0].startswith("train"), kv[0])))
