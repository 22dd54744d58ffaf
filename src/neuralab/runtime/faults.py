"""Deliberate faults at a chosen step, to test that runs survive them (and for your own
requeue scripts): NaN weights (`debug=diverge`), an exception, a pause until a signal,
a signal sent to the run itself.

Each takes `at_step` (the trainer's global step, i.e. optimizer steps done before the
batch); `null` never fires, so a sweep can turn a fault on for one job only:
    neuralab-train -m debug=diverge callbacks.poison_weights.at_step=null,7
Batch hooks run once per chunk when batches come in chunks (`data.steps_per_chunk`):
a fault aimed inside a chunk acts at the start (or, "after", at the end) of the chunk
that holds the step. `data.steps_per_chunk=1` puts a boundary at every step.
"""

from __future__ import annotations

import os
import signal as signal_module
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from neuralab.runtime.chunks import batches_of
from neuralab.runtime.signals import GracefulStop


class PoisonWeights(Callback):
    """Set the first weight to NaN just before step `at_step`: its loss is NaN."""

    def __init__(self, at_step: int | None = None):
        self.at_step = at_step

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if _starts(trainer, batch, self.at_step):
            with torch.no_grad():
                next(pl_module.parameters()).view(-1)[0] = float("nan")


class RaiseAt(Callback):
    """Raise RuntimeError at step `at_step`: a job that crashes mid-run."""

    def __init__(self, at_step: int | None = None, message: str = "injected failure"):
        self.at_step, self.message = at_step, message

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if _starts(trainer, batch, self.at_step):
            raise RuntimeError(f"{self.message} at step {self.at_step}")


class PauseAt(Callback):
    """After step `at_step`, write `marker` and sleep until a signal stops the run.

    A test sends SIGTERM (or SIGKILL) once `marker` exists, so the run stops exactly
    after that step. It pauses once: with `marker` already there (the resumed run of the
    same command) it does nothing. Configured callbacks run before the ones neuralab adds,
    so the stop logic sees the signal right after the pause. Gives up after `timeout_s`.
    """

    def __init__(self, at_step: int | None, marker: str, timeout_s: float = 60.0):
        self.at_step, self.marker, self.timeout_s = at_step, Path(marker), timeout_s

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if not _first_time_after(trainer, batch, self.at_step, self.marker):
            return
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline and not _stop_requested(trainer):
            time.sleep(0.02)  # the signal handler runs between these sleeps


class SignalAt(Callback):
    """After step `at_step`, send `signal` (a name: SIGUSR2, SIGTERM) to this process,
    as a scheduler would: a preempted or timed-out job, at an exact step.

    It fires once: it writes `marker` first, and does nothing when `marker` exists (the
    requeued or resumed run of the same job goes on).
    """

    def __init__(self, at_step: int | None, marker: str, signal: str = "SIGUSR2"):
        self.at_step, self.marker = at_step, Path(marker)
        self.signum = signal_module.Signals[signal]

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if not _first_time_after(trainer, batch, self.at_step, self.marker):
            return
        os.kill(os.getpid(), self.signum)  # handled before the next callback runs


def _starts(trainer: L.Trainer, batch: Any, at_step: int | None) -> bool:
    """At a batch start: this batch (or chunk) takes step `at_step`."""
    first = trainer.global_step
    return at_step is not None and first <= at_step < first + len(batches_of(batch))


def _first_time_after(trainer: L.Trainer, batch: Any, at_step: int | None, marker: Path) -> bool:
    """True once: at the end of the batch (or chunk) that took step `at_step` - 1, i.e.
    with `at_step` steps done, when `marker` does not exist yet (it is written now, so
    the resumed or requeued run of the same job passes that step untouched)."""
    done = trainer.global_step
    if at_step is None or not done - len(batches_of(batch)) < at_step <= done:
        return False
    if marker.exists():
        return False
    marker.write_text(str(done))
    return True


def _stop_requested(trainer: L.Trainer) -> bool:
    return trainer.received_sigterm or any(
        isinstance(c, GracefulStop) and c.request.signum is not None for c in trainer.callbacks
    )
