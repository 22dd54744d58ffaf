"""PNG plots of a sweep: each job's validation curve, and the final metric per configuration.

Curves are read from each job's TensorBoard event files (so a job that never
wrote results.json still shows how far it got); bars come from results.json
through the results table, mean ± sample std over the seeds of a configuration.
Jobs of one configuration share a colour. matplotlib is imported here only,
drawing on Figure objects (the Agg canvas), never through pyplot's global state.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from neuralab.errors import ConfigError
from neuralab.sweep.results import JobResult, common_overrides, group_by_config, label

if TYPE_CHECKING:  # matplotlib is imported only when plotting
    from matplotlib.figure import Figure

DEFAULT_METRICS = ("val/acc", "val/loss")  # classification first; regression has no acc
STAGES = ("train", "val")  # stages with a curve per epoch and a final_<stage>_<name> summary


def load_curves(job_dir: Path) -> dict[str, list[float]]:
    """Scalar tag -> values in step order, from every event file in the job dir."""
    return {tag: [v for _, v in points] for tag, points in load_points(job_dir).items()}


def load_points(job_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Scalar tag -> (step, value) pairs in step order, from every event file in the job dir."""
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
        tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
    }


def summary_key(metric: str) -> str:
    """`val/acc` -> `final_val_acc`, the results.json metric the bars show."""
    stage, _, name = metric.partition("/")
    return f"final_{stage}_{name}"


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
    """The final metric per configuration: mean over ok seeds, error bar = sample std."""
    from matplotlib.figure import Figure

    key, common = summary_key(metric), common_overrides(jobs)
    bars = [(label(g.config, common), g.stats(key)) for g in group_by_config(jobs)]
    bars = [(name, stats) for name, stats in bars if stats is not None]
    fig = Figure(figsize=(8, 1.5 + 0.4 * max(len(bars), 1)))
    ax = fig.add_subplot()
    if bars:
        names, stats = zip(*bars, strict=True)
        ypos = range(len(names))
        means = [s[0] for s in stats]
        ax.barh(ypos, means, xerr=[s[1] for s in stats], color=_colors(len(names)), capsize=4)
        ax.set_yticks(list(ypos), [f"{n} (n={s[2]})" for n, s in zip(names, stats, strict=True)])
        ax.invert_yaxis()  # first configuration on top, as in the table
    else:
        ax.text(0.5, 0.5, f"no finished job has {key}", ha="center", transform=ax.transAxes)
    ax.set(xlabel=f"final {metric} (mean ± std over seeds)", title=f"final {metric}")
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


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
