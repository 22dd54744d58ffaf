"""One session of an Optuna search, driven by the Hydra sweeper in
src/hydra_plugins/neuralab_optuna_sweeper/: continue the trials a stopped session left
running, then ask the study for batches of `n_jobs` trials, launch each batch as Hydra jobs
and tell the study how each job ended, until the study holds `n_trials` trials (or every
grid point has one). trials.csv and best_params.yaml are rewritten after every batch.

The job number is the trial number, so job dirs (`<num>_<overrides>`) never collide when a
stopped search is resumed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus

from neuralab.runtime.run_dirs import FAILED, OK, read_status
from neuralab.sweep import optuna_pruning, optuna_study
from neuralab.sweep.optuna_report import write_reports
from neuralab.sweep.optuna_space import SearchSpace, SearchSpaceError, parse_space

log = logging.getLogger(__name__)
# Hydra's Launcher.launch(job_overrides, initial_job_idx) -> one JobReturn per job
Launch = Callable[[list[list[str]], int], list[JobReturn]]


def checked_space(
    settings: dict, arguments: list[str], parser: OverridesParser, monitor_mode: str | None
) -> SearchSpace:
    """The search space; SearchSpaceError with every bad setting and entry at once.
    Fills in `settings["direction"]` when it is null (from the task's monitor.mode)."""
    settings["direction"] = optuna_study.direction(settings["direction"], monitor_mode)
    errors = optuna_study.check_settings(settings)
    grid = settings["sampler"]["name"] == "grid"
    try:
        space = parse_space(settings["params"], arguments, parser, grid)
    except SearchSpaceError as exc:
        errors += exc.errors
    if errors:
        raise SearchSpaceError(errors)
    return space


class Search:
    def __init__(
        self,
        study: optuna.Study,
        space: SearchSpace,
        settings: Mapping[str, Any],
        sweep_dir: Path,
        metric: str | None,
    ):
        self.study, self.space, self.settings = study, space, settings
        self.sweep_dir, self.metric = sweep_dir, metric
        grid = settings["sampler"]["name"] == "grid"
        self.grid = space.grid_points() if grid else None
        self.leftovers = optuna_study.left_running(study)
        if self.leftovers:
            numbers = ", ".join(str(t.number) for t in self.leftovers)
            log.info("continuing trial(s) %s, left running by a stopped session", numbers)
        done = optuna_study.started(study) - len(self.leftovers)
        log.info("study %r: %d of %d trials done", study.study_name, done, settings["n_trials"])

    def run(self, launch: Launch, in_process: bool) -> list[list[JobReturn]]:
        """Every batch; `in_process`: jobs run in this process (pruning can reach them)."""
        returns = []
        try:
            while batch := self._next_batch():
                returns.append(self._run_batch(batch, launch, in_process))
        finally:  # also when a job stops the sweep (Ctrl-C, fail_fast)
            write_reports(self.sweep_dir, self.study, self.space, self.metric)
        return returns

    def _next_batch(self) -> list[optuna.Trial]:
        n_jobs = self.settings["n_jobs"]
        if self.leftovers:
            batch, self.leftovers = self.leftovers[:n_jobs], self.leftovers[n_jobs:]
            return batch
        size = min(n_jobs, self.settings["n_trials"] - optuna_study.started(self.study))
        if size <= 0:
            return []
        distributions = self.space.distributions()
        if self.grid is not None:
            return optuna_study.grid_batch(self.study, distributions, self.grid, size)
        return optuna_study.ask_batch(self.study, distributions, size)

    def _run_batch(self, batch: list, launch: Launch, in_process: bool) -> list[JobReturn]:
        with optuna_pruning.trials_in_process({t.number: t for t in batch} if in_process else {}):
            results = self._launch(batch, launch)
        for trial, ret in zip(batch, results, strict=True):
            status, value, attrs = job_outcome(ret)
            frozen = optuna_study.tell(self.study, trial, status, value, attrs)
            _log_trial(frozen, optuna_study.best(self.study))
        write_reports(self.sweep_dir, self.study, self.space, self.metric)
        return results

    def _launch(self, batch: list[optuna.Trial], launch: Launch) -> list[JobReturn]:
        """One launcher call per run of consecutive trial numbers: job number = trial number."""
        results: list[JobReturn] = []
        start = 0
        for end in range(1, len(batch) + 1):
            if end == len(batch) or batch[end].number != batch[end - 1].number + 1:
                overrides = [self.space.overrides(t.params) for t in batch[start:end]]
                results.extend(launch(overrides, batch[start].number))
                start = end
        return results


def job_outcome(ret: JobReturn) -> tuple[str, Any, dict]:
    """(the job's status, its return value, attributes for its trial) of a finished job:
    the status from its results.json, or from its return value for a task that has none."""
    job_dir = Path(str(ret.hydra_cfg.hydra.runtime.output_dir))
    attrs = {"job_dir": job_dir.name}
    if ret.status == JobStatus.FAILED:  # the task raised past neuralab's own handling
        try:
            ret.return_value  # noqa: B018 (re-raises the job's exception)
        except Exception as exc:
            attrs["error"] = f"{type(exc).__name__}: {exc}"
        return FAILED, None, attrs
    results = read_status(job_dir) or {}
    value = ret.return_value
    finite = isinstance(value, int | float) and math.isfinite(value)
    if results.get("error"):
        attrs["error"] = str(results["error"])
    return str(results.get("status") or (OK if finite else FAILED)), value, attrs


def _log_trial(trial: optuna.trial.FrozenTrial, best: optuna.trial.FrozenTrial | None) -> None:
    value = "" if trial.value is None else f" {trial.value:.6g}"
    best_text = "none yet" if best is None else f"{best.value:.6g} (trial {best.number})"
    job_dir = trial.user_attrs.get("job_dir", "")
    log.info(
        "trial %d %s%s [%s]; best %s", trial.number, trial.state.name, value, job_dir, best_text
    )
