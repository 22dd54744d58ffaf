"""Checkpoint files: each state written once, last.ckpt always the newest state, fsync opt-in."""

from __future__ import annotations

import os

import pytest
import torch

from neuralab.utils.checkpoint_io import AtomicCheckpointIO

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


@pytest.mark.parametrize("fsync, expected_calls", [(False, 0), (True, 2)])  # the file + its dir
def test_fsync_is_a_setting(tmp_path, monkeypatch, fsync, expected_calls):
    calls = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd)))
    AtomicCheckpointIO(fsync=fsync).save_checkpoint({"step": 1}, tmp_path / "last.ckpt")
    assert len(calls) == expected_calls
    assert torch.load(tmp_path / "last.ckpt", weights_only=True) == {"step": 1}
