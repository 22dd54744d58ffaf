"""results.md: a sweep's tables laid out for people (results.csv is for programs).

Overrides every job shares are stated once above the table; the table shows
what varies. The grouped table (mean ± std (n) over seeds) is added when a
configuration has two or more jobs.
"""

from __future__ import annotations

from collections import Counter
from pathlib import PurePath
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # results.py imports this module, so no import of it at run time
    from neuralab.sweep.results import Group, JobResult

ERROR_CHARS = 80


def _number(value: float | None, spec: str = ".4g") -> str:
    return "" if value is None else format(value, spec)


def _code(overrides: list[str] | tuple[str, ...], common: list[str], empty: str = "") -> str:
    shown = [o for o in overrides if o not in common]
    # `|` would end the table cell, even inside backticks.
    return f"`{' '.join(shown)}`".replace("|", "\\|") if shown else empty


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _checkpoint(job: JobResult) -> str:
    """Relative to the job's own dir when inside it: the row already names the job."""
    if not job.checkpoint:
        return ""
    path = PurePath(job.checkpoint)
    return str(path.relative_to(job.dir.name)) if path.parts[:1] == (job.dir.name,) else str(path)


def _trial(job: JobResult) -> str:
    """An Optuna sweep's trial state and value, e.g. `COMPLETE 0.1234`."""
    return f"{job.trial_state or ''} {_number(job.trial_value)}".strip()


def _job_rows(jobs: list[JobResult], metrics: list[str], common: list[str]) -> list[str]:
    with_errors = any(job.error for job in jobs)
    trial = ["trial"] if any(job.trial_state for job in jobs) else []
    header = ["job", "overrides", "status", *trial, *metrics, "epochs", "wall_time_s", "checkpoint"]
    rows = []
    for job in jobs:
        row = [
            job.dir.name if job.num is None else str(job.num),
            _code(job.overrides, common),
            job.status,
            *([_trial(job)] if trial else []),
            *(_number(job.metrics.get(m)) for m in metrics),
            "" if job.epochs is None else str(job.epochs),
            _number(job.wall_time_s, ".1f"),
            _checkpoint(job),
        ]
        if with_errors:
            row.append(job.error.splitlines()[0][:ERROR_CHARS] if job.error else "")
        rows.append(row)
    return _table(header + (["error"] if with_errors else []), rows)


def _stats_cell(group: Group, metric: str) -> str:
    stats = group.stats(metric)
    if stats is None:
        return ""
    mean, std, n = stats
    return f"{mean:.4g} ({n})" if n == 1 else f"{mean:.4g} ± {std:.2g} ({n})"


def _group_rows(groups: list[Group], metrics: list[str], common: list[str]) -> list[str]:
    header = ["overrides", "seeds", "ok", *metrics]
    rows = []
    for group in groups:
        ok = sum(job.status == "ok" for job in group.jobs)
        rows.append(
            [
                _code(group.config, common, empty="(common)"),
                ", ".join(job.seed for job in group.jobs if job.seed is not None),
                f"{ok}/{len(group.jobs)}",
                *(_stats_cell(group, m) for m in metrics),
            ]
        )
    return _table(header, rows)


def to_markdown(
    title: str,
    jobs: list[JobResult],
    groups: list[Group],
    metrics: list[str],
    common: list[str],
) -> str:
    """All of results.md: a summary, the job table, the grouped table if seeds repeat."""
    counts = Counter(job.status for job in jobs)
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    lines = [f"# Sweep {title}", "", f"{len(jobs)} jobs: {summary or 'none'}.", ""]
    if common:
        lines += [f"Overrides of every job: {_code(common, [])}", ""]
    lines += _job_rows(jobs, metrics, common)
    if any(len(group.jobs) > 1 for group in groups):
        lines += ["", "## Mean ± std over seeds", ""]
        lines += ["Over the jobs with status ok: mean ± sample std (n jobs).", ""]
        lines += _group_rows(groups, metrics, common)
    return "\n".join(lines) + "\n"
