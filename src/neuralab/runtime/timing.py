"""Wall-clock facts of a run: start-up, time to the first step, training throughput.

Writes `<run dir>/timing.json` at the end of fit (rank 0). Everything is host
time taken in hooks that run anyway; nothing touches the device, so the cost is
a few microseconds per step. Process start comes from the OS (Linux /proc), so
"start-up" covers interpreter start, imports, config composition and data
setup, as a user experiences it.

Keys (times are Unix seconds, durations seconds):
  process_start   when this process started (null off Linux)
  first_step      the first training step's start
  startup_s       process_start -> first_step
  train_s         first_step -> end of training (validation included)
  epoch_train_s   one entry per training epoch this process ran: its steps and its
                  validation (Lightning validates before the epoch-end hooks; the
                  checkpoint saved at the epoch end falls after). A resumed run lists
                  only the epochs it ran itself
  train_samples, train_steps, samples_per_s   over the train_s window
In a packed sweep (neuralab/pack/) every member's timing.json holds the pack's clocks
(one fit trained them all), its own samples, and `packed_members`: the pack's size.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from neuralab.runtime.chunks import batches_of


def process_start_time() -> float | None:
    """Unix time this process started (Linux), or None elsewhere.

    /proc/self/stat gives the start in clock ticks after boot (10 ms). The boot time
    is now minus /proc/uptime (centiseconds), not /proc/stat's `btime`: that one is
    truncated to whole seconds, which made start-up too long by the boot time's
    fraction of a second (up to 1 s; ~0.9 s measured against an outside clock). Both
    count on the same boot clock (CLOCK_BOOTTIME), so the result is good to +-10 ms.
    A time taken on the console script's first line would miss the interpreter's start.
    """
    try:
        fields = Path("/proc/self/stat").read_text().rpartition(")")[2].split()
        ticks = int(fields[19])  # field 22 of stat: start time in clock ticks after boot
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        boot = time.time() - uptime
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class RunTimer(Callback):
    def __init__(self, filename: str = "timing.json"):
        self.filename = filename
        self.first_step: float | None = None
        self.fit_start = self.train_end = 0.0
        self.samples = self.steps = 0
        self.epoch_start = 0.0
        self.epoch_train_s: list[float] = []

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.fit_start, self.first_step, self.samples, self.steps = time.time(), None, 0, 0
        self.epoch_train_s = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.epoch_start = time.time()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.epoch_train_s.append(time.time() - self.epoch_start)

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self.first_step is None:
            self.first_step = time.time()

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        batches = batches_of(batch)  # a chunk is several batches (optimizer steps)
        self.samples += sum(self.rows(b) for b in batches)  # host-side shapes: no device sync
        self.steps += len(batches)

    @staticmethod
    def rows(batch: Any) -> int:
        return len(batch[0])

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.train_end = time.time()
        if trainer.is_global_zero:
            # The run dir (trainer.default_root_dir), not the logger's: timing.json is
            # written with logger=none too.
            self.write(Path(trainer.default_root_dir), self.report(trainer.world_size))

    def report(self, world_size: int) -> dict[str, Any]:
        started = process_start_time()
        train_s = self.train_end - (self.first_step or self.train_end)
        return {
            "process_start": started,
            "first_step": self.first_step,
            "startup_s": None if started is None else (self.first_step or 0) - started,
            "train_s": train_s,  # first step -> end of training (validation included)
            "epoch_train_s": self.epoch_train_s,
            "train_samples": self.samples * world_size,
            "train_steps": self.steps,
            "samples_per_s": self.samples * world_size / train_s if train_s else None,
        }

    def write(self, run_dir: Path, report: dict[str, Any]) -> None:
        (run_dir / self.filename).write_text(json.dumps(report, indent=2))
