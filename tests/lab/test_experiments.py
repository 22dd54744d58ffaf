"""The experiments of conf/experiment/ run, and docs/EXPERIMENTS.md is generated from them.

Every experiment config is found at collection, composed, and run as its own smoke
sweep (report.smoke) through the real CLI; then its table columns and curve must be
there. The report generator is checked on a tiny real sweep.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import train_in
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser

from neuralab.errors import ConfigError
from neuralab.sweep.results import OK, collect, group_by_config

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "lab"))  # the scripts are plain files, not a package
import experiment_results  # noqa: E402
import experiment_spec  # noqa: E402
import experiments  # noqa: E402
import experiments_report  # noqa: E402

NAMES = experiment_spec.config_names()
DOC = ROOT / "docs" / "EXPERIMENTS.md"


def composed(name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("train", [f"experiment={name}", *overrides], return_hydra_config=True)


def smoke_configurations(params) -> int:
    """How many configurations (seed excluded) the sweep has: Hydra's own parser."""
    parser, count = OverridesParser.create(), 1
    for key, value in params.items():
        if key.lstrip("+~") == experiment_spec.SEED_KEY:
            continue
        override = parser.parse_override(f"{key}={value}")
        count *= len(list(override.sweep_string_iterator())) if override.is_sweep_override() else 1
    return count


def allowed_statuses(exp: experiment_spec.Experiment, overrides: list[str]) -> set[str]:
    """ok; diverged too where divergence is what the experiment (or the job) is about."""
    about = f"{exp.title} {exp.claim}".lower()
    diverging = "diverg" in about or any(o.startswith("debug=diverge") for o in overrides)
    return {OK, "diverged"} if diverging else {OK}


def quicker(cfg) -> list[str]:
    """No diagnostic pictures in the smoke runs (a third of their time); scalars stay."""
    if not cfg.callbacks.get("diagnostics"):
        return []
    return ["callbacks.diagnostics.images=false", "callbacks.diagnostics.histograms=false"]


@pytest.mark.parametrize("name", NAMES)
def test_experiment_smoke_sweep(name, run_cli, tmp_path):
    exp = experiment_spec.load(name)  # the contract: every experiment has a report: block
    cfg = composed(name, exp.smoke)
    assert cfg.task_name == name
    expected = smoke_configurations(cfg.hydra.sweeper.params)

    run = run_cli("train", "-m", f"experiment={name}", *exp.smoke, *quicker(cfg))
    assert run.code == 0, run.out[-4000:]
    (sweep_dir,) = (tmp_path / "logs" / name / "multiruns").iterdir()
    jobs = collect(sweep_dir)
    assert len(group_by_config(jobs)) == expected, [j.dir.name for j in jobs]
    for job in jobs:
        assert job.status in allowed_statuses(exp, job.overrides), (job.dir.name, job.error)
    assert any(job.status == OK for job in jobs)

    # Every table column is a results.csv column or a measure, and measures give numbers.
    header = (sweep_dir / "results.csv").read_text().splitlines()[0].split(",")
    for column in exp.table:
        assert column in header or column in experiment_results.MEASURES, column
    table = experiment_results.build(exp, sweep_dir)  # computes every measure of every job
    assert len(table.rows) == expected
    tag, _, lines = experiment_results.curves(table)  # raises if the curve tag is missing
    assert tag.startswith(exp.curve) and any(ys for _, _, ys in lines)


@pytest.mark.parametrize("name", experiment_spec.reported_names())  # the rest fail above
def test_experiment_has_its_section_in_the_docs(name):
    assert DOC.is_file(), "docs/EXPERIMENTS.md: run python scripts/lab/experiments.py all"
    assert experiments_report.anchor(name) in DOC.read_text(), f"regenerate {DOC}"


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory) -> Path:
    """A real 2-configuration x 2-seed sweep on XOR, two epochs each."""
    root = tmp_path_factory.mktemp("tiny")
    sweep_dir = root / "exp" / "tiny"
    train_in(
        root,
        "-m",
        "data=xor",
        "model.hidden_sizes=[4]",
        "model.activation=tanh,relu",
        "seed=1,2",
        "trainer.max_epochs=2",
        "callbacks.diagnostics.images=false",
        f"hydra.sweep.dir={sweep_dir}",
    )
    return sweep_dir


def tiny_experiment(name: str = "tiny", **changes) -> experiment_spec.Experiment:
    report = {"title": f"Tiny {name}", "claim": "tanh and relu differ.", "curve": "val/"}
    report |= {"table": ["best_val_acc", "epochs"], **changes}
    config = {"report": report, "hydra": {"sweeper": {"params": {"model.activation": "x"}}}}
    return experiment_spec.from_dict(name, config)


def png_size(path: Path) -> tuple[int, int]:
    return struct.unpack(">II", path.read_bytes()[16:24])  # the IHDR chunk's width, height


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_report_from_a_tiny_sweep(tiny_sweep, tmp_path):
    notes = tmp_path / "notes.json"
    entry = {k: f"the {k}" for k in experiments_report.NOTES_KEYS}
    notes.write_text(json.dumps([entry]))
    out = tmp_path / "docs" / "EXPERIMENTS.md"
    missing = experiments_report.write_report(
        [tiny_experiment(), tiny_experiment("never")], tiny_sweep.parent, out, notes
    )
    text = out.read_text()

    assert missing == ["never"]
    rows = [cells(line) for line in text.splitlines() if line.startswith("| `")]
    assert [r[0] for r in rows] == ["`tanh`", "`relu`"]
    # The tanh cell is the mean ± std of the two seeds' results.json values.
    values = [
        json.loads((d / "results.json").read_text())["metrics"]["best_val_acc"]
        for d in sorted(tiny_sweep.glob("*model.activation=tanh*"))
    ]
    expected = f"{statistics.fmean(values):.4g} ± {statistics.stdev(values):.2g}"
    assert rows[0][1:4] == ["2", expected, "2 ± 0"]  # seeds, best_val_acc, epochs
    assert png_size(out.parent / "figures" / "tiny.png") == (600, 400)
    assert "![val/](figures/tiny.png)" in text and "**Outcome.**" in text
    assert "**Not run yet**" in text and "neuralab-train -m experiment=never" in text
    assert "1. **the verdict**: the statement" in text and "`the test`" in text


def test_report_without_notes_says_how_to_produce_them(tiny_sweep, tmp_path):
    out = tmp_path / "EXPERIMENTS.md"
    experiments_report.write_report([tiny_experiment()], tiny_sweep.parent, out, tmp_path / "no")
    assert f"Not measured yet: run `{experiments_report.NOTES_COMMAND}`" in out.read_text()


def test_unknown_table_column_and_curve_are_refused(tiny_sweep):
    with pytest.raises(ConfigError, match="experiment tiny: report.table.*'nope'.*best_val_acc"):
        experiment_results.build(tiny_experiment(table=["nope"]), tiny_sweep)
    table = experiment_results.build(tiny_experiment(curve="nope/"), tiny_sweep)
    with pytest.raises(ConfigError, match="experiment tiny: report.curve.*val/acc"):
        experiment_results.curves(table)


def test_bad_report_block_is_one_clear_error():
    with pytest.raises(ConfigError, match="experiment x: report.table=None .*non-empty list"):
        experiment_spec.from_dict("x", {"report": {"title": "t", "claim": "c", "curve": "v"}})


def test_cli_refuses_unknown_names_and_missing_runs(tmp_path, capsys):
    assert experiments.main(["run", "no_such_experiment"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no_such_experiment" in err
    assert all(n in err for n in experiment_spec.reported_names())

    name = experiment_spec.reported_names()[0]
    args = ["report", name, "--logs", str(tmp_path / "empty"), "--out", str(tmp_path / "E.md")]
    assert experiments.main(args) == 1
    assert experiments.main([*args, "--allow-missing"]) == 0
    assert "**Not run yet**" in (tmp_path / "E.md").read_text()


@pytest.fixture(params=["fork", "subprocess"])
def launch(request, monkeypatch):
    """Each sweep through `fake(args) -> exit status` in place of neuralab-train, in a
    forked child (the default) or, where fork is missing, a fresh process's stand-in."""

    def install(fake):
        if request.param == "fork":
            # In-process runs of other tests leave TensorBoard writer threads here, which
            # can_fork refuses; these stand-in children touch nothing those threads hold.
            monkeypatch.setattr(experiments.forked, "can_fork", lambda: True)
            monkeypatch.setattr(experiments, "train_child", fake)
            return
        monkeypatch.setattr(experiments.forked, "can_fork", lambda: False)

        def fake_run(cmd, **kwargs):
            assert cmd[1:3] == ["-m", "neuralab.train"], cmd
            return type("Done", (), {"returncode": fake(cmd[3:])})()

        monkeypatch.setattr(experiments.subprocess, "run", fake_run)

    return install


def experiment_of(args: list[str]) -> str:
    return next(a.split("=", 1)[1] for a in args if a.startswith("experiment="))


def test_run_adds_each_override_to_every_sweep(tmp_path, launch):
    """`run --override hydra/launcher=basic`: the experiments job by job, to compare."""
    seen = tmp_path / "seen"
    seen.mkdir()

    def fake(args):  # in a child: what it saw goes back through a file
        (seen / experiment_of(args)).write_text(json.dumps(args))
        return 0

    launch(fake)
    names = experiment_spec.reported_names()[:2]
    args = ["run", *names, "--logs", str(tmp_path), "--override", "hydra/launcher=basic"]
    assert experiments.main(args) == 0
    commands = [json.loads((seen / name).read_text()) for name in names]
    assert all(cmd[-1] == "hydra/launcher=basic" for cmd in commands), commands


def test_run_takes_jobs_sweeps_at_once_and_refuses_fewer_than_one(tmp_path, launch, capsys):
    """`--jobs 2`: two sweeps run side by side (each waits here for the other)."""
    started = tmp_path / "started"
    started.mkdir()

    def fake(args):  # 1 (a failed run) if the sweeps ran one by one
        (started / experiment_of(args)).touch()
        deadline = time.monotonic() + 30
        while len(list(started.iterdir())) < 2:
            if time.monotonic() > deadline:
                return 1
            time.sleep(0.02)
        return 0

    launch(fake)
    names = experiment_spec.reported_names()[:2]
    assert experiments.main(["run", *names, "--logs", str(tmp_path), "--jobs", "2"]) == 0
    logs = tmp_path / "never"
    assert experiments.main(["run", *names, "--logs", str(logs), "--jobs", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--jobs" in err and "0" in err
    assert not logs.exists()


def test_a_sweep_killed_by_a_signal_fails_the_run(tmp_path, launch):
    """A killed sweep's status is -N (subprocess) or 128 + N: never below a clean 0."""

    def fake(args):
        if experiment_of(args) != names[0]:
            return 0
        if os.getpid() != parent:  # a forked child: killed
            os.kill(os.getpid(), signal.SIGKILL)
        return -signal.SIGKILL  # the subprocess path: as subprocess reports a kill

    parent = os.getpid()
    launch(fake)
    names = experiment_spec.reported_names()[:2]
    assert experiments.main(["run", *names, "--logs", str(tmp_path)]) == 128 + signal.SIGKILL


def test_run_starts_the_largest_grids_first():
    """Two sweeps at a time end together only if the 72-job one does not start last."""
    assert experiments.grid_jobs("vanishing_gradients", []) == 4 * 3 * 2 * 3
    smoke = experiment_spec.load("vanishing_gradients").smoke
    assert experiments.grid_jobs("vanishing_gradients", smoke) == 4 * 3 * 2  # seed=1
    given = experiment_spec.load_all()
    order = experiments.largest_first(given, smoke=False, extra=[])
    jobs = [experiments.grid_jobs(e.name, []) for e in order]
    assert order[0].name == "vanishing_gradients" and jobs == sorted(jobs, reverse=True)
    ties = [e.name for e in order if experiments.grid_jobs(e.name, []) == jobs[2]]
    assert ties == [e.name for e in given if e.name in ties]  # as given


def test_no_fork_while_another_thread_runs():
    """fork copies only the calling thread (a lock another one holds stays held): with
    another thread running, each sweep gets a fresh process instead."""
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert not experiments.forked.can_fork()
    finally:
        stop.set()
        thread.join()


def run_script(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """scripts/lab/experiments.py itself; OMP_NUM_THREADS unset: the children set it."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    cmd = [sys.executable, str(ROOT / "scripts" / "lab" / "experiments.py"), *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_run_forks_each_sweep_from_the_script(tmp_path):
    """The real run: a smoke sweep in a child forked from the script's own process."""
    done = run_script("run", "weighted_loss", "--smoke", "--logs", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    sweep_dir, log = tmp_path / "weighted_loss", tmp_path / "weighted_loss.log"
    assert "weighted_loss: exit 0, 2 jobs (2 ok) in" in done.stdout
    assert f"-> {sweep_dir} (log {log})" in done.stdout
    jobs = collect(sweep_dir)
    assert len(jobs) == 2 and all(job.status == OK for job in jobs)
    assert "sweep: 2 jobs: 2 ok" in log.read_text()  # the child's output, in its log
    info = json.loads((jobs[0].dir / "results.json").read_text())["run_info"]
    assert info["argv"][:3] == ["neuralab-train", "-m", "experiment=weighted_loss"]  # forked
    assert info["device"]["torch_threads"] == 1  # OMP_NUM_THREADS=1 in the child


def test_a_failing_sweep_fails_the_run_not_the_script(tmp_path):
    bad = ["--override", "optimizer.lr=-1"]
    done = run_script(
        "run", "weighted_loss", "--smoke", "--logs", str(tmp_path), *bad, cwd=tmp_path
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "weighted_loss: exit 1, 2 jobs (0 ok) in" in done.stdout  # the parent went on
    assert "optimizer.lr=-1 is not allowed" in (tmp_path / "weighted_loss.log").read_text()


def test_all_finds_the_notes_checks_script():
    """`experiments.py all` runs it for the doc's "Where the notes are wrong" section."""
    assert experiments.NOTES_SCRIPT.is_file(), experiments.NOTES_SCRIPT
