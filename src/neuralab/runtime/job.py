"""How a neuralab-train job ends: its status in results.json and the process exit status.

    status       when                              single run         inside a multirun
    ok           trained (and tested)              exit 0             next job
    diverged     NaN/Inf training loss             exit 3, one line   next job
    pruned       the Optuna sweep's pruner         (sweeps only)      next job
    interrupted  SIGINT/SIGTERM, checkpoint saved  exit 130 / 143     sweep stops, exit 130 / 143
    failed       bad input (ConfigError)           exit 2, one line   next job (message in results)
    failed       a checkpoint write failed         exit 1, one line   next job (traceback.txt, log)
    failed       any other exception               exit 1, traceback  next job (traceback.txt, log)
    (refused)    its run dir is held by another    exit 2, one line   next job (nothing written)

With `fail_fast=true` a multirun stops at its first diverged or failed job with that
job's exit status. A multirun whose jobs all end without `ok` exits 1 at the end
(sweep/status.py). An interrupted sweep stops at once, since the user or the scheduler
asked for the process to end; `resume=true` picks it up (docs/SURVIVAL.md).
A single run refused as bad input leaves nothing behind: no results.json, and no run
dir unless an earlier session made it (runtime/run_guard.py). One process at a time
trains in a run dir (runtime/run_lock.py).
"""

from __future__ import annotations

import json
import math
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from neuralab.errors import ConfigError
from neuralab.runtime.checkpoint_io import CheckpointWriteFailed
from neuralab.runtime.cli import (
    find_cause,
    find_config_error,
    log,
    log_files_on_rank_zero_only,
    quiet_known_warnings,
    write_json,
)
from neuralab.runtime.divergence import Diverged
from neuralab.runtime.run_dirs import DIVERGED, FAILED, INTERRUPTED, PRUNED, RESULTS
from neuralab.runtime.run_guard import refuse
from neuralab.runtime.run_info import RUN_INFO
from neuralab.runtime.run_lock import RunDirBusy, holding
from neuralab.runtime.signals import RunInterrupted
from neuralab.sweep.optuna_pruning import Pruned

EXIT_FAILED, EXIT_BAD_INPUT, EXIT_DIVERGED = 1, 2, 3
TRACEBACK = "traceback.txt"


def run_job(
    task: Callable[[DictConfig], float | None], started: float | None = None
) -> Callable[[DictConfig], float | None]:
    """`task` with every way of ending turned into a status, a log entry and an exit.
    `started`: when the job began, if before this call (a packed job: neuralab/pack/)."""

    def wrapped(cfg: DictConfig) -> float | None:
        quiet_known_warnings()
        log_files_on_rank_zero_only()
        begun = time.time() if started is None else started
        try:
            with holding(Path(HydraConfig.get().runtime.output_dir)):
                return task(cfg)
        except RunInterrupted as exc:
            _record(INTERRUPTED, exc, begun, _interrupted_fields(exc))
            sys.exit(exc.exit_code)
        except Pruned as exc:  # only inside an Optuna sweep (sweep/optuna_pruning.py)
            _record(PRUNED, exc, begun, {"pruned_at_epoch": exc.epoch})
            log.info("job pruned: %s", exc)
            return math.nan
        except Diverged as exc:
            fields = {"diverged_at_step": exc.step, "diverged_loss": str(exc.value)}
            _record(DIVERGED, exc, begun, {**fields, "last_checkpoint": _str(exc.checkpoint)})
            return _continue_or_exit(cfg, exc, EXIT_DIVERGED, "diverged")
        except Exception as exc:
            err = find_config_error(exc)
            if err is not None:
                return _bad_input(cfg, err, begun)
            write_failed = find_cause(exc, CheckpointWriteFailed)
            if write_failed is not None:  # the machine failed, not the code: one line
                fields = {"traceback": TRACEBACK}
                _record(FAILED, write_failed, begun, fields, trace=traceback.format_exc())
                return _continue_or_exit(cfg, write_failed, EXIT_FAILED, "failed")
            _record(FAILED, exc, begun, {"traceback": TRACEBACK}, trace=traceback.format_exc())
            if not _multirun():
                raise
            return _continue_or_exit(cfg, exc, EXIT_FAILED, "failed")

    wrapped.__name__ = task.__name__
    return wrapped


def _bad_input(cfg: DictConfig, err: ConfigError, started: float) -> float:
    if not _multirun():
        refuse(err)  # one line; the run dir this command made is removed
    log.error("%s", err)  # into the job's log file
    if isinstance(err, RunDirBusy):  # the dir is another process's: write nothing there
        return _continue_or_exit(cfg, err, EXIT_BAD_INPUT, "refused")
    _record(FAILED, err, started, {})
    return _continue_or_exit(cfg, err, EXIT_BAD_INPUT, "failed")


def _continue_or_exit(cfg: DictConfig, exc: Exception, code: int, what: str) -> float:
    """Single run: one line and `code`. Multirun: NaN for the sweeper, next job."""
    if not _multirun():
        print(f"neuralab: {what}: {exc}", file=sys.stderr)
        sys.exit(code)
    if cfg.get("fail_fast"):
        log.error("fail_fast=true: stopping the sweep at this %s job", what)
        sys.exit(code)
    log.warning("job %s: %s; the sweep goes on", what, exc)
    return math.nan  # a sweeper (Optuna) reads NaN as a failed trial


def _record(status: str, exc: BaseException, started: float, fields: dict, trace: str = "") -> None:
    """results.json (and traceback.txt) in this job's dir, and the log entry."""
    output_dir = Path(HydraConfig.get().runtime.output_dir)
    if trace and not isinstance(exc, CheckpointWriteFailed):
        log.error("run failed:\n%s", trace)
        (output_dir / TRACEBACK).write_text(trace)
    payload = {
        "status": status,
        "error": _one_line(exc),
        "overrides": list(HydraConfig.get().overrides.task),
        "wall_time_s": round(time.time() - started, 3),
        "run_info": latest_session(output_dir),
        **getattr(exc, "results", {}),  # partial metrics the run attached
        **fields,
    }
    write_json(output_dir / RESULTS, payload)


def _interrupted_fields(exc: RunInterrupted) -> dict:
    log.warning("%s; continue with the same command and resume=true", exc)
    return {
        "signal": exc.signum,
        "interrupted_at_step": exc.step,
        "checkpoint": _str(exc.checkpoint),
    }


def latest_session(output_dir: Path) -> dict | None:
    """The last session in run_info.json (None before training started)."""
    try:
        return json.loads((output_dir / RUN_INFO).read_text())["sessions"][-1]
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None


def _multirun() -> bool:
    return HydraConfig.get().mode == RunMode.MULTIRUN


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    first = lines[0] if lines else ""
    if isinstance(exc, ConfigError | Diverged | RunInterrupted | Pruned | CheckpointWriteFailed):
        return first  # neuralab's own messages already say what happened
    return f"{type(exc).__name__}: {first}".rstrip(": ")


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)
