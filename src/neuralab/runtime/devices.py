"""Which GPU a job trains on when a launcher runs several jobs at once.

`trainer.devices: 1` means "the first GPU" to Lightning -- for every job. Under the
joblib launcher (hydra/launcher=joblib) on a machine with several GPUs, every worker
would then train on cuda:0 while the others idle. So each worker process claims one
visible GPU for as long as it lives: an exclusive lock on
`<sweep dir>/.devices/<index>.lock`, taken with flock. The OS drops the lock when the
process ends, so a crashed worker frees its GPU and no stale lock survives it. A worker
keeps its GPU for all the jobs it runs; with more workers than GPUs the extra ones share
(job number modulo GPU count).

Nothing changes on CPU, with one GPU, or when the config already asks for more than one
device or a specific one (devices=[2], trainer=ddp, ...).
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from omegaconf import DictConfig

log = logging.getLogger("neuralab")

LOCK_DIR = ".devices"
GPU_ACCELERATORS = ("auto", "gpu", "cuda")
_held: dict[str, int] = {}  # lock dir -> the GPU index this process holds there
_fds: list[int] = []  # open lock files: closing one would release its lock


def wants_own_device(trainer: Mapping, gpu_count: int) -> bool:
    """One GPU asked for (devices=1, no strategy of its own) and several to choose from."""
    return (
        gpu_count > 1
        and str(trainer.get("accelerator", "auto")) in GPU_ACCELERATORS
        and str(trainer.get("devices", 1)) == "1"
        and str(trainer.get("strategy", "auto")) == "auto"
    )


def claim_device(lock_dir: Path, count: int) -> int | None:
    """A GPU index in [0, count) that no other live process holds in `lock_dir`, kept by
    this process from now on (the same index on every later call); None if all are held."""
    key = str(Path(lock_dir).resolve())
    if key in _held:
        return _held[key]
    Path(lock_dir).mkdir(parents=True, exist_ok=True)
    for index in range(count):
        fd = os.open(Path(lock_dir) / f"{index}.lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        _fds.append(fd)
        _held[key] = index
        return index
    return None


def place_job(
    cfg: DictConfig, sweep_dir: Path, job_num: int, gpu_count: int | None = None
) -> int | None:
    """Set `trainer.devices=[k]` for a multirun job that asked for one GPU of several.

    Returns the GPU index, or None when nothing changed. `gpu_count` defaults to the
    GPUs visible here (counted without initializing CUDA, so fork-based DDP still works).
    """
    if gpu_count is None:
        from lightning.fabric.accelerators.cuda import num_cuda_devices

        gpu_count = num_cuda_devices()
    if not wants_own_device(cfg.trainer, gpu_count):
        return None
    index = claim_device(Path(sweep_dir) / LOCK_DIR, gpu_count)
    if index is None:
        index = job_num % gpu_count
        log.info("every GPU is held by another worker: job %d shares GPU %d", job_num, index)
    cfg.trainer.devices = [index]
    return index


def machine_devices() -> tuple[int, bool, list[str]]:
    """(CUDA devices, whether an Apple GPU is there, Lightning's strategy names), counted
    without initializing CUDA (fork-based DDP must still work afterwards)."""
    from lightning.fabric.accelerators import MPSAccelerator
    from lightning.fabric.accelerators.cuda import num_cuda_devices
    from lightning.pytorch.strategies import StrategyRegistry

    return (
        num_cuda_devices(),
        MPSAccelerator.is_available(),
        StrategyRegistry.available_strategies(),
    )
