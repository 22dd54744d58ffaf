"""Benchmark `neuralab-train` against a minimal hand-written PyTorch loop.

    python scripts/lab/benchmark.py         # full: digits + MNIST-sized, 16-job multirun, sweeps
    python scripts/lab/benchmark.py --tiny  # seconds: a smoke test of the script itself
    python scripts/lab/benchmark.py --sweeps  # only the sweeps (basic vs packed launcher)
    python scripts/lab/benchmark.py --doc docs/PERFORMANCE.md  # also rewrite its sections there

For each workload the two contenders alternate (plain, neuralab, plain, ...)
`--repeats` times over the same data, model, init, optimizer, batch size and
epochs. Plain: the whole split as tensors, a randperm per epoch, batches by
slicing, forward / loss / backward / step, and a validation pass per epoch,
timed from its first step to its end. neuralab: `neuralab-train` in a fresh
process with its defaults (TensorBoard, checkpoints, progress bar, diagnostics),
early stopping off so both do the same epochs; samples/s over the same window
(first step to end of training) comes from the run's timing.json, and the wall
time from process start to exit is measured here.

Multirun: `neuralab-train -m seed=1..N` (the default config, N jobs, one
process) against N plain loops run back to back in this process (compute only:
no interpreter start or imports) and against N plain loops each in its own
process (what running one script per config costs). Results go to JSON.

Sweeps (benchmark_sweeps.py; `--sweeps` alone, `--no-sweeps` without): seed and
seed x lr sweeps under the basic and the packed launcher, against plain loops, and
with CUDA a `--gpu-members` pack on the GPU. Their own doc section: `sweeps`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from sections import replace_section

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark_report import environment, markdown, sweeps_markdown  # noqa: E402
from benchmark_sweeps import run_sweeps  # noqa: E402
from contenders import GPU, TRAIN, plain_loop, timed_process  # noqa: E402

# name -> (overrides, epochs): the default MLP on digits (the default config's 20
# epochs), and an MNIST-sized MLP (784-256-128-10 on 60,000 samples).
WORKLOADS = {
    "digits_mlp": (["data=digits"], 20),
    "mnist_sized_mlp": (["data=synthetic", "model.hidden_sizes=[256,128]"], 3),
}
TINY = {
    "digits_mlp": (["data=digits"], 1),
    "mnist_sized_mlp": (
        [
            "data=synthetic",
            "model.hidden_sizes=[256,128]",
            "data.params.n_samples=2000",
            "data.params.n_test=200",
        ],
        1,
    ),
}


def with_gpu(workloads: dict) -> dict:
    """The workloads, and their `_gpu` twins when a CUDA device is present."""
    if not torch.cuda.is_available():
        return workloads
    gpu = {f"{k}_gpu": ([*GPU, *o], e) for k, (o, e) in workloads.items()}
    return {**workloads, **gpu}


def run_plain(overrides: list[str], epochs: int) -> dict:
    """plain_loop in a fresh process: as cold as neuralab-train's process is."""
    args = [
        sys.executable,
        __file__,
        "--plain-once",
        f"--epochs={epochs}",
        *[f"--override={o}" for o in overrides],
    ]
    proc = subprocess.run(args, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_neuralab(overrides: list[str], epochs: int, out_dir: Path) -> dict:
    """`neuralab-train` in a fresh process; throughput from its timing.json."""
    args = [
        str(TRAIN),
        *overrides,
        f"trainer.max_epochs={epochs}",
        "++callbacks.early_stopping=null",  # ++: also for variants without callbacks
        f"hydra.run.dir={out_dir}",
    ]
    start = time.time()
    wall = timed_process(args)
    timing = json.loads((out_dir / "timing.json").read_text())
    return {**timing, "wall_s": wall, "startup_s_measured": timing["first_step"] - start}


def warm_up(overrides: list[str], epochs: int, out_dir: Path) -> None:
    """One uncounted run of each: the first runs after a pause measured ~25% slower
    (file cache, CPU clocks), and that would fall on whichever contender goes first."""
    run_plain(overrides, epochs)
    run_neuralab(overrides, epochs, out_dir)


def compare_workload(name: str, overrides: list[str], epochs: int, repeats: int, tmp: Path) -> dict:
    warm_up(overrides, epochs, tmp / f"{name}_warm")
    plain, ours = [], []
    for r in range(repeats):  # alternate, so drifts in machine load hit both alike
        plain.append(run_plain(overrides, epochs))
        ours.append(run_neuralab(overrides, epochs, tmp / f"{name}_{r}"))
        print(
            f"  {name} repeat {r}: plain {plain[-1]['samples_per_s']:,.0f}/s, "
            f"neuralab {ours[-1]['samples_per_s']:,.0f}/s",
            flush=True,
        )
    ratios = [o["samples_per_s"] / p["samples_per_s"] for p, o in zip(plain, ours, strict=True)]
    med = statistics.median
    return {
        "overrides": overrides,
        "epochs": epochs,
        "repeats": repeats,
        "plain_samples_per_s": med(p["samples_per_s"] for p in plain),
        "neuralab_samples_per_s": med(o["samples_per_s"] for o in ours),
        "ratio_median": med(ratios),
        "ratios": ratios,
        "neuralab_wall_s": med(o["wall_s"] for o in ours),
        "neuralab_startup_s": med(o["startup_s_measured"] for o in ours),
        "runs": {"plain": plain, "neuralab": ours},
    }


def compare_multirun(jobs: int, epochs: int, tmp: Path, extra: list[str]) -> dict:
    seeds = ",".join(str(s) for s in range(1, jobs + 1))
    args = [
        str(TRAIN),
        "-m",
        f"seed={seeds}",
        f"trainer.max_epochs={epochs}",
        "++callbacks.early_stopping=null",  # ++: also for variants without callbacks
        # One job after another: the split below (fit windows, time between them)
        # assumes it; packed sweeps, whose members' fits overlap, are --sweeps' part.
        "hydra/launcher=basic",
        f"hydra.sweep.dir={tmp / 'multirun'}",
        *extra,
    ]
    multirun_s = timed_process(args)
    split = multirun_split(tmp / "multirun", jobs, multirun_s)
    in_process = sum(
        plain_loop([f"seed={s}", *extra], epochs)["train_s"] for s in range(1, jobs + 1)
    )
    start = time.time()
    for s in range(1, jobs + 1):  # one process per config, as a script-per-run user would
        run_plain([f"seed={s}", *extra], epochs)
    per_process = time.time() - start
    return {
        "jobs": jobs,
        "epochs": epochs,
        "multirun_s": multirun_s,
        "plain_in_process_s": in_process,
        "plain_per_process_s": per_process,
        "ratio_vs_in_process": multirun_s / in_process,
        "ratio_vs_per_process": multirun_s / per_process,
        **split,
    }


def multirun_split(sweep_dir: Path, jobs: int, multirun_s: float) -> dict:
    """Where a multirun's time goes, from its jobs' timing.json: the process start to
    job 0's first step (imports, Hydra, job 0's set-up), the fit windows (first step
    to end of training, as in the workloads), and the rest: each later job's Hydra
    set-up, trainer build, fit start, test and results, plus the sweep's end."""
    timings = [json.loads(p.read_text()) for p in sweep_dir.glob("*/timing.json")]
    if len(timings) != jobs:
        raise RuntimeError(f"{len(timings)} timing.json files in {sweep_dir}, expected {jobs}")
    first = min(timings, key=lambda t: t["first_step"])
    fit_s = sum(t["train_s"] for t in timings)
    between_s = multirun_s - first["startup_s"] - fit_s
    return {
        "startup_s": first["startup_s"],
        "fit_s": fit_s,
        "between_fits_s": between_s,
        "between_fits_per_job_ms": 1000 * between_s / max(jobs - 1, 1),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=0, help="override every workload's epochs")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--jobs", type=int, default=16, help="multirun size (0: skip)")
    p.add_argument("--tiny", action="store_true", help="tiny sizes: check the script runs")
    only = p.add_mutually_exclusive_group()
    only.add_argument("--sweeps", action="store_true", help="only the sweeps benchmark")
    only.add_argument("--no-sweeps", action="store_true", help="all but the sweeps benchmark")
    p.add_argument("--gpu-members", type=int, default=256, help="GPU pack size (with CUDA)")
    p.add_argument("--out", type=Path, default=Path("logs/benchmark/benchmark.json"))
    # --readme: the option's old name (the section lived in README.md before docs/)
    p.add_argument("--doc", "--readme", type=Path, help="rewrite this file's benchmark section")
    p.add_argument("--from-json", type=Path, help="measure nothing: render this saved report")
    p.add_argument("--plain-once", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--override", action="append", default=[], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.epochs < 0 or args.repeats < 1 or args.jobs < 0:
        p.error("--epochs must be >= 0 (0: each workload's own), --repeats >= 1, --jobs >= 0")
    return args


def measure_runs(args: argparse.Namespace, tmp: Path) -> dict:
    """The single-run workloads and the multirun, against the plain loop."""
    workloads = with_gpu(TINY if args.tiny else WORKLOADS)
    report = {"repeats": args.repeats, "workloads": {}}
    report["gpu"] = (
        f"the *_gpu workloads: {torch.cuda.get_device_name()}"
        if torch.cuda.is_available()
        else "skipped: no CUDA device on this machine"
    )
    for name, (overrides, epochs) in workloads.items():
        epochs = args.epochs or epochs
        report["workloads"][name] = compare_workload(name, overrides, epochs, args.repeats, tmp)
    if args.jobs:
        overrides, epochs = workloads["digits_mlp"]
        report["multirun"] = compare_multirun(args.jobs, args.epochs or epochs, tmp, overrides)
    return report


def render(report: dict, doc: Path | None) -> None:
    """Print the report's sections, and write them into `doc` when given."""
    sections = {"benchmark": ("workloads", markdown), "sweeps": ("sweeps", sweeps_markdown)}
    for section, (part, render_part) in sections.items():
        if part in report:  # a --sweeps (--no-sweeps) report has only that part
            print(render_part(report))
            if doc:
                replace_section(doc, section, render_part(report))


def main(argv: list[str] | None = None) -> dict | None:
    args = parse_args(argv)
    if args.plain_once:  # child process of run_plain: one plain loop, result on stdout
        print(json.dumps(plain_loop(args.override, args.epochs)))
        return None
    if args.from_json:  # the doc from a saved report: the figures stay those measured
        report = json.loads(args.from_json.read_text())
        render(report, args.doc)
        return report
    report = {
        "command": "python scripts/lab/benchmark.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "date": time.strftime("%Y-%m-%d"),
        "environment": environment(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        if not args.sweeps:
            report |= measure_runs(args, Path(tmp))
        if not args.no_sweeps:
            members = 4 if args.tiny else args.gpu_members
            report |= run_sweeps(args.tiny, members, Path(tmp))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    render(report, args.doc)
    print(f"\nwritten: {args.out}")
    return report


if __name__ == "__main__":
    main()
