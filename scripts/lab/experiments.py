"""Run the experiments of conf/experiment/ and write docs/EXPERIMENTS.md from their results.

    python scripts/lab/experiments.py run [NAMES...] [--smoke] [--logs DIR] [--jobs N]
    python scripts/lab/experiments.py report [NAMES...] [--logs logs/experiments]
                                         [--out docs/EXPERIMENTS.md] [--allow-missing]
    python scripts/lab/experiments.py all [NAMES...]   # run + notes checks + report

`run` runs `neuralab-train -m experiment=<name> hydra.sweep.dir=<logs>/<name>` per
experiment (its output in <logs>/<name>.log), `--jobs` of them at a time (default: one per
CPU core, each sweep on one torch thread), the largest grids first, and prints one line as
each ends. Each sweep is a child forked from this process, which imports neuralab.train
once (scripts/lab/forked.py; a fresh process per sweep where fork is missing). `--smoke`
adds the experiment's report.smoke overrides (a seconds-long sweep) and, unless --logs is
given, writes under a fresh temp dir. `report` reads the sweep dirs and writes the doc and
docs/figures/<name>.png; an experiment not run yet gets a section saying so, and the
exit status is 1 unless --allow-missing. NAMES default to every experiment config with a
report: block; an unknown name is refused with the allowed ones (exit 2).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import experiment_spec
import forked
from experiment_spec import ROOT, Experiment
from experiments_report import write_report
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException

from neuralab.errors import ConfigError
from neuralab.sweep.results import OK, collect

DEFAULT_LOGS = Path("logs/experiments")
NOTES_SCRIPT = ROOT / "scripts" / "lab" / "notes_checks.py"
NOTES_JSON = "notes_checks.json"
# No progress bar in the log files; job dir names and the report leave these out.
QUIET = ["trainer.enable_progress_bar=false", "++callbacks.progress_bar=null"]
# One torch thread: these nets are tiny, and two threads' OpenMP hand-offs made them
# ~4x slower on a 2-core machine shared with other work (measured). A value the caller
# set wins.
ONE_THREAD = {"OMP_NUM_THREADS": "1"}
SWEEP_PARAMS = "hydra.sweeper.params."


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


def sweep_args(exp: Experiment, sweep_dir: Path, smoke: bool, extra: list[str]) -> list[str]:
    """neuralab-train's arguments for one experiment's sweep."""
    # The default launcher packs the jobs that differ only in seed, optimizer, init, ...
    # into one vectorized fit (docs/SWEEPS.md "Packed sweeps").
    args = ["-m", f"experiment={exp.name}", f"hydra.sweep.dir={sweep_dir.resolve()}", *QUIET]
    return [*args, *(exp.smoke if smoke else []), *extra]


def fresh_dirs(exp: Experiment, logs: Path) -> tuple[Path, Path]:
    """The experiment's sweep dir (gone) and log file."""
    sweep_dir, log = logs / exp.name, logs / f"{exp.name}.log"
    if sweep_dir.exists():  # a stale grid's job dirs would mix into the new table
        shutil.rmtree(sweep_dir)
    logs.mkdir(parents=True, exist_ok=True)
    return sweep_dir, log


def print_ended(exp: Experiment, logs: Path, code: int, seconds: float) -> None:
    sweep_dir, log = logs / exp.name, logs / f"{exp.name}.log"
    jobs = collect(sweep_dir) if sweep_dir.is_dir() else []
    ok = sum(1 for j in jobs if j.status == OK)
    print(
        f"{exp.name}: exit {code}, {len(jobs)} jobs ({ok} ok) in {seconds:.1f} s -> "
        f"{sweep_dir} (log {log})",
        flush=True,
    )


def run_one(exp: Experiment, logs: Path, smoke: bool, extra: list[str]) -> int:
    """One experiment's sweep in a fresh process (where this one cannot fork); prints one
    line; returns its exit status."""
    sweep_dir, log = fresh_dirs(exp, logs)
    cmd = [sys.executable, "-m", "neuralab.train", *sweep_args(exp, sweep_dir, smoke, extra)]
    start = time.perf_counter()
    with log.open("w") as out:
        env = {**ONE_THREAD, **os.environ}
        proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    print_ended(exp, logs, proc.returncode, time.perf_counter() - start)
    return proc.returncode


def train_child(args: list[str]) -> None:
    """In a forked child: `neuralab-train <args>`, ended as the console script ends (the
    exit status kept, out with os._exit: runtime/quick_exit.py)."""
    import torch

    import neuralab.train
    from neuralab.runtime.quick_exit import quick_exit

    for key, value in ONE_THREAD.items():
        os.environ.setdefault(key, value)  # for the processes the run starts
    threads = os.environ["OMP_NUM_THREADS"]
    if threads.isdigit() and int(threads) > 0:
        # OpenMP read the variable when torch loaded it, in the parent: set it here.
        torch.set_num_threads(int(threads))
    sys.argv = ["neuralab-train", *args]
    quick_exit(neuralab.train.main)()


def warm_parent() -> bool:
    """Whether the sweeps can be forked from here; if so, neuralab.train is imported once
    first, so that every child starts with it (and lightning, torch) loaded."""
    if not forked.can_fork():
        return False
    import neuralab.train  # noqa: F401

    return forked.can_fork()  # the imports started no thread: checked, not assumed


def run_forked(experiments: list[Experiment], logs: Path, args: argparse.Namespace) -> int:
    """Each sweep in a child forked from this process, `args.jobs` at a time; one line as
    each ends. One thread here, and nothing but imports before a fork (forked.py)."""
    waiting, running, worst = list(experiments), {}, 0
    try:
        while waiting or running:
            while waiting and len(running) < args.jobs:
                exp = waiting.pop(0)
                sweep_dir, log = fresh_dirs(exp, logs)
                argv = sweep_args(exp, sweep_dir, args.smoke, args.override)
                pid = forked.start(functools.partial(train_child, argv), log, cwd=ROOT)
                running[pid] = (exp, time.perf_counter())
            pid, code = forked.wait_any(running)
            exp, started = running.pop(pid)
            print_ended(exp, logs, code, time.perf_counter() - started)
            worst = max(worst, shell_status(code))
    finally:  # interrupted (Ctrl-C reaches the children too): they end before this does
        for pid in running:
            os.waitpid(pid, 0)
    return worst


def shell_status(code: int) -> int:
    """A sweep killed by signal N (code -N) as a shell reports it, 128 + N: it must not
    vanish from the worst status, as a negative code would."""
    return code if code >= 0 else 128 - code


def grid_jobs(name: str, overrides: list[str]) -> int:
    """How many jobs conf/experiment/<name>.yaml's grid has, its `hydra.sweeper.params.`
    overrides applied; 0 where Hydra cannot enumerate it (an interval, a glob)."""
    config = experiment_spec.read_yaml(experiment_spec.CONF_DIR / f"{name}.yaml")
    params = ((config.get("hydra") or {}).get("sweeper") or {}).get("params") or {}
    grid = {str(key): value for key, value in params.items()}
    for override in overrides:
        key, _, value = override.lstrip("+~").partition("=")
        if key.startswith(SWEEP_PARAMS):
            grid[key.removeprefix(SWEEP_PARAMS)] = value
    parser, jobs = OverridesParser.create(), 1
    for key, value in grid.items():
        try:
            override = parser.parse_override(f"{key}={value}")
            if override.is_sweep_override():
                jobs *= len(list(override.sweep_string_iterator()))
        except HydraException:
            return 0
    return jobs


def largest_first(experiments: list[Experiment], smoke: bool, extra: list[str]) -> list[Experiment]:
    """The experiments in the order to start them: the most jobs first.

    With N sweeps at a time, the longest one started last decides the end: the 72-job
    vanishing_gradients sweep, last by name, then runs alone while the other cores idle.
    Its jobs are a cheap estimate of a sweep's time (the configs' "full run" comments
    mostly rise with it) that needs no run; ties keep the given order (a stable sort)."""
    jobs = {e.name: grid_jobs(e.name, [*(e.smoke if smoke else []), *extra]) for e in experiments}
    return sorted(experiments, key=lambda e: -jobs[e.name])


def run_all(experiments: list[Experiment], logs: Path, args: argparse.Namespace) -> int:
    """Every experiment's sweep, `args.jobs` at a time: the sweeps are independent
    processes of one torch thread each, so on N cores N of them run side by side."""
    experiments = largest_first(experiments, args.smoke, args.override)
    if warm_parent():
        return run_forked(experiments, logs, args)
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        runs = [pool.submit(run_one, e, logs, args.smoke, args.override) for e in experiments]
        return max((shell_status(run.result()) for run in runs), default=0)


def notes_child(out: str) -> int:
    """In a forked child: scripts/lab/notes_checks.py --out <out>."""
    import notes_checks

    return notes_checks.main(["--out", out])


def run_notes(notes: Path) -> int:
    if not NOTES_SCRIPT.is_file():
        print(f"notes checks: {NOTES_SCRIPT} not found, section left unmeasured")
        return 0
    out = str(notes.resolve())
    if forked.can_fork():  # its torch and neuralab imports are loaded here already
        child = functools.partial(notes_child, out)
        pid = forked.start(child, os.devnull, stderr_too=False, cwd=ROOT)
        code = forked.wait_any({pid})[1]
    else:
        cmd = [sys.executable, str(NOTES_SCRIPT), "--out", out]
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
