"""A job that fails inside a sweep is recorded in its own run dir and the sweep goes on;
the multirun exits non-zero only if no job ended ok, or at once with fail_fast=true.

Failures are injected with `RaiseAt` (a RuntimeError at a chosen step; null: never) and
with bad input (optimizer.lr=0), on `debug=limit` runs of a few steps.
"""

from __future__ import annotations

from conftest import Run

from neuralab.runtime.faults import RaiseAt

QUICK = ["debug=limit", f"+callbacks.fault._target_={RaiseAt.__module__}.{RaiseAt.__name__}"]


def statuses(run: Run) -> list[str]:
    return [run.results(job)["status"] for job in run.run_dirs()]


def test_a_failed_job_is_recorded_and_the_sweep_goes_on(run_cli):
    run = run_cli("train", "-m", *QUICK, "+callbacks.fault.at_step=3,null")
    assert run.code == 0, run.out
    assert statuses(run) == ["failed", "ok"]
    failed_dir = run.run_dirs()[0]
    results = run.results(failed_dir)
    assert results["error"] == "RuntimeError: injected failure at step 3"
    assert results["traceback"] == "traceback.txt"
    trace = (failed_dir / "traceback.txt").read_text()
    assert trace.startswith("Traceback") and "RuntimeError: injected failure at step 3" in trace
    assert "injected failure at step 3" in (failed_dir / "train.log").read_text()
    assert results["run_info"]["seed"] == 42  # training had started: its metadata is kept


def test_bad_input_in_one_job_fails_that_job_only(run_cli):
    run = run_cli("train", "-m", "debug=limit", "optimizer.lr=0,0.01")
    assert run.code == 0, run.out
    assert statuses(run) == ["failed", "ok"]
    error = run.results(run.run_dirs()[0])["error"]
    assert error == "optimizer.lr=0 is not allowed; expected a number > 0"


def test_a_sweep_where_every_job_failed_exits_1(run_cli):
    run = run_cli("train", "-m", *QUICK, "+callbacks.fault.at_step=1", "seed=1,2")
    assert run.code == 1, run.out
    assert statuses(run) == ["failed", "failed"]
    assert "no job of the sweep ended ok" in run.out
    assert (run.run_dirs()[0].parent / "results.csv").is_file()  # the table was still written


def test_fail_fast_stops_the_sweep_at_the_first_failure(run_cli):
    run = run_cli("train", "-m", *QUICK, "+callbacks.fault.at_step=1,null", "fail_fast=true")
    assert run.code == 1, run.out
    assert statuses(run) == ["failed"]  # the second job never started


def test_a_failing_single_run_keeps_its_traceback_and_exits_1(run_cli):
    run = run_cli("train", *QUICK, "+callbacks.fault.at_step=2")
    assert run.code == 1, run.out
    assert run.results()["status"] == "failed"
    assert "RuntimeError: injected failure at step 2" in (run.run_dir / "traceback.txt").read_text()
