"""One experiment's sweep dir as a table and a figure.

Rows are configurations (a job's overrides minus the seed, grouped by
neuralab.sweep.results), one column per swept key; each report.table column is a
results.csv column (a results.json summary metric, epochs, wall_time_s) or a derived
measure from neuralab.sweep.measures.MEASURES, computed per job dir; cells are
mean ± sample std: summary metrics over the jobs with status ok (as in results.md),
measures over every finished job that gives a number (a measure may be about failure).
The figure is report.curve per configuration, the mean over its seeds at each step.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml
from experiment_spec import ROOT, Experiment

from neuralab.errors import ConfigError
from neuralab.runtime.tags import EPOCHS_METRIC
from neuralab.sweep.plots import load_points
from neuralab.sweep.results import (
    MISSING,
    OK,
    Group,
    JobResult,
    collect,
    group_by_config,
    override_key,
)

try:  # engineer F's derived measures; without them only results.csv columns exist
    from neuralab.sweep.measures import MEASURES
except ImportError:
    MEASURES = {}

JOB_COLUMNS = ("epochs", "wall_time_s")  # results.csv columns that are not summary metrics
NOT_AXES = {"experiment", "seed"}
MAX_INSIDE_LEGEND = 8  # more curves than this: the legend goes beside the axes
HYDRA_CONF = ROOT / "conf" / "hydra" / "default.yaml"


def _not_learning() -> set[str]:
    """Overrides that change how a run looks, not what it learns (progress bar, paths):
    the keys job dir names leave out, read from the same place."""
    config = yaml.safe_load(HYDRA_CONF.read_text())
    return set(config["job"]["config"]["override_dirname"]["exclude_keys"])


@dataclass
class Row:
    axes: dict[str, str]  # swept key -> its value in this configuration
    group: Group
    values: dict[str, list[float]]  # table column -> one number per job that gave one

    @property
    def label(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.axes.items()) or "(one configuration)"

    @property
    def statuses(self) -> Counter:
        return Counter(job.status for job in self.group.jobs)

    def stats(self, column: str) -> tuple[float, float, int] | None:
        """(mean, sample std, n) of a table column; None when no job gave a number."""
        values = self.values.get(column, [])
        if not values:
            return None
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        return statistics.fmean(values), std, len(values)


@dataclass
class SweepTable:
    experiment: Experiment
    sweep_dir: Path
    jobs: list[JobResult]
    rows: list[Row]
    extra: list[str]  # overrides every job had beyond the experiment's own (a smoke run)


def check_columns(experiment: Experiment, jobs: list[JobResult]) -> None:
    """Every report.table column is a results.csv column or a measure."""
    metrics = {name for job in jobs for name in job.metrics}
    allowed = sorted(metrics | set(JOB_COLUMNS) | set(MEASURES))
    for column in experiment.table:
        if column not in allowed:
            note = "" if MEASURES else " (neuralab.sweep.measures is not there yet)"
            raise ConfigError(
                f"experiment {experiment.name}: report.table", column, f"one of: {allowed}{note}"
            )


def job_value(job: JobResult, column: str) -> float | None:
    """A summary metric counts only for a job that ended ok (as in results.md); a measure
    for every finished job, since it may be about failure itself (`diverged`)."""
    if column in MEASURES and column not in job.metrics and column not in JOB_COLUMNS:
        value = MEASURES[column](job.dir) if job.status != MISSING else None
    elif job.status != OK:
        value = None
    else:
        value = getattr(job, column) if column in JOB_COLUMNS else job.metrics.get(column)
    return float(value) if value is not None and math.isfinite(value) else None


def column_values(experiment: Experiment, group: Group) -> dict[str, list[float]]:
    values = {c: [job_value(job, c) for job in group.jobs] for c in experiment.table}
    return {c: [v for v in vs if v is not None] for c, vs in values.items()}


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
    check_columns(experiment, jobs)
    groups = group_by_config(jobs)
    axes = _axes(experiment, groups)
    rows = [Row(_axis_values(g, axes), g, column_values(experiment, g)) for g in groups]
    shared = set.intersection(*(set(g.config) for g in groups))
    ignored = NOT_AXES | _not_learning()
    extra = [o for o in groups[0].config if o in shared and override_key(o) not in ignored]
    return SweepTable(experiment, Path(sweep_dir), jobs, rows, extra)


def resolve_tag(experiment: Experiment, tags: set[str]) -> str:
    """report.curve itself, or else the first tag it is a prefix of, in sorted order
    (`grad_norm/layer00_` -> the first layer's tag, whatever the net names it)."""
    curve = experiment.curve
    found = sorted(t for t in tags if t.startswith(curve))
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
        epoch_of.update({step: int(e) for step, e in job_points.get(EPOCHS_METRIC, [])})
    lines = [
        (row.label, *_mean_curve([points[j.dir].get(tag, []) for j in row.group.jobs]))
        for row in table.rows
    ]
    if all(x in epoch_of for _, xs, _ in lines for x in xs):
        return tag, "epoch", [(name, [epoch_of[x] for x in xs], ys) for name, xs, ys in lines]
    return tag, "optimizer step", lines


def _short(value: str) -> str:
    """`[32,32,32,32]` -> `[32]*4` in legends; anything else as it is."""
    items = value.strip("[]").split(",")
    if value.startswith("[") and len(items) > 2 and len(set(items)) == 1:
        return f"[{items[0]}]*{len(items)}"
    return value


def _y_scale(ax: object, lines: list[tuple[str, list[float], list[float]]]) -> None:
    """Log scale when positive values span more than 100x (a diverging loss, grad norms),
    symmetric-log when zeros are among them (a zero-init net's gradient)."""
    ys = [y for _, _, line in lines for y in line]
    positive = [y for y in ys if y > 0]
    if not positive or min(ys) < 0 or max(positive) / min(positive) <= 100:
        return
    if len(positive) == len(ys):
        ax.set_yscale("log")
    else:
        ax.set_yscale("symlog", linthresh=min(positive))
        ax.set_ylim(bottom=0)  # nothing is negative: no mirrored ticks below zero


def write_figure(table: SweepTable, path: Path) -> Path:
    """report.curve per configuration (mean over seeds): a 600x400 PNG, Agg canvas.
    Legend entries are the swept values; the legend's title names the keys."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    tag, xlabel, lines = curves(table)
    fig = Figure(figsize=(6, 4), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    cmap = colormaps["tab10" if len(lines) <= 10 else "tab20"]
    for i, (row, (_, xs, ys)) in enumerate(zip(table.rows, lines, strict=True)):
        name = " ".join(_short(v) for v in row.axes.values()) or row.label
        style = {"color": cmap(i % cmap.N), "linestyle": ("-", "--", ":")[i // cmap.N % 3]}
        ax.plot(xs, ys, marker="." if len(xs) < 30 else None, label=name, **style)
    ax.set(xlabel=xlabel, ylabel=tag)
    ax.set_title(table.experiment.title, fontsize="medium")
    _y_scale(ax, lines)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    keys = ", ".join(table.rows[0].axes) or None
    if len(lines) <= MAX_INSIDE_LEGEND:
        ax.legend(fontsize="x-small", title=keys, title_fontsize="x-small")
    else:  # beside the axes, so that no curve hides behind it
        fig.legend(
            loc="outside right upper", fontsize="xx-small", title=keys, title_fontsize="xx-small"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path
