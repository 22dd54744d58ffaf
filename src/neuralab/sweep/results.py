"""The results table of a sweep, rebuilt from its job dirs.

A job dir is a direct child of the sweep dir holding `.hydra/`. Its row comes
from its `results.json` (status, summary metrics, epochs, wall time, best
checkpoint) and its overrides from `.hydra/overrides.yaml`, which Hydra writes
before the job starts, so a job killed hard still has a row: status `missing`
(no results.json: killed, still running, or crashed before writing one).

Configurations are the overrides minus `seed=...` (and resume/ckpt_path); when
one appears with two or more seeds, results.md adds a table of `mean ± std (n)`
per metric over its jobs with status `ok` (sample std, n = those jobs).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import yaml

from neuralab.runtime.run_dirs import RESUME_KEYS
from neuralab.sweep.markdown import to_markdown

T = TypeVar("T")

MISSING = "missing"
OK = "ok"
RESULTS_CSV, RESULTS_MD = "results.csv", "results.md"
TRIALS_CSV = "trials.csv"  # an Optuna sweep's trial table (sweep/optuna_report.py)
SEED_KEY = "seed"
NOT_CONFIG_KEYS = RESUME_KEYS | {SEED_KEY}
# The C loader when PyYAML has it: the table is rebuilt after every job of a sweep.
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Metric columns in this order of prefixes, then by name.
METRIC_ORDER = ("best_val_", "final_val_", "test_", "final_train_")
JOB_NUM = re.compile(r"^(\d+)(?:_|$)")


@dataclass
class JobResult:
    """One row of the table: what a job dir says about its run."""

    dir: Path
    num: int | None
    overrides: list[str]
    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    epochs: int | None = None
    wall_time_s: float | None = None
    checkpoint: str | None = None
    error: str | None = None
    trial_state: str | None = None  # Optuna sweeps: the state and value of this job's trial
    trial_value: float | None = None

    @property
    def config(self) -> tuple[str, ...]:
        """The configuration this job is a seed of: its overrides without the seed
        (nor resume=true, which a resumed sweep adds to the jobs it continues)."""
        return tuple(o for o in self.overrides if override_key(o) not in NOT_CONFIG_KEYS)

    @property
    def seed(self) -> str | None:
        return next(
            (o.partition("=")[2] for o in self.overrides if override_key(o) == SEED_KEY), None
        )


@dataclass
class Group:
    """The jobs of one configuration (its seeds)."""

    config: tuple[str, ...]
    jobs: list[JobResult]

    def stats(self, metric: str) -> tuple[float, float, int] | None:
        """(mean, sample std, n) of `metric` over the jobs with status ok; None if none has it."""
        values = [
            j.metrics[metric]
            for j in self.jobs
            if j.status == OK and math.isfinite(j.metrics.get(metric, math.nan))
        ]
        if not values:
            return None
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        return statistics.fmean(values), std, len(values)


def override_key(override: str) -> str:
    """`++model.activation=tanh` -> `model.activation`."""
    return override.partition("=")[0].lstrip("+~")


def job_dirs(sweep_dir: Path) -> list[Path]:
    """The job dirs of a sweep in launch order (by job number, then name)."""
    dirs = [p for p in Path(sweep_dir).iterdir() if (p / ".hydra").is_dir()]
    return sorted(dirs, key=lambda p: (_job_num(p) is None, _job_num(p) or 0, p.name))


def _job_num(job_dir: Path) -> int | None:
    match = JOB_NUM.match(job_dir.name)
    return int(match.group(1)) if match else None


class _Parsed:
    """Files parsed again only when they change (inode, mtime, size): a sweep's tables
    are rebuilt from every job dir after every job, so without this a sweep of n jobs
    parses n * n files (64 jobs: 1.5 s)."""

    def __init__(self) -> None:
        self.entries: dict[Path, tuple[tuple, object]] = {}

    def __call__(self, path: Path, parse: Callable[[str], T]) -> T:
        """`parse` of the file's text (shared: not to be changed); OSError if unreadable."""
        stat = path.stat()
        stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        hit = self.entries.get(path)
        if hit is None or hit[0] != stamp:
            if len(self.entries) > 100_000:  # a long-lived process (tests): bounded
                self.entries.clear()
            hit = self.entries[path] = (stamp, parse(path.read_text()))
        return hit[1]


parsed = _Parsed()


def _read_overrides(job_dir: Path, results: dict) -> list[str]:
    try:
        overrides = parsed(
            job_dir / ".hydra" / "overrides.yaml", lambda text: yaml.load(text, YAML_LOADER)
        )
    except (OSError, yaml.YAMLError):
        overrides = None
    if not isinstance(overrides, list):
        overrides = results.get("overrides") or []
    return [str(o) for o in overrides]


def read_results(job_dir: Path) -> tuple[dict, str | None]:
    """results.json as a dict (empty if absent or unreadable; shared: not to be
    changed), and why it is unusable."""
    path = job_dir / "results.json"
    if not path.is_file():
        return {}, None
    try:
        results = parsed(path, json.loads)
    except (OSError, ValueError) as exc:
        return {}, f"unreadable results.json: {exc}"
    return (results, None) if isinstance(results, dict) else ({}, "results.json is not an object")


def _numbers(metrics: object) -> dict[str, float]:
    """Numeric entries only: a partial or odd results.json never breaks the table."""
    if not isinstance(metrics, dict):
        return {}
    out = {}
    for name, value in metrics.items():
        try:
            out[str(name)] = float(value)
        except (TypeError, ValueError):
            continue
    return out


def _relative(path: object, sweep_dir: Path) -> str | None:
    """A checkpoint path relative to the sweep dir when inside it (sweeps get moved)."""
    if not path:
        return None
    try:
        return str(Path(str(path)).resolve().relative_to(Path(sweep_dir).resolve()))
    except ValueError:
        return str(path)


def _optional(cast: Callable[[object], T], value: object) -> T | None:
    try:
        return None if value is None else cast(value)
    except (TypeError, ValueError):
        return None


def read_job(job_dir: Path, sweep_dir: Path) -> JobResult:
    """The row of one job dir, whatever state the job ended in."""
    results, problem = read_results(job_dir)
    status = str(results.get("status", OK)) if results else MISSING
    return JobResult(
        dir=job_dir,
        num=_job_num(job_dir),
        overrides=_read_overrides(job_dir, results),
        status=status,
        metrics=_numbers(results.get("metrics")),
        epochs=_optional(int, results.get("epochs")),
        wall_time_s=_optional(float, results.get("wall_time_s")),
        checkpoint=_relative(results.get("best_checkpoint", results.get("checkpoint")), sweep_dir),
        error=problem or _optional(str, results.get("error")),
    )


def collect(sweep_dir: Path) -> list[JobResult]:
    """Every job of a sweep, in launch order."""
    jobs = [read_job(d, Path(sweep_dir)) for d in job_dirs(Path(sweep_dir))]
    trials = read_trials(Path(sweep_dir))
    for job in jobs:
        job.trial_state, job.trial_value = trials.get(job.num, (None, None))
    return jobs


def read_trials(sweep_dir: Path) -> dict[int | None, tuple[str, float | None]]:
    """{trial number: (state, value)} from an Optuna sweep's trials.csv; {} without one.
    The Optuna sweeper makes each job's number its trial's number."""
    try:
        with (sweep_dir / TRIALS_CSV).open(newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, csv.Error):
        return {}
    trials = {}
    for row in rows:
        value = _optional(float, row.get("value") or None)
        trials[_optional(int, row.get("number"))] = (row.get("state") or "", value)
    return trials


def group_by_config(jobs: Iterable[JobResult]) -> list[Group]:
    """Jobs grouped by overrides minus seed, in order of first appearance."""
    groups: dict[tuple[str, ...], Group] = {}
    for job in jobs:
        key = tuple(sorted(job.config))
        groups.setdefault(key, Group(job.config, []))
        groups[key].jobs.append(job)
    return list(groups.values())


def common_overrides(jobs: list[JobResult]) -> list[str]:
    """Overrides every job has (in the first job's order): stated once, not per row."""
    if len(jobs) < 2:
        return []
    shared = set.intersection(*(set(job.overrides) for job in jobs))
    return [o for o in jobs[0].overrides if o in shared]


def label(overrides: Iterable[str], common: Iterable[str], empty: str = "(common)") -> str:
    """What sets a job or configuration apart, as on the command line."""
    common = set(common)
    shown = [o for o in overrides if o not in common]
    return " ".join(shown) or empty


def metric_names(jobs: Iterable[JobResult]) -> list[str]:
    """Every metric any job has, best/final val first, then test, then train."""
    names = {name for job in jobs for name in job.metrics}

    def rank(name: str) -> tuple[int, str]:
        prefix = next((i for i, p in enumerate(METRIC_ORDER) if name.startswith(p)), None)
        return (len(METRIC_ORDER) if prefix is None else prefix, name)

    return sorted(names, key=rank)


def write_atomic(path: Path, text: str) -> None:
    """Readers never see half a file, and jobs finishing together never mix their writes."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def to_csv(jobs: list[JobResult]) -> str:
    """One row per job, flat columns; overrides joined by spaces as on the command line."""
    metrics = metric_names(jobs)
    trials = ["trial_state", "trial_value"] if any(job.trial_state for job in jobs) else []
    columns = ["job", "dir", "overrides", "status", *trials, *metrics]
    columns += ["epochs", "wall_time_s", "checkpoint", "error"]
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    for job in jobs:
        row = {
            "job": job.num,
            "dir": job.dir.name,
            "overrides": " ".join(job.overrides),
            "status": job.status,
            "epochs": job.epochs,
            "wall_time_s": job.wall_time_s,
            "checkpoint": job.checkpoint,
            "error": job.error,
        }
        if trials:
            row.update(trial_state=job.trial_state, trial_value=job.trial_value)
        writer.writerow({**row, **{m: job.metrics.get(m) for m in metrics}})
    return out.getvalue()


def write_results(sweep_dir: Path, jobs: list[JobResult] | None = None) -> tuple[Path, Path]:
    """results.csv and results.md in the sweep dir; returns their paths."""
    sweep_dir = Path(sweep_dir)
    jobs = collect(sweep_dir) if jobs is None else jobs
    csv_path, md_path = sweep_dir / RESULTS_CSV, sweep_dir / RESULTS_MD
    write_atomic(csv_path, to_csv(jobs))
    groups, metrics = group_by_config(jobs), metric_names(jobs)
    write_atomic(
        md_path, to_markdown(sweep_dir.name, jobs, groups, metrics, common_overrides(jobs))
    )
    return csv_path, md_path
