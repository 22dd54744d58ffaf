"""Lightning's ModelCheckpoint, with last.ckpt the newest state and each state written once.

- Lightning 2.6 writes last.ckpt only in epochs whose top-k file was written: with
  `save_top_k=1`, an epoch that does not improve the monitored metric leaves last.ckpt
  at an older epoch, and a run killed then would resume from the past. Here last.ckpt
  is written at the end of every epoch.
- An epoch that does improve would write the same state twice: best.ckpt, then
  last.ckpt. On small nets that second torch.save is a large share of an epoch
  (~2 ms against a ~9 ms digits epoch), so last.ckpt becomes a hard link to the file just
  written instead. Lightning's `save_last="link"` is no substitute: it links last.ckpt
  to the newest top-k file even in epochs that did not improve.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint as LightningModelCheckpoint

from neuralab.utils.checkpoint_io import atomic_link


class ModelCheckpoint(LightningModelCheckpoint):
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_skipped(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_skipped(trainer)

    def _save_last_if_skipped(self, trainer: L.Trainer) -> None:
        # Skipped when nothing may be saved now, or when this step's state is already saved.
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        source = self._last_checkpoint_saved
        same_state = (
            filepath == self.last_model_path  # the save_last call...
            and source
            and source != filepath
            and self._last_global_step_saved == trainer.global_step  # ...right after a save
            and Path(source).is_file()
        )
        if not same_state:
            super()._save_checkpoint(trainer, filepath)
            return
        if trainer.is_global_zero:
            fsync = getattr(trainer.strategy.checkpoint_io, "fsync", False)
            atomic_link(Path(source), Path(filepath), fsync)
        trainer.strategy.barrier()
        self._last_checkpoint_saved = filepath
