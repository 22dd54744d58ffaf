"""The exit status of a multirun: non-zero only if no job ended `ok`.

neuralab-train catches a job's failure (runtime/job.py) so the sweep goes on, which also
means Hydra sees every job as completed. This callback reads the jobs' results.json at
the end, logs one line per status, and exits 1 when every job failed or diverged.

It must be the first entry of `hydra.callbacks`: Hydra calls `on_multirun_end` in
reverse order, so the first entry runs last, after the results table is written, and
its SystemExit then skips nothing.
"""

from __future__ import annotations

import logging
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from neuralab.runtime.run_dirs import OK, read_status
from neuralab.sweep.results import job_dirs

log = logging.getLogger("neuralab")
MISSING = "missing"  # no results.json: killed hard, or crashed before writing one


class SweepStatus(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        jobs = job_results(_sweep_dir(config))
        if not jobs:
            return
        counts = Counter(str(r.get("status", MISSING)) for r in jobs.values())
        summary = ", ".join(f"{n} {status}" for status, n in counts.items())
        log.info("sweep: %d jobs: %s", len(jobs), summary)
        for job, results in jobs.items():
            if results.get("status") != OK:
                status = results.get("status", MISSING)
                log.warning("job %s: %s (%s)", job, status, results.get("error", "no results.json"))
        if counts[OK] == 0:
            log.error("no job of the sweep ended ok")
            sys.exit(1)


def job_results(sweep_dir: Path) -> dict[str, dict]:
    """{job dir name: its results.json ({} if none)} for every job dir of the sweep."""
    if not sweep_dir.is_dir():
        return {}
    return {p.name: read_status(p) or {} for p in job_dirs(sweep_dir)}


def _sweep_dir(config: DictConfig) -> Path:
    sweep_dir = Path(str(config.hydra.sweep.dir))
    return sweep_dir if sweep_dir.is_absolute() else Path(str(config.hydra.runtime.cwd)) / sweep_dir
