"""hydra-submitit-launcher's launchers, whose requeued jobs continue where they stopped.

On SLURM, submitit asks for SIGUSR2 `signal_delay_s` seconds before the time limit, and
SLURM sends it on preemption too. How a job then continues, in the same job dir:

1. neuralab's stop handling (neuralab/runtime/signals.py) takes the signal while the
   job trains: the current step finishes, `checkpoints/last.ckpt` is written, the job
   records status `interrupted` and exits with 128 + SIGUSR2.
2. `__call__` sees that exit and hands the signal on to submitit's own handler (ours
   stood in front of it while training): submitit calls `checkpoint`, stores what it
   returns, requeues the job (`scontrol requeue`; locally, a restart) and exits.
3. `checkpoint` returns this job with `resume=true` added: the same overrides, job number
   and sweep dir (Hydra copies the sweep's resolved dir into the job config), so the
   requeued job lands in its own dir and continues from last.ckpt (runtime/resume.py).

A job that SLURM requeues by itself (a preemption without the signal) runs its first
submission again; `SLURM_RESTART_COUNT` tells it apart and it resumes too. Hydra imports
this module for every command, so it imports nothing heavy (run_dirs needs no torch).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence
from typing import Any

from hydra.core.utils import JobReturn

from neuralab.runtime.run_dirs import RESUME_KEYS

try:  # the `sweeps` extra: without it these launchers do not exist (and Hydra says so)
    from hydra_plugins.hydra_submitit_launcher import submitit_launcher as stock
except ImportError:  # pragma: no cover - depends on what is installed
    stock = None

REQUEUE_SIGNAL = signal.SIGUSR2  # submitit's default (SUBMITIT_PREEMPT_SIGNAL changes it)


def with_resume(overrides: Sequence[str]) -> list[str]:
    """The job's overrides continuing its own run dir: resume=true, any ckpt_path dropped
    (the run started from it, and its last.ckpt is the newer state)."""
    keep = [o for o in overrides if o.partition("=")[0].lstrip("+~") not in RESUME_KEYS]
    return [*keep, "resume=true"]


def requeued_by_slurm() -> bool:
    return int(os.environ.get("SLURM_RESTART_COUNT") or 0) > 0


def requeue_signal() -> signal.Signals:
    name = os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")
    return signal.Signals[f"SIG{name}"]


class ResumingJobs:
    """Mixed into a submitit launcher: requeued jobs get resume=true (see the module doc)."""

    def __call__(self, sweep_overrides: list[str], *args: Any, **kwargs: Any) -> JobReturn:
        if requeued_by_slurm():
            sweep_overrides = with_resume(sweep_overrides)
        try:
            return super().__call__(sweep_overrides, *args, **kwargs)
        except SystemExit as exc:
            # The job stopped on the requeue signal, its checkpoint saved: now let
            # submitit's handler (back in place) checkpoint this submission and requeue.
            if exc.code == 128 + requeue_signal() and callable(signal.getsignal(requeue_signal())):
                signal.raise_signal(requeue_signal())
            raise

    def checkpoint(self, sweep_overrides: list[str], *args: Any, **kwargs: Any) -> Any:
        return super().checkpoint(with_resume(sweep_overrides), *args, **kwargs)


if stock is not None:

    class LocalLauncher(ResumingJobs, stock.LocalLauncher):
        """hydra/launcher=submitit_local: jobs as local processes (what the tests run)."""

    class SlurmLauncher(ResumingJobs, stock.SlurmLauncher):
        """hydra/launcher=slurm: one SLURM job per Hydra job, one task per device."""
