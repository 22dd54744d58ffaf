"""PNG plots of a sweep: each job's validation curve, and best val and test per configuration.

Curves are read from each job's TensorBoard event files (so a job that never
wrote results.json still shows how far it got); the per-configuration values come
from results.json through the results table, mean ± sample std over the seeds of a
configuration (no error bar from one seed), on an axis that spans them (not from 0).
Jobs of one configuration share a colour. matplotlib is imported here only,
drawing on Figure objects (the Agg canvas), never through pyplot's global state.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from neuralab.errors import ConfigError
from neuralab.runtime.tags import metric_name
from neuralab.sweep.results import JobResult, common_overrides, group_by_config, label

if TYPE_CHECKING:  # matplotlib is imported only when plotting
    from matplotlib.figure import Figure

DEFAULT_METRICS = ("val/acc", "val/loss")  # classification first; regression has no acc
STAGES = ("train", "val")  # stages with a curve per epoch and a final_<stage>_<name> summary


def load_curves(job_dir: Path) -> dict[str, list[float]]:
    """Scalar tag -> values in step order, from every event file in the job dir."""
    return {tag: [v for _, v in points] for tag, points in load_points(job_dir).items()}


def load_points(job_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Metric name -> (step, value) pairs in step order, from every event file in the job
    dir; TensorBoard's tags are read back as the metrics' names (`curves/val/acc` ->
    `val/acc`, `diagnostics/grad_norm/...` -> `grad_norm/...`: runtime/tags.py)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    others = ("images", "audio", "histograms", "compressedHistograms", "tensors")
    events = EventAccumulator(
        str(job_dir), size_guidance={"scalars": 0, **dict.fromkeys(others, 1)}
    )
    # A run's fit and test phases each log a graph; tensorboard warns about every one.
    tb_log = logging.getLogger("tensorboard")
    level = tb_log.level
    tb_log.setLevel(logging.ERROR)
    try:
        events.Reload()
    finally:
        tb_log.setLevel(level)
    return {
        metric_name(tag): [(e.step, e.value) for e in events.Scalars(tag)]
        for tag in events.Tags()["scalars"]
    }


def summary_keys(metric: str) -> list[str]:
    """`val/acc` -> the results.json values the bars show: `best_val_acc`, `test_acc`."""
    name = metric.partition("/")[2]
    return [f"best_val_{name}", f"test_{name}"]


def choose_metric(requested: str | None, curves: dict[Path, dict[str, list[float]]]) -> str:
    """The metric to plot: the one asked for if any job has it, else val/acc or val/loss."""
    tags = {tag for job_curves in curves.values() for tag in job_curves}
    if requested is None:
        return next((m for m in DEFAULT_METRICS if m in tags), DEFAULT_METRICS[-1])
    stage, _, name = requested.partition("/")
    if stage not in STAGES or not name or requested not in tags:
        allowed = sorted(t for t in tags if t.partition("/")[0] in STAGES) or list(DEFAULT_METRICS)
        raise ConfigError("--metric", requested, allowed)
    return requested


def _colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path


def plot_curves(
    jobs: list[JobResult], curves: dict[Path, dict[str, list[float]]], metric: str, path: Path
) -> Path:
    """One line per job (x: validation epoch), one colour and legend entry per configuration."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(8, 5))
    ax = fig.add_subplot()
    groups, common = group_by_config(jobs), common_overrides(jobs)
    for group, color in zip(groups, _colors(len(groups)), strict=True):
        name = label(group.config, common)
        for job in group.jobs:
            values = curves.get(job.dir, {}).get(metric, [])
            ax.plot(range(1, len(values) + 1), values, color=color, marker=".", label=name)
            name = None  # one legend entry per configuration
    if not any(ax.get_lines()):
        ax.text(0.5, 0.5, f"no {metric} curve in any job", ha="center", transform=ax.transAxes)
    ax.set(xlabel="epoch", ylabel=metric, title=f"{metric} per job (colour: configuration)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _save(fig, path)


def plot_bars(jobs: list[JobResult], metric: str, path: Path) -> Path:
    return _save(bars_figure(jobs, metric), path)


def bars_figure(jobs: list[JobResult], metric: str) -> Figure:
    """Best val and test value per configuration: a dot at the mean over its ok seeds, an
    error bar (sample std) only with two seeds or more. Dots, not bars from zero: 0.947
    and 0.967 must not look equal; the axis spans the values."""
    from matplotlib.figure import Figure

    common, groups = common_overrides(jobs), group_by_config(jobs)
    fig = Figure(figsize=(8, 1.5 + 0.45 * max(len(groups), 1)))
    ax = fig.add_subplot()
    seeds = [0] * len(groups)
    for offset, key, color in zip((-0.12, 0.12), summary_keys(metric), _colors(2), strict=True):
        points = [(row, g.stats(key)) for row, g in enumerate(groups) if g.stats(key)]
        for row, (mean, std, n) in points:
            spread = std if n > 1 else None  # one seed: no spread to draw
            ax.errorbar(mean, row + offset, xerr=spread, fmt="o", color=color, capsize=4)
            seeds[row] = max(seeds[row], n)
        if points:
            ax.plot([], [], "o", color=color, label=key)  # one legend entry per value
    if any(seeds):
        labels = [f"{label(g.config, common)} (n={n})" for g, n in zip(groups, seeds, strict=True)]
        ax.set_yticks(range(len(groups)), labels)
        ax.set_ylim(len(groups) - 0.5, -0.5)  # first configuration on top, as in the table
        ax.legend(fontsize="small")
    else:
        ax.text(0.5, 0.5, f"no finished job has {metric}", ha="center", transform=ax.transAxes)
    spread = "mean ± std over seeds" if max(seeds, default=0) > 1 else "one seed each"
    ax.set(xlabel=f"{metric.partition('/')[2]} ({spread})", title=f"best val and test: {metric}")
    ax.grid(axis="x", alpha=0.3)
    return fig


def write_plots(jobs: list[JobResult], out_dir: Path, metric: str | None = None) -> list[Path]:
    """curves_<metric>.png and bars_<metric>.png in out_dir; returns their paths."""
    curves = {job.dir: load_curves(job.dir) for job in jobs}
    metric = choose_metric(metric, curves)
    stem = metric.replace("/", "_")
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        plot_curves(jobs, curves, metric, out_dir / f"curves_{stem}.png"),
        plot_bars(jobs, metric, out_dir / f"bars_{stem}.png"),
    ]
