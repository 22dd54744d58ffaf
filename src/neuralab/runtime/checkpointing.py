"""Lightning's ModelCheckpoint with best.ckpt exact, last.ckpt current, and few file writes.

- Lightning 2.6 writes last.ckpt only in epochs whose top-k file was written: with
  `save_top_k=1`, an epoch that does not improve the monitored metric leaves last.ckpt
  at an older epoch. Here last.ckpt is saved at every epoch end (subject to the rate
  below) and always holds the final state when fit ends.
- Writing a file costs ~1.5 ms for the default MLP (plus ~0.5 ms to gather the state):
  a sixth of a digits epoch, twice an epoch when best.ckpt and last.ckpt both change.
  So files are written at most every `min_interval_s` seconds. Between writes, a new
  best state is kept in memory (`_snapshot`) and written at the next write, at the end
  of fit, or when the run fails or is signalled: best.ckpt is always the best epoch.
  A last.ckpt save that falls between writes is skipped; the end of fit writes the
  final state. So a run that crashes or is killed loses at most `min_interval_s` of
  training (a SIGTERM/SIGUSR2 saves the current state at once, `runtime/signals.py`).
  `min_interval_s=0` writes every save at once. Under DDP every save is written at
  once (the ranks must agree on when to meet at the barrier).
- When best.ckpt and last.ckpt hold the same state, last.ckpt is a hard link to the
  file just written (one write per state). Lightning's `save_last="link"` is no
  substitute: it links last.ckpt to the newest top-k file even in epochs that did not
  improve.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor

from neuralab.errors import ConfigError
from neuralab.runtime.checkpoint_io import CheckpointWriteFailed, atomic_link
from neuralab.runtime.lightning_internals import CheckpointHooks, dump_checkpoint

log = logging.getLogger("neuralab")


class ModelCheckpoint(CheckpointHooks):
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
        self._last_behind = False  # last.ckpt is older than the newest epoch end
        # path -> (checkpoint dict, time taken): states saved but not yet written
        self._pending: dict[str, tuple[dict, float]] = {}
        # path -> the checkpoint dict last written there from memory, kept when asked
        # (a packed fit tests each member on its best state without reading it back:
        # torch.load with weights_only takes ~11 ms for a small net's checkpoint).
        self.keep_written = False
        self.written: dict[str, dict] = {}

    # ------------------------------------------------------ when to save
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self.saves_on_train_epoch_end(trainer):
            self._save_last_if_skipped(trainer)
        if self._unflushed:  # this runs after the epoch's metrics were logged
            self._unflushed = False
            self._notify(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self.saves_on_train_epoch_end(trainer):
            self._save_last_if_skipped(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.flush(trainer)  # before the test stage loads best.ckpt
        if self._last_behind:  # fit ended otherwise (max_steps, max_time): the final state
            self.save_state(trainer, self.last_model_path, force=True)

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        # A failed, diverged or signalled run keeps its newest good state -- if the disk
        # lets it: a failed write here must not hide the exception that ended the run.
        try:
            self.flush(trainer)
        except CheckpointWriteFailed as err:
            log.warning("%s", err)

    def _save_last_if_skipped(self, trainer: L.Trainer) -> None:
        # Skipped when nothing may be saved now, or when this step's state is already saved.
        if self.save_last and self.may_save_now(trainer):
            self.save_last_now(trainer)

    def monitor_candidates(self, trainer: L.Trainer) -> dict[str, Tensor]:
        # Lightning deep-copies callback_metrics here (~0.3 ms a call). neuralab replaces
        # those tensors and never changes one in place, so a shallow copy is as safe.
        candidates = dict(trainer.callback_metrics)
        for key, value in (("epoch", trainer.current_epoch), ("step", trainer.global_step)):
            found = candidates.get(key)
            candidates[key] = found.int() if isinstance(found, Tensor) else torch.tensor(value)
        return candidates

    # ------------------------------------------------------ how to save
    def save_state(self, trainer: L.Trainer, filepath: str, force: bool = False) -> None:
        saved, saved_step = self.last_saved
        same_state = saved and saved != filepath and saved_step == trainer.global_step
        source = saved if same_state else None  # right after a save of this very state
        last = filepath == self.last_model_path
        due = force or trainer.world_size > 1 or self._due() or (last and _final_epoch(trainer))
        if source in self._pending:  # the same state, still in memory: share it
            self._pending[filepath] = self._pending[source]
        elif source and Path(source).is_file():  # the same state, on disk: link it
            self._write(trainer, filepath, source)
        elif not due and last:
            self._last_behind = True  # written at the end of fit (a crash keeps the older)
            return
        elif not due:
            self._pending[filepath] = (_snapshot(trainer, self.save_weights_only), time.time())
        else:
            self._pending.pop(filepath, None)  # superseded: this write is newer
            self.flush(trainer)
            self._write(trainer, filepath, None)
        self._last_behind &= not last
        self.last_saved = (filepath, trainer.global_step)

    def _due(self) -> bool:
        return time.monotonic() - self._written_at >= self.min_interval_s

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
            if self.keep_written:
                self.written[path] = checkpoint
        if pending:
            self._written_at = time.monotonic()
            self._notify(trainer)

    def _write(self, trainer: L.Trainer, filepath: str, source: str | None) -> None:
        self.written.pop(filepath, None)  # the file holds another state now
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


# True while `_snapshot` makes its dict: it copies every tensor of it afterwards, so a
# callback that copies the state's tensors for a file (pack/members.py) need not.
_SNAPSHOTTING = ContextVar("snapshotting", default=False)


def snapshotting() -> bool:
    """Whether the checkpoint dict being made now is a snapshot (its tensors copied)."""
    return _SNAPSHOTTING.get()


def _snapshot(trainer: L.Trainer, weights_only: bool) -> dict:
    """The checkpoint dict as it is now, unaffected by further training: the net's and
    optimizer's tensors (changed in place by training) and the loop and callback states
    copied; the rest holds values that are only replaced."""
    token = _SNAPSHOTTING.set(True)
    try:
        checkpoint = dump_checkpoint(trainer, weights_only)
    finally:
        _SNAPSHOTTING.reset(token)
    for key in ("state_dict", "optimizer_states", "loops", "callbacks"):
        if key in checkpoint:
            checkpoint[key] = frozen(checkpoint[key])
    return checkpoint


PLAIN = (int, float, str, bool, type(None))


def frozen(value: Any) -> Any:
    """A copy of a checkpoint's nested containers that training cannot change: tensors
    cloned (a view gets storage of its own), plain values kept, anything else
    deep-copied. (copy.deepcopy and Lightning's apply_to_collection cost ~1 ms a
    snapshot; a packed sweep takes one per member at every new best epoch.)"""
    if isinstance(value, Tensor):
        return value.detach().clone()
    if isinstance(value, PLAIN):
        return value
    if type(value) is dict:  # most of them (the loops' progress): ~25% faster than below
        return {k: v if type(v) in PLAIN else frozen(v) for k, v in value.items()}
    if isinstance(value, dict):
        copied = copy.copy(value)  # its type and attributes (a state_dict's _metadata)
        for key, item in value.items():
            if type(item) not in PLAIN:
                copied[key] = frozen(item)
        return copied
    if type(value) in (list, tuple):  # (Python's RNG state: a tuple of 625 ints)
        return type(value)(item if type(item) in PLAIN else frozen(item) for item in value)
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a namedtuple
        return type(value)(*(frozen(item) for item in value))
    return copy.deepcopy(value)


def _final_epoch(trainer: L.Trainer) -> bool:
    """This epoch end is fit's last: max_epochs reached or a stop requested (early
    stopping decides before checkpointing, which Lightning runs last)."""
    max_epochs = trainer.max_epochs if trainer.max_epochs not in (None, -1) else math.inf
    return trainer.should_stop or trainer.current_epoch + 1 >= max_epochs
