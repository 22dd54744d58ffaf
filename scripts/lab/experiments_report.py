"""docs/EXPERIMENTS.md, generated from the experiments' sweep dirs and the notes checks.

Every number comes from a run: the tables and figures from each experiment's sweep
dir (logs/experiments/<name>), the outcome sentence from the table, the section
"Where the notes are wrong" from the JSON that scripts/lab/notes_checks.py writes.
Nothing here is typed by hand; an experiment not run yet says so.
"""

from __future__ import annotations

import json
import os
import platform
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from experiment_results import Row, SweepTable, build, write_figure
from experiment_spec import ROOT, Experiment

from neuralab.errors import ConfigError
from neuralab.sweep.results import OK

NOTES_KEYS = ("statement", "source", "verdict", "measured", "test")
NOTES_COMMAND = "python scripts/lab/notes_checks.py --out logs/experiments/notes_checks.json"
PACKAGES = ("torch", "lightning", "hydra-core", "torchmetrics", "scikit-learn")


def shown(path: Path) -> str:
    """A path as the doc shows it: relative to the repository, never this machine's root."""
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


def anchor(name: str) -> str:
    """The stable anchor of an experiment's section (tests look for it)."""
    return f'<a id="{name}"></a>'


def cell(stats: tuple[float, float, int] | None, seeds: int) -> str:
    """`mean ± std`, with `(n=k)` when fewer than all seeds gave a number."""
    if stats is None:
        return "—"
    mean, std, n = stats
    text = f"{mean:.4g}" if n == 1 else f"{mean:.4g} ± {std:.2g}"
    return text if n == seeds else f"{text} (n={n})"


def _status(row: Row) -> str:
    counts = row.statuses
    return ", ".join(f"{status} {n}" for status, n in sorted(counts.items()))


def table_lines(table: SweepTable) -> list[str]:
    """Rows = configurations, one column per swept key, then report.table; a status
    column only when some job did not end ok."""
    columns, rows = table.experiment.table, table.rows
    axes = list(rows[0].axes)
    show_status = any(set(r.statuses) != {OK} for r in rows)
    header = [*(axes or ["configuration"]), "seeds", *columns] + (["status"] if show_status else [])
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in rows:
        n = len(row.group.jobs)
        cells = [f"`{v}`" for v in row.axes.values()] or [row.label]
        cells += [str(n), *(cell(row.stats(c), n) for c in columns)]
        lines.append("| " + " | ".join(cells + ([_status(row)] if show_status else [])) + " |")
    return lines


def _names(rows: list[Row]) -> str:
    return ", ".join(f"`{r.label}`" for r in rows)


def outcome(table: SweepTable) -> str:
    """One sentence from the numbers: highest and lowest configurations by the first column."""
    column = table.experiment.table[0]
    stats = [(r.stats(column), r) for r in table.rows]
    stats = [(s, r) for s, r in stats if s is not None]
    if not stats:
        return f"No job ended ok with a value of `{column}`."
    hi = max(s[0] for s, _ in stats)
    lo = min(s[0] for s, _ in stats)
    top = [(s, r) for s, r in stats if s[0] == hi]
    low = [(s, r) for s, r in stats if s[0] == lo]
    if hi == lo:
        text = f"`{column}` is {hi:.4g} for every configuration ({len(stats)})."
    else:
        text = (
            f"Highest `{column}` ({hi:.4g}): {_names([r for _, r in top])}; "
            f"lowest ({lo:.4g}): {_names([r for _, r in low])}. "
        )
        text += _spread(hi - lo, [s for s, _ in top + low])
    bad = sum(1 for job in table.jobs if job.status != OK)
    return text + (f" {bad} of {len(table.jobs)} jobs did not end ok." if bad else "")


def _spread(gap: float, stats: list[tuple[float, float, int]]) -> str:
    """Is the gap bigger than seed noise? Only said when every side has 2+ seeds."""
    if any(n < 2 for _, _, n in stats):
        return f"The difference is {gap:.3g} (fewer than 2 seeds: no spread to compare with)."
    spread = max(std for _, std, _ in stats) * 2
    verdict = "larger" if gap > spread else "not larger"
    return f"The difference, {gap:.3g}, is {verdict} than twice the largest std ({spread:.2g})."


def experiment_section(exp: Experiment, logs: Path, figures: Path, doc_dir: Path) -> list[str]:
    """Title, claim, command, table, figure, outcome; or "not run yet"."""
    head = [f"## {exp.title}", "", anchor(exp.name), "", f"**Claim.** {exp.claim}", ""]
    head += ["Reproduce:", "", "```bash", exp.command, "```", ""]
    sweep_dir = logs / exp.name
    if not sweep_dir.is_dir():
        return head + [
            f"**Not run yet**: no sweep dir `{shown(sweep_dir)}`. Run "
            f"`{exp.run_command(f'logs/experiments/{exp.name}')}`, then regenerate this file.",
            "",
        ]
    table = build(exp, sweep_dir)
    figure = write_figure(table, figures / f"{exp.name}.png")
    jobs, ok = len(table.jobs), sum(1 for j in table.jobs if j.status == OK)
    # No summed wall times: the jobs of a pack train side by side, each timing the pack.
    lines = head + [f"{jobs} jobs ({ok} ok)."]
    if table.extra:
        extra = " ".join(table.extra)
        lines[-1] += f" **Run with extra overrides `{extra}`: a reduced run, not the full sweep.**"
    lines += ["", *table_lines(table), ""]
    lines += [f"![{exp.curve}]({os.path.relpath(figure, doc_dir)})", ""]
    return lines + [f"**Outcome.** {outcome(table)}", ""]


def read_notes(path: Path) -> list[dict] | None:
    """The notes checks, or None when the file is not there."""
    if not path.is_file():
        return None
    try:
        checks = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError("notes checks", str(path), f"a JSON file ({exc})") from None
    good = isinstance(checks, list) and all(
        isinstance(c, dict) and all(isinstance(c.get(k), str) for k in NOTES_KEYS) for c in checks
    )
    if not good:
        raise ConfigError("notes checks", str(path), f"a JSON list of objects {list(NOTES_KEYS)}")
    return checks


def notes_section(path: Path) -> list[str]:
    lines = ["## Where the notes are wrong", "", '<a id="notes"></a>', ""]
    checks = read_notes(path)
    if checks is None:
        return lines + [f"Not measured yet: run `{NOTES_COMMAND}`, then regenerate this file.", ""]
    lines += [f"Measured by `{NOTES_COMMAND}`; each entry has a test that asserts it.", ""]
    for i, c in enumerate(checks, 1):
        lines += [f"{i}. **{c['verdict']}**: {c['statement']}", f"   - Source: {c['source']}"]
        lines += [f"   - Measured: {c['measured']}", f"   - Test: `{c['test']}`"]
    return lines + [""]


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def intro(experiments: list[Experiment]) -> list[str]:
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    versions = ", ".join(f"{p} {_version(p)}" for p in PACKAGES)
    lines = ["# Experiments", "", "<!-- Generated by `python scripts/lab/experiments.py report`;"]
    lines += ["do not edit by hand: edit the experiment configs and regenerate. -->", ""]
    lines += [
        f"Generated {date} on {os.cpu_count()} CPU cores ({platform.machine()}), "
        f"Python {platform.python_version()}, {versions}.",
        "",
    ]
    lines += [
        "Each experiment is one config, `conf/experiment/<name>.yaml`: a sweep over the "
        "settings it compares, 3 seeds each unless its section says otherwise.",
        "",
    ]
    lines += [
        "Table cells are mean ± std over seeds: over the seeds that ended ok for summary "
        "metrics (as in a sweep's results.md), over every finished seed for derived measures "
        "(`neuralab.sweep.measures`, which may be about failure itself, like `diverged`); "
        "`(n=k)` marks a cell only k seeds gave a number for.",
        "",
    ]
    lines += ["Reproduce everything (runs every sweep, the notes checks, then this file):", ""]
    lines += ["```bash", "python scripts/lab/experiments.py all", "```", ""]
    lines += [f"- [{e.title}](#{e.name})" for e in experiments]
    return lines + ["- [Where the notes are wrong](#notes)", ""]


def write_report(experiments: list[Experiment], logs: Path, out: Path, notes: Path) -> list[str]:
    """Write the doc (figures next to it in figures/); returns the experiments not run yet."""
    figures = out.parent / "figures"
    lines = intro(experiments)
    for exp in experiments:
        lines += experiment_section(exp, logs, figures, out.parent)
    lines += notes_section(notes)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return [e.name for e in experiments if not (logs / e.name).is_dir()]
