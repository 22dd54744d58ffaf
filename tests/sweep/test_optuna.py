"""The Optuna sweeper end to end, through the real CLI (in-process, tiny runs on iris).

TPE: 4 trials, then the same command with resume=true and n_trials=6 continues the study
without repeating a finished trial. Grid searches (trial order known in advance) check a
trial that raises, pruning, a stopped search continued in place, and the grid preset.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import threading
import time
from pathlib import Path

import optuna
import pytest
import yaml
from conftest import Run, train_in

from neuralab.runtime.faults import PauseAt, RaiseAt
from neuralab.sweep.optuna_report import COLUMNS

TINY = ["data=iris", "trainer.max_epochs=2", "logger=none", "callbacks.diagnostics=null"]
TPE = ["-m", "hparams_search=optuna_tpe", *TINY]
# A search with only what a test puts on the command line.
GRID = ["-m", "hydra/sweeper=optuna", "hydra.sweeper.sampler.name=grid", *TINY]
RAISE = f"+callbacks.fault._target_={RaiseAt.__module__}.{RaiseAt.__name__}"
PAUSE = f"+callbacks.pause._target_={PauseAt.__module__}.{PauseAt.__name__}"


def sweep_dir(root: Path) -> Path:
    (found,) = (root / "logs" / "train" / "multiruns").iterdir()
    return found


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def job_dirs(sweep: Path) -> dict[int, Path]:
    """Job number -> job dir."""
    return {int(p.name.split("_")[0]): p for p in sweep.iterdir() if (p / ".hydra").is_dir()}


def results(job: Path) -> dict:
    return json.loads((job / "results.json").read_text())


def sessions(job: Path) -> list[dict]:
    return json.loads((job / "run_info.json").read_text())["sessions"]


def states(sweep: Path) -> list[tuple[int, str]]:
    return [(int(row["number"]), row["state"]) for row in read_csv(sweep / "trials.csv")]


# ------------------------------------------------------------------ TPE and resume
@pytest.fixture(scope="module")
def tpe(tmp_path_factory) -> tuple[Path, list[dict]]:
    """A 4-trial TPE search; its sweep dir and trials.csv as it was right after."""
    root = tmp_path_factory.mktemp("tpe")
    train_in(root, *TPE, "hydra.sweeper.n_trials=4")
    sweep = sweep_dir(root)
    return sweep, read_csv(sweep / "trials.csv")


@pytest.fixture(scope="module")
def resumed(tpe) -> list[dict]:
    sweep, _ = tpe
    train_in(sweep.parents[3], *TPE, "hydra.sweeper.n_trials=6", "resume=true")
    return read_csv(sweep / "trials.csv")


def test_a_tpe_search_of_4_trials_completes(tpe):
    sweep, trials = tpe
    assert [row["number"] for row in trials] == ["0", "1", "2", "3"]
    assert {row["state"] for row in trials} == {"COMPLETE"}, trials
    jobs = job_dirs(sweep)
    assert sorted(jobs) == [0, 1, 2, 3]  # job number = trial number
    for row in trials:
        job = jobs[int(row["number"])]
        assert row["job_dir"] == job.name
        # The job ran what the study recorded: each parameter is one of its overrides.
        overrides = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
        for name in ("optimizer", "optimizer.lr", "model.hidden_sizes", "model.activation"):
            assert f"{name}={row[name]}" in overrides, (name, overrides)
        assert float(row["value"]) == results(job)["metrics"]["best_val_loss"]

    best = yaml.safe_load((sweep / "best_params.yaml").read_text())
    top = min(trials, key=lambda row: float(row["value"]))
    assert (best["best_trial"], best["best_value"]) == (int(top["number"]), float(top["value"]))
    assert best["direction"] == "minimize" and best["metric"] == "val/loss"  # monitor.mode=min
    assert f"optimizer.lr={top['optimizer.lr']}" in best["overrides"]

    study = optuna.load_study(study_name="train", storage=f"sqlite:///{sweep / 'optuna.db'}")
    assert len(study.trials) == 4
    table = read_csv(sweep / "results.csv")  # the multirun table shows each job's trial
    assert [(r["job"], r["trial_state"], r["trial_value"]) for r in table] == [
        (r["number"], "COMPLETE", r["value"]) for r in trials
    ]


def test_the_same_command_with_resume_continues_to_6_trials(tpe, resumed):
    sweep, before = tpe
    assert resumed[:4] == before  # finished trials are left as they were
    new = resumed[4:]
    assert [row["number"] for row in new] == ["4", "5"]
    assert all(row["state"] in ("COMPLETE", "PRUNED") for row in new), new
    params = [tuple(v for k, v in row.items() if k not in COLUMNS) for row in resumed]
    assert len(set(params)) == 6  # nothing ran twice
    jobs = job_dirs(sweep)  # the same sweep dir: two more job dirs, the first four not rerun
    assert sorted(jobs) == [0, 1, 2, 3, 4, 5]
    assert [len(sessions(jobs[n])) for n in range(4)] == [1, 1, 1, 1]


# ------------------------------------------------------- failures, pruning, a stop
def test_a_trial_that_raises_is_failed_and_the_search_goes_on(run_cli):
    run = run_cli("train", *GRID, RAISE, "+callbacks.fault.at_step=null,2")
    assert run.code == 0, run.out  # a job ended ok: the sweep's exit status is 0
    sweep = sweep_dir(run.root)
    assert states(sweep) == [(0, "COMPLETE"), (1, "FAIL")]
    failed = job_dirs(sweep)[1]
    assert results(failed)["status"] == "failed"
    assert (failed / "traceback.txt").is_file()
    rows = read_csv(sweep / "results.csv")
    assert [(r["status"], r["trial_state"]) for r in rows] == [
        ("ok", "COMPLETE"),
        ("failed", "FAIL"),
    ]
    assert yaml.safe_load((sweep / "best_params.yaml").read_text())["best_trial"] == 0


def test_a_search_whose_trials_all_fail_exits_1(run_cli):
    run = run_cli("train", *GRID, RAISE, "+callbacks.fault.at_step=0", "seed=1,2")
    assert run.code == 1, run.out
    assert states(sweep_dir(run.root)) == [(0, "FAIL"), (1, "FAIL")]
    assert "no job of the sweep ended ok" in run.out


def test_the_median_pruner_stops_a_clearly_worse_trial(run_cli):
    # Trial 0 (lr 0.05) completes; trial 1 (lr 1e-7, barely moves) is worse at epoch 0.
    pruner = ["hydra.sweeper.pruner.n_startup_trials=1", "trainer.max_epochs=3"]
    run = run_cli("train", *GRID, *pruner, "optimizer.lr=0.05,1e-7")
    assert run.code == 0, run.out
    sweep = sweep_dir(run.root)
    assert states(sweep) == [(0, "COMPLETE"), (1, "PRUNED")]
    pruned = results(job_dirs(sweep)[1])
    assert (pruned["status"], pruned["pruned_at_epoch"]) == ("pruned", 0)
    trials = read_csv(sweep / "trials.csv")
    assert float(trials[1]["value"]) == pruned["metrics"]["final_val_loss"]  # its last report
    assert results(job_dirs(sweep)[0])["epochs"] == 3


def interrupt_when_paused(run_cli, marker: Path, *args: str) -> Run:
    """SIGINT to this process once a job pauses at `marker` (as tests/test_resume.py)."""

    def send() -> None:
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=send, daemon=True).start()
    return run_cli("train", *args)


def test_a_stopped_search_continues_its_running_trial_in_place(run_cli, tmp_path):
    marker = tmp_path / "paused"
    # One batch per training_step, so the pause (a batch-end hook) is mid-epoch at step 3.
    args = [*GRID, "optimizer.lr=0.01,0.02", "data.steps_per_chunk=1", PAUSE]
    args.append("+callbacks.pause.at_step=3")
    args.append(f"+callbacks.pause.marker={marker}")
    stopped = interrupt_when_paused(run_cli, marker, *args)
    assert stopped.code == 130, stopped.out
    sweep = sweep_dir(stopped.root)
    assert states(sweep) == [(0, "RUNNING")]  # the tables were written on the way out

    resumed = run_cli("train", *args, "resume=true")  # the marker exists: no second pause
    assert resumed.code == 0, resumed.out
    assert sweep_dir(resumed.root) == sweep
    assert states(sweep) == [(0, "COMPLETE"), (1, "COMPLETE")]
    jobs = job_dirs(sweep)
    assert sorted(jobs) == [0, 1]
    assert sessions(jobs[0])[-1]["resumed_from"]["step"] == 3  # from its own last.ckpt


# ------------------------------------------------------------ presets and settings
def test_the_grid_preset_runs_its_points_in_order(run_cli):
    run = run_cli(
        "train",
        "-m",
        "hparams_search=optuna_grid",
        *TINY,
        "hydra.sweeper.n_trials=3",
        "trainer.max_epochs=1",
    )
    assert run.code == 0, run.out
    trials = read_csv(sweep_dir(run.root) / "trials.csv")
    names = ["optimizer", "optimizer.lr", "model.hidden_sizes", "model.activation"]
    assert [[row[n] for n in names] for row in trials] == [
        ["sgd", "0.001", "[64]", "relu"],
        ["sgd", "0.001", "[64]", "tanh"],
        ["sgd", "0.001", "[64,64]", "relu"],
    ]


def test_bad_search_settings_give_one_line_each_and_exit_2(run_cli):
    bad = [
        "hydra.sweeper.sampler.name=bayes",
        "optimizer.lr=tag(log,interval(0,0.1))",
        "model.dropout=interval(0.5,0.1)",
    ]
    run = run_cli("train", *TPE, *bad)
    assert run.code == 2, run.out
    errors = [line for line in run.out.splitlines() if line.startswith("neuralab: error:")]
    assert errors == [
        "neuralab: error: hydra.sweeper.sampler.name='bayes' is not allowed; "
        "expected one of: tpe, random, grid",
        "neuralab: error: optimizer.lr='tag(log,interval(0,0.1))' is not allowed; "
        "expected a log interval with low > 0",
        "neuralab: error: model.dropout='interval(0.5,0.1)' is not allowed; "
        "expected interval(low, high) with low < high",
    ]
    assert not (run.root / "logs").exists()  # refused before any sweep dir or study
