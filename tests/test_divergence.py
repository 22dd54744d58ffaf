"""A NaN/Inf training loss ends that run as `diverged`, names its first step, keeps the
last good checkpoint, and lets the other jobs of a sweep go on.

`debug=diverge` turns the weights NaN just before step 7 (5 steps an epoch, 3 epochs),
so epoch 0's last.ckpt (step 5) is the last good one.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch

from neuralab.runtime.divergence import Diverged, DivergenceGuard


def assert_last_checkpoint_is_good(run_dir: Path, step: int) -> None:
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == step
    assert all(torch.isfinite(t).all() for t in checkpoint["state_dict"].values())


def test_diverged_job_in_a_sweep_while_the_others_succeed(run_cli):
    run = run_cli("train", "-m", "debug=limit,diverge,fast")
    assert run.code == 0, run.out  # one job diverged, the sweep still succeeded
    jobs = run.run_dirs()
    statuses = [run.results(job)["status"] for job in jobs]
    assert statuses == ["ok", "diverged", "ok"], run.out

    diverged = run.results(jobs[1])
    assert diverged["diverged_at_step"] == 7
    assert "training loss is nan at step 7" in diverged["error"]
    assert diverged["last_checkpoint"] == str(jobs[1] / "checkpoints" / "last.ckpt")
    assert_last_checkpoint_is_good(jobs[1], step=5)
    assert "step 7" in (jobs[1] / "train.log").read_text()
    assert all(v is None or math.isfinite(v) for v in diverged["metrics"].values())

    # The sweep's results table shows it.
    with open(jobs[0].parent / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == statuses


def test_a_single_diverged_run_exits_3_with_one_line(run_cli):
    run = run_cli("train", "debug=diverge", "callbacks.poison_weights.at_step=2")
    assert run.code == 3, run.out
    lines = [line for line in run.out.splitlines() if line.startswith("neuralab: diverged: ")]
    assert len(lines) == 1 and "at step 2" in lines[0], run.out
    assert "no checkpoint was saved" in lines[0]  # it diverged in epoch 0
    assert run.results()["status"] == "diverged"
    assert not (run.run_dir / "checkpoints" / "last.ckpt").exists()


def test_a_finished_diverged_run_is_not_resumed(run_cli):
    first = run_cli("train", "debug=diverge")
    assert first.code == 3, first.out
    again = run_cli("train", "debug=diverge", "resume=true")
    assert again.code == 0 and "nothing to resume" in again.out, again.out
    assert again.run_dirs() == first.run_dirs()


# --- the guard itself ---------------------------------------------------------------------


class FakeTrainer:
    global_step = 0


def _steps(guard: DivergenceGuard, losses: list[float]) -> None:
    trainer = FakeTrainer()
    for step, loss in enumerate(losses):
        trainer.global_step = step
        guard.on_train_batch_start(trainer, None, None, step)
        trainer.global_step = step + 1
        guard.on_train_batch_end(trainer, None, {"loss": torch.tensor(loss)}, None, step)


def test_guard_names_the_first_bad_step_when_it_next_checks(tmp_path):
    guard = DivergenceGuard(check_every_n_steps=10, last_checkpoint=tmp_path / "last.ckpt")
    _steps(guard, [1.0, 0.9, math.inf, math.nan, 0.8])  # no check yet: no sync, no stop
    with pytest.raises(Diverged, match="loss is inf at step 2") as caught:
        guard.on_train_epoch_end(FakeTrainer(), None)
    assert caught.value.step == 2 and caught.value.checkpoint is None


def test_guard_refuses_to_save_a_diverged_checkpoint(tmp_path):
    guard = DivergenceGuard(check_every_n_steps=100, last_checkpoint=tmp_path / "last.ckpt")
    _steps(guard, [1.0, 2.0])
    guard.on_save_checkpoint(FakeTrainer(), None, {})  # finite so far: saving is fine
    _steps(guard, [math.nan])
    with pytest.raises(Diverged):
        guard.on_save_checkpoint(FakeTrainer(), None, {})


def test_guard_checks_every_n_steps(tmp_path):
    guard = DivergenceGuard(check_every_n_steps=2, last_checkpoint=tmp_path / "last.ckpt")
    with pytest.raises(Diverged, match="at step 1"):
        _steps(guard, [1.0, math.nan])  # the batch end of step 2 checks
