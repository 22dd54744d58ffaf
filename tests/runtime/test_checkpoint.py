"""Checkpoint files: each state written once, last.ckpt always the newest state, fsync opt-in."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from conftest import train_in

from neuralab.runtime.checkpoint_io import AtomicCheckpointIO

EPOCHS = 4


def _train(run_cli, *overrides: str):
    run = run_cli("train", "data=iris", f"trainer.max_epochs={EPOCHS}", "test=false", *overrides)
    assert run.code == 0, run.out
    ckpts = run.run_dir / "checkpoints"
    return [torch.load(ckpts / n, weights_only=True) for n in ("best.ckpt", "last.ckpt")], ckpts


def test_an_improving_last_epoch_links_last_to_best(run_cli):
    # val/loss falls every epoch of this short run: the final epoch is also the best.
    (best, last), ckpts = _train(run_cli)
    assert best["epoch"] == last["epoch"] == EPOCHS - 1
    assert (ckpts / "best.ckpt").stat().st_ino == (ckpts / "last.ckpt").stat().st_ino


def test_last_holds_the_newest_state_when_the_best_is_older(run_cli):
    # mode=max on a falling loss: the first epoch stays "best", later ones never link.
    (best, last), ckpts = _train(run_cli, "monitor.mode=max")
    assert best["epoch"] == 0
    assert last["epoch"] == EPOCHS - 1 and last["global_step"] > best["global_step"]
    assert (ckpts / "best.ckpt").stat().st_ino != (ckpts / "last.ckpt").stat().st_ino


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_checkpoint_files_follow_the_umask(run_cli, umask):
    # As open() would create them: readable by the group/others the umask allows.
    old = os.umask(umask)
    try:
        _, ckpts = _train(run_cli, "monitor.mode=max")  # best and last: two files
    finally:
        os.umask(old)
    for name in ("best.ckpt", "last.ckpt"):
        assert (ckpts / name).stat().st_mode & 0o777 == 0o666 & ~umask, name


@pytest.mark.parametrize("fsync, expected_calls", [(False, 0), (True, 2)])  # the file + its dir
def test_fsync_is_a_setting(tmp_path, monkeypatch, fsync, expected_calls):
    calls = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd)))
    AtomicCheckpointIO(fsync=fsync).save_checkpoint({"step": 1}, tmp_path / "last.ckpt")
    assert len(calls) == expected_calls
    assert torch.load(tmp_path / "last.ckpt", weights_only=True) == {"step": 1}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _files(root: Path, *overrides: str) -> tuple[dict, dict]:
    train_in(root, "data=iris", f"trainer.max_epochs={EPOCHS}", "test=false", *overrides)
    (ckpts,) = root.glob("logs/train/runs/*/checkpoints")
    best, last = (torch.load(ckpts / n, weights_only=True) for n in ("best.ckpt", "last.ckpt"))
    return best, last


def test_deferred_writes_keep_best_and_last_exact(tmp_path):
    """By default files are written at most every 10 s: the epochs between keep their
    best state in memory. The files at the end must be those of writing every save."""
    at_once = "callbacks.model_checkpoint.min_interval_s=0"
    for mode in ("min", "max"):  # best = the last epoch, or epoch 0 (a falling loss)
        deferred = _files(tmp_path / mode, f"monitor.mode={mode}")
        written = _files(tmp_path / f"{mode}_at_once", f"monitor.mode={mode}", at_once)
        for a, b in zip(deferred, written, strict=True):
            assert a["global_step"] == b["global_step"] and a["epoch"] == b["epoch"]
            assert _same(a["state_dict"], b["state_dict"])
            assert _same(a["optimizer_states"][0]["state"][0], b["optimizer_states"][0]["state"][0])


def test_a_failed_run_writes_the_best_state_it_kept(run_cli):
    """iris: 7 steps an epoch, val/loss falls every epoch. The fault at step 21 (epoch 3's
    start) ends the run; epochs 1 and 2 were only in memory (10 s between writes), and
    the failure writes epoch 2's state: best.ckpt, and last.ckpt (the same state)."""
    fault = [
        "+callbacks.fault._target_=neuralab.runtime.faults.RaiseAt",
        "+callbacks.fault.at_step=21",
    ]
    run = run_cli("train", "data=iris", "trainer.max_epochs=5", *fault)
    assert run.code == 1, run.out[-2000:]
    ckpts = run.run_dir / "checkpoints"
    best, last = (torch.load(ckpts / n, weights_only=True) for n in ("best.ckpt", "last.ckpt"))
    assert best["global_step"] == last["global_step"] == 21 and best["epoch"] == 2


@pytest.mark.parametrize("value", [-1, "soon", True])
def test_a_bad_interval_is_one_clear_error(run_cli, value):
    run = run_cli("train", f"callbacks.model_checkpoint.min_interval_s={value}")
    assert run.code == 2, run.out[-2000:]
    assert "callbacks.model_checkpoint.min_interval_s" in run.out
    # -1 is refused by ModelCheckpoint itself; a value of another type before any import
    # (checks.check_types), naming the default instead of the bound
    assert "a number >= 0" in run.out or "a number (the default is 10)" in run.out


def test_no_checkpoint_callback_writes_no_checkpoint(run_cli):
    """callbacks=none means no checkpoints: Lightning must not add its default
    ModelCheckpoint (a file every epoch); the test stage uses the final weights."""
    run = run_cli("train", "data=iris", "trainer.max_epochs=2", "callbacks=none")
    assert run.code == 0, run.out[-2000:]
    assert not list(run.run_dir.rglob("*.ckpt"))
    assert run.results()["best_checkpoint"] is None and "test_acc" in run.results()["metrics"]
