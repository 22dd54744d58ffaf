"""What both entry points do around the work: resolvers, seeding, bad-input exits."""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig

from neuralab.errors import ConfigError
from neuralab.runtime.console import quiet_lightning
from neuralab.runtime.run_guard import refuse

log = logging.getLogger("neuralab")
E = TypeVar("E", bound=BaseException)

# Warnings that do not apply to how neuralab logs: metrics are reduced across ranks
# by hand (sync_dist would average twice) and nothing is logged per step.
KNOWN_NOISE = (
    r".*sync_dist=True.*when logging on epoch level in distributed setting.*",
    r".*is smaller than the logging interval.*",
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",
)


def quiet_known_warnings() -> None:
    for pattern in KNOWN_NOISE:
        warnings.filterwarnings("ignore", message=pattern)
    quiet_lightning()  # and Lightning's tips, device lines, per-job repeats (console.py)


def log_files_on_rank_zero_only() -> None:
    """Ranks > 0 of subprocess DDP (trainer=ddp) and of a SLURM job re-run the command into
    the same run dir: only rank 0 writes the run's log file (rank_zero_only.rank comes
    from the environment the launcher set: LOCAL_RANK, RANK, SLURM_PROCID)."""
    if rank_zero_only.rank == 0:
        return
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, logging.FileHandler)]:
        root.removeHandler(handler)
        handler.close()


def report_config_errors(
    task: Callable[[DictConfig], float | None],
) -> Callable[[DictConfig], float | None]:
    """Turn a ConfigError into one line on stderr and exit status 2 (no traceback)."""

    def wrapped(cfg: DictConfig) -> float | None:
        quiet_known_warnings()
        try:
            return task(cfg)
        except Exception as exc:
            # Hydra's instantiate wraps errors raised in __init__ (InstantiationException
            # from the ConfigError): unwrap them so they read the same as the others.
            err = find_config_error(exc)
            if err is None:
                raise
            refuse(err)  # one line, exit 2; the run dir this command made is removed

    wrapped.__name__ = task.__name__
    return wrapped


def find_config_error(exc: BaseException | None) -> ConfigError | None:
    """`exc` itself or the ConfigError it was raised from, if any."""
    while exc is not None:
        if isinstance(exc, ConfigError):
            return exc
        exc = exc.__cause__
    return None


def find_cause(exc: BaseException | None, kind: type[E]) -> E | None:
    """`exc` itself or the `kind` of exception it was raised from (or during), if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kind):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


@rank_zero_only
def write_json(path: Path, payload: dict) -> None:
    """Write atomically: a reader never sees half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str))
    tmp.replace(path)
