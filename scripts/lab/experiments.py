"""Run the experiments of conf/experiment/ and write docs/EXPERIMENTS.md from their results.

    python scripts/lab/experiments.py run [NAMES...] [--smoke] [--logs DIR] [--jobs N]
    python scripts/lab/experiments.py report [NAMES...] [--logs logs/experiments]
                                         [--out docs/EXPERIMENTS.md] [--allow-missing]
    python scripts/lab/experiments.py all [NAMES...]   # run + notes checks + report

`run` launches `neuralab-train -m experiment=<name> hydra.sweep.dir=<logs>/<name>` per
experiment (its output in <logs>/<name>.log), `--jobs` of them at a time (default: one per
CPU core, each sweep on one torch thread), and prints one line as each ends; `--smoke` adds the
experiment's report.smoke overrides (a seconds-long sweep) and, unless --logs is given,
writes under a fresh temp dir. `report` reads the sweep dirs and writes the doc and
docs/figures/<name>.png; an experiment not run yet gets a section saying so, and the
exit status is 1 unless --allow-missing. NAMES default to every experiment config with a
report: block; an unknown name is refused with the allowed ones (exit 2).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import experiment_spec
from experiment_spec import ROOT, Experiment
from experiments_report import write_report

from neuralab.errors import ConfigError
from neuralab.sweep.results import OK, collect

DEFAULT_LOGS = Path("logs/experiments")
NOTES_SCRIPT = ROOT / "scripts" / "lab" / "notes_checks.py"
NOTES_JSON = "notes_checks.json"
# No progress bar in the log files; job dir names and the report leave these out.
QUIET = ["trainer.enable_progress_bar=false", "++callbacks.progress_bar=null"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["run", "report", "all"])
    parser.add_argument("names", nargs="*", help="experiments (default: all with a report:)")
    parser.add_argument(
        "--logs", "--root", type=Path, help=f"sweep dirs' parent (default: {DEFAULT_LOGS})"
    )
    parser.add_argument("--smoke", action="store_true", help="add each report.smoke")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "EXPERIMENTS.md")
    parser.add_argument("--notes", type=Path, help="notes checks JSON (default: <logs>/...)")
    parser.add_argument("--allow-missing", action="store_true", help="exit 0 if some not run")
    parser.add_argument(
        "--jobs",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="sweeps run at once, one torch thread each (default: the CPU cores)",
    )
    parser.add_argument(
        "--override",
        action="append",
        default=[],
        help="an override added to every sweep (repeatable), e.g. hydra/launcher=basic",
    )
    return parser.parse_args(argv)


def run_one(exp: Experiment, logs: Path, smoke: bool, extra: list[str]) -> int:
    """One experiment's sweep in a fresh process; prints one line; returns its exit status."""
    sweep_dir, log = logs / exp.name, logs / f"{exp.name}.log"
    if sweep_dir.exists():  # a stale grid's job dirs would mix into the new table
        shutil.rmtree(sweep_dir)
    logs.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "neuralab.train", "-m", f"experiment={exp.name}"]
    # The default launcher packs the jobs that differ only in seed, optimizer, init, ...
    # into one vectorized fit (docs/SWEEPS.md "Packed sweeps").
    cmd += [f"hydra.sweep.dir={sweep_dir.resolve()}", *QUIET, *(exp.smoke if smoke else [])]
    cmd += extra
    # One torch thread: these nets are tiny, and two threads' OpenMP hand-offs made them
    # ~4x slower on a 2-core machine shared with other work (measured). A value the
    # caller set wins.
    env = {"OMP_NUM_THREADS": "1", **os.environ}
    start = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    code = proc.returncode
    seconds = time.perf_counter() - start
    jobs = collect(sweep_dir) if sweep_dir.is_dir() else []
    ok = sum(1 for j in jobs if j.status == OK)
    print(
        f"{exp.name}: exit {code}, {len(jobs)} jobs ({ok} ok) in {seconds:.1f} s -> "
        f"{sweep_dir} (log {log})",
        flush=True,
    )
    return code


def run_all(experiments: list[Experiment], logs: Path, args: argparse.Namespace) -> int:
    """Every experiment's sweep, `args.jobs` at a time: the sweeps are independent
    processes of one torch thread each, so on N cores N of them run side by side."""
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        runs = [pool.submit(run_one, e, logs, args.smoke, args.override) for e in experiments]
        return max((run.result() for run in runs), default=0)


def run_notes(notes: Path) -> int:
    if not NOTES_SCRIPT.is_file():
        print(f"notes checks: {NOTES_SCRIPT} not found, section left unmeasured")
        return 0
    cmd = [sys.executable, str(NOTES_SCRIPT), "--out", str(notes.resolve())]
    code = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL).returncode
    print(f"notes checks: exit {code} -> {notes}", flush=True)
    return code


def logs_dir(args: argparse.Namespace) -> Path:
    if args.logs is not None:
        return args.logs
    if args.smoke:
        return Path(tempfile.mkdtemp(prefix="experiments-smoke-"))
    return ROOT / DEFAULT_LOGS


def report(experiments: list[Experiment], args: argparse.Namespace, logs: Path) -> int:
    notes = args.notes or logs / NOTES_JSON
    missing = write_report(experiments, logs, args.out, notes)
    print(f"wrote {args.out} ({len(experiments)} experiments, {len(missing)} not run yet)")
    if missing and not args.allow_missing:
        print(f"not run yet: {', '.join(missing)} (--allow-missing to accept)", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.jobs < 1:
            raise ConfigError("--jobs", args.jobs, "an integer >= 1")
        experiments = experiment_spec.load_all(args.names)
        logs = logs_dir(args)
        code = 0
        if args.action in ("run", "all"):
            code = run_all(experiments, logs, args)
        if args.action == "all":
            code = max(code, run_notes(args.notes or logs / NOTES_JSON))
        if args.action in ("report", "all"):
            code = max(code, report(experiments, args, logs))
    except ConfigError as err:
        print(f"experiments: error: {err}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
