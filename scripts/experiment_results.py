"""One experiment's sweep dir as a table and a figure.

Rows are configurations (a job's overrides minus the seed, grouped by
neuralab.sweep.results), one column per swept key; each report.table column is a
results.csv column (a results.json summary metric, epochs, wall_time_s) or a derived
measure from neuralab.sweep.measures.MEASURES, computed per job dir; cells are
mean ± sample std over the jobs with status ok. The figure is report.curve per
configuration, the mean over its seeds at each logged step.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from experiment_spec import Experiment

from neuralab.errors import ConfigError
from neuralab.sweep.plots import load_points
from neuralab.sweep.results import OK, Group, JobResult, collect, group_by_config, override_key

try:  # engineer F's derived measures; without them only results.csv columns exist
    from neuralab.sweep.measures import MEASURES
except ImportError:
    MEASURES = {}

JOB_COLUMNS = ("epochs", "wall_time_s")  # results.csv columns that are not summary metrics
NOT_AXES = {"experiment", "seed"}


@dataclass
class Row:
    axes: dict[str, str]  # swept key -> its value in this configuration
    group: Group

    @property
    def label(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.axes.items()) or "(one configuration)"

    @property
    def statuses(self) -> Counter:
        return Counter(job.status for job in self.group.jobs)


@dataclass
class SweepTable:
    experiment: Experiment
    sweep_dir: Path
    jobs: list[JobResult]
    rows: list[Row]
    extra: list[str]  # overrides every job had beyond the experiment's own (a smoke run)


def _allowed(jobs: list[JobResult]) -> list[str]:
    metrics = {name for job in jobs for name in job.metrics}
    return sorted(metrics | set(JOB_COLUMNS) | set(MEASURES))


def fill_columns(experiment: Experiment, jobs: list[JobResult]) -> None:
    """Put every report.table column into each ok job's metrics (measures computed here)."""
    allowed = _allowed(jobs)
    for column in experiment.table:
        if column not in allowed:
            note = "" if MEASURES else " (neuralab.sweep.measures is not there yet)"
            raise ConfigError(
                f"experiment {experiment.name}: report.table", column, f"one of: {allowed}{note}"
            )
    for job in (j for j in jobs if j.status == OK):
        for column in experiment.table:
            if column in job.metrics:
                continue
            value = getattr(job, column) if column in JOB_COLUMNS else MEASURES[column](job.dir)
            if value is not None:
                job.metrics[column] = float(value)


def _axes(experiment: Experiment, groups: list[Group]) -> list[str]:
    """The experiment's swept keys, then any other key whose value differs between rows."""
    values: dict[str, set[str]] = {}
    for group in groups:
        for override in group.config:
            values.setdefault(override_key(override), set()).add(override.partition("=")[2])
    varying = [k for k, v in values.items() if len(v) > 1 and k not in experiment.axes]
    return [k for k in experiment.axes + varying if k not in NOT_AXES]


def _axis_values(group: Group, axes: list[str]) -> dict[str, str]:
    found = {override_key(o): o.partition("=")[2] for o in group.config}
    return {axis: found.get(axis, "(default)") for axis in axes}


def build(experiment: Experiment, sweep_dir: Path) -> SweepTable:
    """The table of a finished (or partly finished) sweep dir."""
    jobs = collect(sweep_dir)
    if not jobs:
        raise ConfigError(
            f"experiment {experiment.name}: sweep dir", str(sweep_dir), "job dirs (.hydra/)"
        )
    fill_columns(experiment, jobs)
    groups = group_by_config(jobs)
    axes = _axes(experiment, groups)
    rows = [Row(_axis_values(g, axes), g) for g in groups]
    shared = set.intersection(*(set(g.config) for g in groups))
    extra = [o for o in groups[0].config if o in shared and override_key(o) not in NOT_AXES]
    return SweepTable(experiment, Path(sweep_dir), jobs, rows, extra)


def resolve_tag(experiment: Experiment, tags: set[str]) -> str:
    """report.curve itself, or for a prefix ending in "/" the first such tag, sorted."""
    curve = experiment.curve
    found = sorted(t for t in tags if t.startswith(curve)) if curve.endswith("/") else []
    if curve in tags or found:
        return curve if curve in tags else found[0]
    raise ConfigError(
        f"experiment {experiment.name}: report.curve", curve, f"a scalar tag: {sorted(tags)}"
    )


def _mean_curve(points_per_job: list[list[tuple[int, float]]]) -> tuple[list[int], list[float]]:
    """Mean over seeds at each step; non-finite values (a diverged seed) are left out."""
    by_step: dict[int, list[float]] = {}
    for points in points_per_job:
        for step, value in points:
            if math.isfinite(value):
                by_step.setdefault(step, []).append(value)
    steps = sorted(by_step)
    return steps, [sum(by_step[s]) / len(by_step[s]) for s in steps]


def curves(table: SweepTable) -> tuple[str, str, list[tuple[str, list[float], list[float]]]]:
    """(tag, x label, [(row label, xs, mean ys)]): x is the epoch when every point of the
    tag falls on an epoch's logged step, else the optimizer step."""
    points = {job.dir: load_points(job.dir) for job in table.jobs}
    tag = resolve_tag(table.experiment, {t for p in points.values() for t in p})
    epoch_of = {}
    for job_points in points.values():
        epoch_of.update({step: int(e) + 1 for step, e in job_points.get("epoch", [])})
    lines = [(row.label, *_mean_curve([points[j.dir].get(tag, []) for j in row.group.jobs]))
             for row in table.rows]
    if all(x in epoch_of for _, xs, _ in lines for x in xs):
        return tag, "epoch", [(name, [epoch_of[x] for x in xs], ys) for name, xs, ys in lines]
    return tag, "optimizer step", lines


def write_figure(table: SweepTable, path: Path) -> Path:
    """report.curve per configuration (mean over seeds): a ~600x400 PNG, Agg canvas."""
    from matplotlib.figure import Figure

    tag, xlabel, lines = curves(table)
    fig = Figure(figsize=(6, 4), dpi=100)
    ax = fig.add_subplot()
    for name, xs, ys in lines:
        ax.plot(xs, ys, marker="." if len(xs) < 30 else None, label=name)
    ax.set(xlabel=xlabel, ylabel=tag, title=f"{table.experiment.title}: {tag}")
    ax.title.set_fontsize("medium")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path
