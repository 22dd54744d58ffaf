"""Where neuralab-train's time goes: from Lightning's bare loop to the full default run.

    python scripts/lab/overhead.py                            # both benchmark workloads, 3 repeats
    python scripts/lab/overhead.py --doc docs/PERFORMANCE.md  # also rewrite its section there
    python scripts/lab/overhead.py --tiny --repeats 1         # seconds: a smoke test of the script

scripts/lab/benchmark.py compares the plain loop with the full default run; this
script adds the parts one at a time (each row keeps the parts above it), so the
gap splits into its causes. Every run is a fresh `neuralab-train` process, timed
by its own timing.json (first training step to end of training) as in the
benchmark, and alternates with the plain loop over the same work.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchmark  # noqa: E402  (scripts/lab/benchmark.py: the workloads and both runners)
from sections import replace_section  # noqa: E402

QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
TIMER = "+callbacks.timer._target_=neuralab.runtime.timing.RunTimer"
# name -> overrides; each row adds one part to the row above it.
BARE = [*QUIET, "logger=none", "callbacks=none", TIMER]
LADDER = {
    "Lightning loop, one batch per training_step (data.steps_per_chunk=1)": [
        *BARE,
        "trainer.deterministic=false",
        "data.steps_per_chunk=1",
    ],
    "+ chunks: 100 steps per training_step (the default)": [
        *BARE,
        "trainer.deterministic=false",
    ],
    "+ deterministic algorithms (trainer.deterministic=warn)": BARE,
    "+ TensorBoard logger (scalars, graph, HParams)": [*QUIET, "callbacks=none", TIMER],
    "+ checkpoints (best.ckpt exact, files at most every 10 s), timer": [
        *QUIET,
        "callbacks.diagnostics=null",
        "callbacks.progress_bar=null",
    ],
    "+ diagnostics (norms, activations, histograms, images)": [
        *QUIET,
        "callbacks.progress_bar=null",
    ],
    "+ progress bar and model summary: the default run": [],
}


def measure(name: str, overrides: list[str], epochs: int, repeats: int, tmp: Path) -> dict:
    benchmark.warm_up(overrides, epochs, tmp / f"{name}_warm")
    plain, rows = [], {row: [] for row in LADDER}
    for r in range(repeats):  # alternate, so drifts in machine load hit every row alike
        plain.append(benchmark.run_plain(overrides, epochs)["samples_per_s"])
        for i, (row, extra) in enumerate(LADDER.items()):
            run = benchmark.run_neuralab([*overrides, *extra], epochs, tmp / f"{name}_{r}_{i}")
            rows[row].append(run["samples_per_s"])
        print(f"  {name} repeat {r} done", flush=True)
    base = statistics.median(plain)
    return {
        "epochs": epochs,
        "plain_samples_per_s": base,
        "rows": {row: statistics.median(v) for row, v in rows.items()},
        "ratios": {row: statistics.median(v) / base for row, v in rows.items()},
    }


def markdown(report: dict) -> str:
    names = list(report["workloads"])
    lines = [
        f"Measured by `{report['command']}` ({report['date']}, {report['cpus']} CPU cores; "
        f"medians of {report['repeats']} alternating repeats; 1-minute load average "
        f"{report['load_before']:.1f} before, {report['load_after']:.1f} after). "
        "Samples/s of neuralab-train "
        "as a fraction of the plain loop's; each row adds one part to the row above.",
        "",
        "| configuration | " + " | ".join(names) + " |",
        "| --- |" + " --- |" * len(names),
    ]
    for row in LADDER:
        cells = [f"{report['workloads'][n]['ratios'][row]:.2f}" for n in names]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--tiny", action="store_true", help="tiny sizes: check the script runs")
    p.add_argument("--out", type=Path, default=Path("logs/benchmark/overhead.json"))
    # --readme: the option's old name (the section lived in README.md before docs/)
    p.add_argument("--doc", "--readme", type=Path, help="rewrite this file's overhead section")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error(f"--repeats={args.repeats} is not allowed; expected an integer >= 1")
    workloads = benchmark.TINY if args.tiny else benchmark.WORKLOADS
    report = {
        "command": "python scripts/lab/overhead.py " + " ".join(argv or sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d"),
        "cpus": benchmark.environment()["cpus"],
        "repeats": args.repeats,
        "load_before": os.getloadavg()[0],  # other work on the machine skews the figures
        "workloads": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, (overrides, epochs) in workloads.items():
            report["workloads"][name] = measure(name, overrides, epochs, args.repeats, Path(tmp))
    report["load_after"] = os.getloadavg()[0]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(markdown(report))
    if args.doc:
        replace_section(args.doc, "overhead", markdown(report))
    return report


if __name__ == "__main__":
    main()
