"""The Hydra callback that keeps a sweep's results.csv and results.md current.

A Hydra callback (conf/hydra/default.yaml, `hydra.callbacks`) rather than code
in train.py, so it runs with any launcher and sweeper. The tables are rebuilt
from the job dirs after each job and once more when the multirun ends: a sweep
that stops early (Ctrl-C, a job that raises) still leaves a table of what ran.
Writing them never fails the sweep: a problem is logged and the sweep goes on.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from neuralab.sweep.results import write_results

log = logging.getLogger(__name__)


def sweep_dir_of(config: DictConfig) -> Path:
    """`hydra.sweep.dir` as an absolute path (it is relative to where Hydra started)."""
    sweep_dir = Path(str(config.hydra.sweep.dir))
    if sweep_dir.is_absolute():
        return sweep_dir
    return Path(str(config.hydra.runtime.cwd)) / sweep_dir


class SweepResults(Callback):
    """results.csv and results.md in the sweep dir, after every job and at the end."""

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode == RunMode.MULTIRUN:
            self._write(config)

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
            return write_results(sweep_dir)[0]
        except Exception as exc:  # the table is a convenience; the sweep's runs matter more
            log.warning("could not write the results table of the sweep: %s", exc)
            return None
