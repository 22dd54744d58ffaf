"""The Hydra callback that keeps a sweep's results.csv, results.md and HParams summary
current, and prints one line per finished job.

A Hydra callback (conf/hydra/default.yaml, `hydra.callbacks`) rather than code
in train.py, so it runs with any launcher and sweeper. The tables and the HParams
experiment summary (runtime/hparams_tab.py: the hparams that vary across the jobs
first, with their values) are rebuilt from the job dirs after each job and once more
when the multirun ends: a sweep that stops early (Ctrl-C, a job that raises) still
leaves them for what ran. Writing them never fails the sweep: a problem is logged and
the sweep goes on. Jobs that end together (a pack's members: pack/launch.py) end inside
`tables_once()`, which rebuilds the tables once, when the last of them has ended
(a 64-member pack rewrote its growing tables 64 times: ~1.5 s).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from neuralab.runtime.run_dirs import read_status
from neuralab.sweep.naming import sweep_keys
from neuralab.sweep.results import job_dirs, override_key, read_results, write_results

log = logging.getLogger(__name__)


def sweep_dir_of(config: DictConfig) -> Path:
    """`hydra.sweep.dir` as an absolute path (it is relative to where Hydra started)."""
    sweep_dir = Path(str(config.hydra.sweep.dir))
    if sweep_dir.is_absolute():
        return sweep_dir
    return Path(str(config.hydra.runtime.cwd)) / sweep_dir


# The config of the last job that ended inside tables_once(), whose write is held back.
_held: list[DictConfig | None] = []


@contextlib.contextmanager
def tables_once() -> Iterator[None]:
    """The job ends inside write the sweep's tables once, as the block exits (raising
    or not)."""
    _held.append(None)
    try:
        yield
    finally:
        config = _held.pop()
        if config is not None:
            SweepResults._write(config)


class SweepResults(Callback):
    """results.csv and results.md in the sweep dir, after every job and at the end."""

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode == RunMode.MULTIRUN:
            if _held:
                _held[-1] = config
            else:
                self._write(config)
            log.info("%s", job_line(config))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        csv_path = self._write(config)
        if csv_path is not None:
            log.info("sweep results: %s", csv_path)

    @staticmethod
    def _write(config: DictConfig) -> Path | None:
        try:
            sweep_dir = sweep_dir_of(config)
            if not sweep_dir.is_dir():  # a sweep with no jobs launched
                return None
            csv_path = write_results(sweep_dir)[0]
            write_hparams_summary(sweep_dir, _objective(config))
            return csv_path
        except Exception as exc:  # the table is a convenience; the sweep's runs matter more
            log.warning("could not write the results table of the sweep: %s", exc)
            return None


def _objective(config: DictConfig) -> str | None:
    from neuralab.runtime.summary import objective_name  # imports torch: not at start-up

    metric = OmegaConf.select(config, "monitor.metric", default=None)
    return objective_name(str(metric)) if metric else None


def write_hparams_summary(sweep_dir: Path, objective: str | None) -> Path | None:
    """The sweep's HParams experiment summary from its jobs' results.json (jobs that
    ended ok: the others have no HParams row)."""
    # Imported here: Hydra loads this callback at start-up, before any check, and the
    # summary writer pulls in lightning (seconds): a refused command must not wait for it.
    from neuralab.runtime.hparams_tab import sweep_experiment, write_sweep

    jobs = []
    for job_dir in job_dirs(sweep_dir):
        results = read_results(job_dir)[0]
        if isinstance(results.get("hparams"), dict):
            jobs.append((results["hparams"], results.get("metric_tags") or {}))
    return write_sweep(sweep_dir, sweep_experiment(jobs, objective)) if jobs else None


def job_line(config: DictConfig) -> str:
    """`job 3 model=mlp optimizer=adam: ok, best_val_loss=0.1234`: one line a job, so
    a user can follow a sweep in its console or log."""
    job_dir = Path(str(config.hydra.runtime.output_dir))
    results = read_status(job_dir) or {}
    varying = sweep_keys(str(sweep_dir_of(config)))  # as in its dir name: what differs
    task = [str(o) for o in config.hydra.overrides.task]
    overrides = " ".join(o for o in task if varying is None or override_key(o) in varying)
    status = results.get("status", "missing")
    objective = _objective(config)
    value = (results.get("metrics") or {}).get(objective) if objective else None
    shown = f", {objective}={value:.4g}" if isinstance(value, int | float) else ""
    return f"job {config.hydra.job.num} {overrides}: {status}{shown}"
