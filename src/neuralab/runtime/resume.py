"""Where a run starts inside its run dir: from scratch, from a checkpoint, or not at all.

With `resume=true` (or `ckpt_path=last`) the run dir is an old one (runtime/run_dirs.py):
its results.json says `ok` or `diverged` -> nothing to do (the command reports it and
exits 0); `checkpoints/last.ckpt` exists -> continue from it, in place; else start from
scratch there. With `ckpt_path=<file>` a new run dir continues that checkpoint's whole
training state (weights, optimizer, schedule, counters).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from neuralab.runtime.checkpoint_files import find_checkpoint, load_checkpoint
from neuralab.runtime.run_dirs import FINISHED, RESULTS, read_status, wants_resume

LAST = "last.ckpt"


@dataclass
class StartPlan:
    checkpoint_path: Path | None = None
    checkpoint: dict | None = None  # loaded with weights_only, for the checks before fit
    in_place: bool = False  # continuing this run dir (its TensorBoard run, its checkpoints)
    finished: dict | None = None  # results.json of a run that is done: nothing to do

    @property
    def step(self) -> int:
        return int(self.checkpoint.get("global_step", 0)) if self.checkpoint else 0


def last_checkpoint(output_dir: Path) -> Path:
    """Where a run's resumable checkpoint lives (ModelCheckpoint's and the signal save)."""
    return Path(output_dir) / "checkpoints" / LAST


def plan_start(cfg: DictConfig, output_dir: Path) -> StartPlan:
    if wants_resume(cfg):
        results = read_status(output_dir)
        if results is not None and results.get("status") in FINISHED:
            return StartPlan(in_place=True, finished=results)
        last = last_checkpoint(output_dir)
        if last.is_file():
            return StartPlan(last, load_checkpoint(last, setting="resume"), in_place=True)
        return StartPlan(in_place=True)
    if cfg.get("ckpt_path") is not None:
        path = find_checkpoint(str(cfg.ckpt_path), None)
        return StartPlan(path, load_checkpoint(path))
    return StartPlan()


def forget_outcome(output_dir: Path) -> None:
    """Drop an earlier session's results.json (`interrupted`, `failed`) as this one starts:
    while a run trains it has no outcome yet (a sweep table shows it as missing)."""
    (Path(output_dir) / RESULTS).unlink(missing_ok=True)
