"""Stop a run whose training loss turns NaN or Inf, and never checkpoint its NaN weights.

After every batch, or every chunk of batches (whose step losses come as one vector), a
few tiny device ops (isfinite, argmax, where) remember the first step whose loss was
not finite, and its value; no host sync. The host reads that record when the steps
pass a multiple of `check_every_n_steps`, at every epoch end, and inside every
checkpoint save (`on_save_checkpoint`, which runs before the file is written or the
state is kept). So the run stops at most N-1 steps (or one chunk) after the first bad
one, the message names that first step exactly, and no checkpoint -- ModelCheckpoint's
last.ckpt/best.ckpt or the signal save -- ever holds diverged weights: `last.ckpt`
stays the last good one.

The record costs a few device ops per batch or chunk, and one `.item()` per check (the
only host sync: on a GPU the rest are queued kernels).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor


class Diverged(Exception):
    """The training loss became NaN/Inf; the run is over, status `diverged`."""

    def __init__(self, step: int, value: float, checkpoint: Path | None):
        self.step, self.value, self.checkpoint = step, value, checkpoint
        kept = f"last good checkpoint: {checkpoint}" if checkpoint else "no checkpoint was saved"
        super().__init__(f"training loss is {value} at step {step} (the first non-finite); {kept}")


class DivergenceGuard(Callback):
    def __init__(self, check_every_n_steps: int, last_checkpoint: Path):
        self.every = check_every_n_steps
        self.last_checkpoint = Path(last_checkpoint)
        self._step = 0  # global step of the batch in flight (host int, no sync)
        self._first_step: Tensor | None = None  # -1 until a loss is not finite
        self._first_value: Tensor | None = None

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._step = trainer.global_step

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        losses = _loss_of(outputs)
        if losses is None:  # manual optimization (the perceptron rule) returns nothing
            return
        self._record(losses.detach().float())
        # Checked when a multiple of N steps was passed (a chunk takes several at once).
        if trainer.global_step // self.every != self._step // self.every:
            self.check()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.check()  # before ModelCheckpoint's epoch-end save: monitoring callbacks go last

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict
    ) -> None:
        self.check()  # raising here aborts the save before anything is written

    def _record(self, losses: Tensor) -> None:
        """Remember the first non-finite of `losses`, the steps `self._step`, +1, ..."""
        if self._first_step is None:
            self._first_step = torch.full((), -1, dtype=torch.long, device=losses.device)
            self._first_value = torch.zeros((), device=losses.device)
        bad = ~torch.isfinite(losses)
        first = bad.int().argmax()  # the first bad step of these (0 when none is bad)
        new = bad.any() & (self._first_step < 0)
        self._first_step = torch.where(new, self._step + first, self._first_step)
        self._first_value = torch.where(new, losses[first], self._first_value)

    def check(self) -> None:
        """Raise Diverged if any loss so far was not finite (one host sync)."""
        if self._first_step is None:
            return
        step = int(self._first_step.item())
        if step >= 0:
            kept = self.last_checkpoint if self.last_checkpoint.is_file() else None
            raise Diverged(step, float(self._first_value.item()), kept)


def _loss_of(outputs: Any) -> Tensor | None:
    """(S,) the losses of the S steps just taken: one, or every step of a chunk."""
    if isinstance(outputs, Tensor):
        return outputs.reshape(1)
    if isinstance(outputs, dict) and isinstance(outputs.get("step_losses"), Tensor):
        return outputs["step_losses"]
    if isinstance(outputs, dict) and isinstance(outputs.get("loss"), Tensor):
        return outputs["loss"].reshape(1)
    return None
