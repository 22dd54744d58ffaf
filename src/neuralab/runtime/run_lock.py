"""One process trains in a run dir at a time.

Two commands can name the same run dir: the same `resume=true` started twice, two
launcher workers given the same job, `hydra.run.dir=<dir>` twice. The second would
write checkpoints, events and results over the first's. So a run holds an exclusive
lock (flock) on `<run dir>/.run.lock` while it runs; the file says who holds it (pid,
host, since when), so a second process refuses with one line naming the holder. The
OS drops the lock when the holder ends, however it ends (SIGKILL, the OOM killer):
a dead holder keeps nothing; the file stays and is simply taken by the next run.

Ranks > 0 of a multi-process run re-run the command into the same dir (subprocess DDP,
a SLURM job's tasks): rank 0 holds the lock for all of them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from neuralab.errors import ConfigError

LOCK = ".run.lock"
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")  # as Lightning


class RunDirBusy(ConfigError):
    """Another live process trains in this run dir: it is theirs, nothing is undone."""

    def __init__(self, setting: str, run_dir: Path, holder: str):
        allowed = f"a run dir no other process is training in ({holder} holds {run_dir / LOCK})"
        super().__init__(setting, str(run_dir), allowed)


def check_free(run_dir: Path, setting: str = "hydra.run.dir") -> None:
    """RunDirBusy if a live process holds `run_dir` now (before Hydra writes into it)."""
    if _rank() != 0:
        return  # rank 0 of this very run holds it
    try:
        fd = os.open(Path(run_dir) / LOCK, os.O_RDWR)
    except OSError:
        return  # no lock file: never held (or not ours to judge: the run says so later)
    try:
        _lock(fd, Path(run_dir), setting)
    finally:
        os.close(fd)


def _lock(fd: int, run_dir: Path, setting: str) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
        raise RunDirBusy(setting, run_dir, holder) from None


def _rank() -> int:
    for name in RANK_VARIABLES:
        value = os.environ.get(name)
        if value is not None and value.isdigit():
            return int(value)
    return 0


@contextlib.contextmanager
def holding(run_dir: Path, setting: str = "hydra.run.dir") -> Iterator[None]:
    """Hold `run_dir`'s lock while the block runs; RunDirBusy if a live process holds it."""
    if _rank() != 0 or not Path(run_dir).is_dir():
        yield
        return
    path = Path(run_dir) / LOCK
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        _lock(fd, Path(run_dir), setting)
        since = datetime.now(timezone.utc).isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {since}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
