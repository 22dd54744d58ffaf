"""What the default TensorBoard diagnostics cost: epoch time with and without them.

    python scripts/lab/diagnostics_cost.py                        # default config, 5 repeats
    python scripts/lab/diagnostics_cost.py --repeats 9 data=mnist # any neuralab-train overrides
    python scripts/lab/diagnostics_cost.py --doc docs/PERFORMANCE.md  # also rewrite the doc's table

Figures are printed and written to logs/diagnostics_cost.json (`--out`).

Each run is `neuralab-train` in a fresh process (this script re-started in child
mode, so every run pays what a user's run pays), with the same config twice: as
is, and with `callbacks.diagnostics=null`. The two alternate (with, without, with,
...) so drifting machine load hits both. An epoch is timed from one
on_train_epoch_start to the next (the last one to on_train_end): training,
validation, checkpoints and every diagnostic inside it.

Per run: the mean epoch (fit time / epochs, one-off costs such as images spread
in) and the median epoch (the steady state), on the wall clock and on the process
CPU clock (all threads; it barely moves when other processes share the cores,
the wall clock does). Per variant: the median and the minimum over the repeats,
and the spread (max / min - 1) as a gauge of how noisy the machine was.
The progress bar is off in both, since its terminal output is noise here.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback
from sections import replace_section

VARIANTS = {"with": [], "without": ["callbacks.diagnostics=null"]}
QUIET = ["callbacks.progress_bar=null", "trainer.enable_progress_bar=false"]
FIGURES = ("mean_epoch_s", "median_epoch_s", "mean_epoch_cpu_s", "median_epoch_cpu_s")


class EpochTimer(Callback):
    """Epoch boundaries on both clocks, written to `path` at the end of fit (rank 0)."""

    def __init__(self, path: str):
        self.path, self.marks = path, []

    def _mark(self) -> None:
        self.marks.append((time.perf_counter(), time.process_time()))

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._mark()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._mark()
        if trainer.is_global_zero:
            pairs = list(zip(self.marks[:-1], self.marks[1:], strict=True))
            wall = [end[0] - start[0] for start, end in pairs]
            cpu = [end[1] - start[1] for start, end in pairs]
            Path(self.path).write_text(json.dumps({"wall": wall, "cpu": cpu}))


def child(out: str, overrides: list[str]) -> None:
    """One neuralab-train run in this process, with the timer added as a callback."""
    from neuralab.train import main

    timer = [
        "+callbacks.cost_timer._target_=__main__.EpochTimer",
        f"+callbacks.cost_timer.path={out}",
    ]
    sys.argv = ["neuralab-train", *overrides, *QUIET, *timer]
    main()


def run_once(variant: str, overrides: list[str], workdir: Path, index: int) -> dict:
    out = workdir / f"{index:02d}_{variant}.json"
    script = str(Path(__file__).resolve())
    args = [sys.executable, script, "--child", str(out), *overrides, *VARIANTS[variant]]
    started = time.perf_counter()
    proc = subprocess.run(args, cwd=workdir, capture_output=True, text=True)
    process_s = time.perf_counter() - started
    if proc.returncode != 0 or not out.exists():
        sys.exit(f"{variant} run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    epochs = json.loads(out.read_text())
    return {
        "epochs": len(epochs["wall"]),
        "mean_epoch_s": statistics.mean(epochs["wall"]),
        "median_epoch_s": statistics.median(epochs["wall"]),
        "mean_epoch_cpu_s": statistics.mean(epochs["cpu"]),
        "median_epoch_cpu_s": statistics.median(epochs["cpu"]),
        "process_s": process_s,
    }


def summarize(runs: dict[str, list[dict]]) -> dict:
    out: dict = {}
    for key in (*FIGURES, "process_s"):
        values = {v: [r[key] for r in runs[v]] for v in VARIANTS}
        median = {v: statistics.median(values[v]) for v in VARIANTS}
        low = {v: min(values[v]) for v in VARIANTS}
        out[key] = {
            "median": median,
            "min": low,
            "overhead_median": median["with"] / median["without"] - 1,
            "overhead_min": low["with"] / low["without"] - 1,
            "spread": {v: max(values[v]) / low[v] - 1 for v in VARIANTS},
        }
    return out


def report(result: dict) -> None:
    for key in (*FIGURES, "process_s"):
        r = result[key]
        print(
            f"{key:19s} median {r['median']['with']:.4f} with, {r['median']['without']:.4f}"
            f" without ({r['overhead_median']:+.0%});  min {r['min']['with']:.4f} with,"
            f" {r['min']['without']:.4f} without ({r['overhead_min']:+.0%});"
            f"  spread {max(r['spread'].values()):.0%}"
        )
    print(f"cpu load (1 min): {result['load_before']:.2f} before, {result['load_after']:.2f} after")


def markdown(result: dict) -> str:
    """docs/PERFORMANCE.md's cost table, generated from a result (never typed by hand)."""
    rows = [
        ("mean epoch, median of runs (pictures included)", "mean_epoch_s", "median"),
        ("mean epoch, fastest run", "mean_epoch_s", "min"),
        ("median epoch (steady state), median of runs", "median_epoch_s", "median"),
        ("whole process, median of runs", "process_s", "median"),
    ]
    lines = [
        f"Measured by `{result['command']}` ({result['repeats']} alternating repeats; "
        f"1-minute load average {result['load_before']:.2f} before, "
        f"{result['load_after']:.2f} after).",
        "",
        "| figure | with diagnostics | without | difference |",
        "| --- | --- | --- | --- |",
    ]
    for label, key, stat in rows:
        r = result[key][stat]
        unit, scale = ("s", 1) if key == "process_s" else ("ms", 1000)
        lines.append(
            f"| {label} | {r['with'] * scale:.1f} {unit} | "
            f"{r['without'] * scale:.1f} {unit} | "
            f"{(r['with'] - r['without']) * scale:+.1f} {unit} "
            f"({r['with'] / r['without'] - 1:+.0%}) |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default="logs/diagnostics_cost.json")  # logs/: git-ignored
    # --readme: the option's old name (the section lived in README.md before docs/)
    parser.add_argument("--doc", "--readme", type=Path, help="rewrite this file's cost section")
    parser.add_argument("--from-json", type=Path, help="measure nothing: render this result")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args, overrides = parser.parse_known_args()
    if args.child:
        return child(args.child, overrides)
    if args.from_json:
        result = json.loads(args.from_json.read_text())
        print(markdown(result))
        if args.doc:
            replace_section(args.doc, "diagnostics-cost", markdown(result))
        return None
    runs: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    load_before = os.getloadavg()[0]  # other work on the machine skews the wall clock
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            for variant in VARIANTS:  # alternate, so load drift hits both
                runs[variant].append(run_once(variant, overrides, Path(tmp), i))
                print(variant, {k: round(v, 4) for k, v in runs[variant][-1].items()}, flush=True)
    result = {
        "command": " ".join(["python", "scripts/lab/diagnostics_cost.py", *sys.argv[1:]]),
        "overrides": overrides,
        "repeats": args.repeats,
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        **summarize(runs),
        "runs": runs,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    report(result)
    print(f"wrote {args.out}")
    if args.doc:
        replace_section(args.doc, "diagnostics-cost", markdown(result))


if __name__ == "__main__":
    main()
