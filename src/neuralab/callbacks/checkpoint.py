"""Lightning's ModelCheckpoint: last.ckpt always the newest state, files written at a bounded rate.

- Lightning 2.6 writes last.ckpt only in epochs whose top-k file was written: with
  `save_top_k=1`, an epoch that does not improve the monitored metric leaves last.ckpt
  at an older epoch, and a run killed then would resume from the past. Here last.ckpt
  is taken at the end of every epoch.
- Writing a file costs ~1.5 ms for the default MLP: a sixth of a digits epoch, twice
  an epoch when best.ckpt and last.ckpt both change. So a save is written at once
  only when `min_interval_s` have passed since the last write; otherwise the state is
  kept in memory (the checkpoint dict with its tensors cloned, ~0.3 ms) and written
  at the next write, at the end of fit, or when the run fails or is signalled. A run
  killed outright (SIGKILL, power) loses at most `min_interval_s` of training;
  `min_interval_s=0` writes every save at once. Under DDP every save is written at
  once (the ranks must agree on when to meet at the barrier).
- When best.ckpt and last.ckpt hold the same state, last.ckpt is a hard link to the
  file just written (one write per state). Lightning's `save_last="link"` is no
  substitute: it links last.ckpt to the newest top-k file even in epochs that did not
  improve.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint as LightningModelCheckpoint
from lightning_utilities.core.apply_func import apply_to_collection
from torch import Tensor

from neuralab.errors import ConfigError
from neuralab.utils.checkpoint_io import atomic_link


class ModelCheckpoint(LightningModelCheckpoint):
    def __init__(self, *args: Any, min_interval_s: float = 10.0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if isinstance(min_interval_s, bool) or not (
            isinstance(min_interval_s, int | float) and min_interval_s >= 0
        ):
            raise ConfigError(
                "callbacks.model_checkpoint.min_interval_s", min_interval_s, "a number >= 0"
            )
        self.min_interval_s = min_interval_s
        self._written_at = -math.inf  # time.monotonic() of the last file write
        self._unflushed = False  # a file was written and the loggers were not told yet
        # path -> (checkpoint dict, time taken): states saved but not yet written
        self._pending: dict[str, tuple[dict, float]] = {}

    # ------------------------------------------------------ when to save
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_skipped(trainer)
        if self._unflushed:  # this runs after the epoch's metrics were logged
            self._unflushed = False
            self._notify(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_skipped(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.flush(trainer)  # before the test stage loads best.ckpt

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        self.flush(trainer)  # a failed, diverged or signalled run keeps its newest good state

    def _save_last_if_skipped(self, trainer: L.Trainer) -> None:
        # Skipped when nothing may be saved now, or when this step's state is already saved.
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    # ------------------------------------------------------ how to save
    def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        same_state = (
            self._last_checkpoint_saved
            and self._last_checkpoint_saved != filepath
            and self._last_global_step_saved == trainer.global_step  # right after a save
        )
        source = self._last_checkpoint_saved if same_state else None
        if source in self._pending:  # the same state, still in memory: share it
            self._pending[filepath] = self._pending[source]
        elif source and Path(source).is_file():  # the same state, on disk: link it
            self._write(trainer, filepath, source)
        elif trainer.world_size == 1 and time.monotonic() - self._written_at < self.min_interval_s:
            checkpoint = trainer._checkpoint_connector.dump_checkpoint(self.save_weights_only)
            clone = apply_to_collection(checkpoint, Tensor, lambda t: t.detach().clone())
            self._pending[filepath] = (clone, time.time())
        else:
            self.flush(trainer)
            self._write(trainer, filepath, source)
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath

    def flush(self, trainer: L.Trainer) -> None:
        """Write every state kept in memory, each once (a shared state becomes a link)."""
        pending, self._pending = self._pending, {}
        written: dict[int, str] = {}  # id(checkpoint dict) -> the path it went to
        for path, (checkpoint, taken) in pending.items():
            if Path(path).is_file() and Path(path).stat().st_mtime > taken:
                continue  # written since by another route (the signal save): newer
            source = written.get(id(checkpoint))
            if source is None:
                trainer.strategy.save_checkpoint(checkpoint, path)
                written[id(checkpoint)] = path
            else:
                atomic_link(Path(source), Path(path), self._fsync(trainer))
        if pending:
            self._written_at = time.monotonic()
            self._notify(trainer)

    def _write(self, trainer: L.Trainer, filepath: str, source: str | None) -> None:
        if source:
            if trainer.is_global_zero:
                atomic_link(Path(source), Path(filepath), self._fsync(trainer))
            trainer.strategy.barrier()
        else:
            trainer.save_checkpoint(filepath, self.save_weights_only)
        self._written_at, self._unflushed = time.monotonic(), True

    def _notify(self, trainer: L.Trainer) -> None:
        """Tell the loggers a file was written (as Lightning does). TensorBoard flushes
        then, so the logged epochs a checkpoint covers are on disk with it: told at the
        epoch's end, since the train metrics are logged after validation's save."""
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(self)

    @staticmethod
    def _fsync(trainer: L.Trainer) -> bool:
        return getattr(trainer.strategy.checkpoint_io, "fsync", False)
