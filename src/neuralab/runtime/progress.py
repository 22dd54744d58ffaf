"""Lightning's TQDM progress bar, counting optimizer steps rather than `training_step` calls.

With chunks (`data.steps_per_chunk`) one call takes many steps, and Lightning's bar
would read "1/1" an epoch and its it/s would be chunks per second. This bar's total
is the epoch's batches, it advances by the steps each call took, and it/s is steps
per second. During fit it draws no validation bar: a new tqdm object every epoch
costs ~1 ms, a tenth of a digits epoch, to show one batch; the val metrics still
appear on the training bar when validation ends.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar

from neuralab.runtime.chunks import batches_of, steps_per_epoch


class StepProgressBar(TQDMProgressBar):
    def __init__(self, refresh_rate: int = 10, **kwargs: Any):
        super().__init__(refresh_rate=refresh_rate, **kwargs)
        self._steps = 0  # optimizer steps taken in this epoch

    @property
    def total_train_batches(self) -> int | float:
        return steps_per_epoch(self.trainer)

    def on_train_epoch_start(self, trainer: L.Trainer, *args: Any) -> None:
        super().on_train_epoch_start(trainer, *args)
        self._steps = 0

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
