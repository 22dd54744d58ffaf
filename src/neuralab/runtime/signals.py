"""SIGINT / SIGTERM (and SIGUSR2) end a run with a resumable checkpoint instead of lost work.

`StopRequest` turns the signal into a flag (the handler does nothing else: it may fire
anywhere, e.g. inside an optimizer step). `GracefulStop` looks at the flag after every
training batch -- a Python attribute, no device sync -- and, once it is set, writes
`checkpoints/last.ckpt` through `trainer.save_checkpoint` (model, optimizer, schedulers,
loop counters, loader position, RNG: see runtime/exact_resume.py) and raises `RunInterrupted`,
which train.py reports as status `interrupted`, exit status 128 + signal number.

A second Ctrl-C stops at once (KeyboardInterrupt, as without neuralab); repeated
SIGTERMs are ignored, since schedulers may send several before their SIGKILL. A signal
after the last training batch saves and stops before the test (train.py); one during the
test lets it finish, since the run is then complete.

Lightning has its own SIGTERM handling: it sets `trainer.received_sigterm` and raises
`SIGTERMException` (a SystemExit, exit status 0) at the end of the epoch, or at the next
batch under DDP. Its handler stays in place and calls ours too; when its exception wins
(the signal came after the epoch's last batch), `on_exception` writes the checkpoint at
that clean epoch boundary and train.py turns the exception into `RunInterrupted`.

Under DDP every rank must save together, so the ranks all-reduce the flag every 10
steps and stop at the first such step after the signal (Lightning itself broadcasts
its SIGTERM flag every step there; its stop is handled as above). With fork-based DDP (ddp_notebook,
trainer=ddp_cpu) the ranks are child processes: signal the process group (Ctrl-C in a
terminal does; `kill -TERM -<pgid>`; SLURM signals every process of the job step).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.exceptions import SIGTERMException

log = logging.getLogger("neuralab")

# SIGUSR2 is what submitit asks SLURM to send before a time limit or a preemption
# (hydra/launcher=slurm): the run saves here, then the launcher requeues it with
# resume=true (hydra_plugins/neuralab_launchers), which continues from this checkpoint.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR2)
DDP_SYNC_EVERY_N_STEPS = 10


class RunInterrupted(Exception):
    """The run stopped on a signal after saving a checkpoint it can resume from."""

    def __init__(self, signum: int, step: int, checkpoint: Path | None):
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        name = signal.Signals(signum).name
        where = f"saved {checkpoint}" if checkpoint else "no checkpoint saved"
        super().__init__(f"{name} received; stopped at step {step}, {where}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention for "ended by this signal"


class StopRequest:
    """The first SIGINT/SIGTERM while installed; `signum` is None until one arrives."""

    def __init__(self) -> None:
        self.signum: int | None = None

    @contextlib.contextmanager
    def installed(self) -> Iterator[StopRequest]:
        if threading.current_thread() is not threading.main_thread():
            log.warning("not in the main thread: SIGINT/SIGTERM will not stop runs cleanly")
            yield self
            return
        previous = {s: signal.signal(s, self._handle) for s in STOP_SIGNALS}
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _handle(self, signum: int, frame: object) -> None:
        if self.signum is not None:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt  # the second Ctrl-C: stop now
            return
        self.signum = signum
        log.warning(
            "%s received: saving a checkpoint after the current step, then stopping "
            "(resume with resume=true)",
            signal.Signals(signum).name,
        )


class GracefulStop(Callback):
    """Saves `last.ckpt` and raises RunInterrupted at the first batch end after a signal."""

    def __init__(self, request: StopRequest, checkpoint_path: Path):
        self.request, self.checkpoint_path = request, Path(checkpoint_path)
        self.saved: Path | None = None

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        # Not after an epoch's last batch: Lightning would resume past that epoch's
        # validation and epoch end. The stop then comes at the epoch end (Lightning's
        # SIGTERM stop), after the next epoch's first batch, or after fit (train.py).
        last_batch = trainer.fit_loop.epoch_loop.batch_progress.is_last_batch
        if self._requested(trainer) and not last_batch:
            self._save(trainer)
            signum = self.request.signum or signal.SIGTERM  # another rank got the signal
            raise RunInterrupted(signum, trainer.global_step, self.saved)

    def _requested(self, trainer: L.Trainer) -> bool:
        if trainer.world_size == 1:
            return self.request.signum is not None  # a Python attribute: no sync
        if trainer.global_step % DDP_SYNC_EVERY_N_STEPS != 0:
            return False  # ranks agree at these steps only, with one all-reduce each
        requested = self.request.signum is not None
        return trainer.strategy.reduce_boolean_decision(requested, all=False)

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if isinstance(exception, SIGTERMException) and self.saved is None:
            self._save(trainer)  # Lightning stopped at an epoch end: a clean point to save

    def _save(self, trainer: L.Trainer) -> None:
        trainer.save_checkpoint(self.checkpoint_path, weights_only=False)  # the full state
        self.saved = self.checkpoint_path
        log.warning("saved %s at step %d", self.checkpoint_path, trainer.global_step)
