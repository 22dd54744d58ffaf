"""Failures of the machine lose nothing, and a run's record is honest.

- A checkpoint write that fails (a full disk, injected by patching the writer) leaves the
  previous best.ckpt/last.ckpt intact and loadable, ends the run `failed` with one line
  saying what failed and where, and `resume=true` then continues from the intact files.
- One process at a time trains in a run dir: a second one refuses with one line naming
  the holder; a holder killed hard (SIGKILL) keeps nothing.
- run_info counts untracked files under the package's source dir and conf/ as dirty.
"""

from __future__ import annotations

import errno
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import FAST, run_subprocess

from neuralab.runtime import checkpoint_io
from neuralab.runtime import run_info as run_info_module
from neuralab.runtime.faults import PauseAt
from neuralab.runtime.run_info import git_state

TRAIN = str(Path(sys.executable).parent / "neuralab-train")
EVERY_EPOCH = [
    "data=iris",
    "trainer.max_epochs=3",
    "callbacks.model_checkpoint.min_interval_s=0",  # every save written at once
    "logger=none",
    "test=false",
]


def test_a_failed_checkpoint_write_keeps_the_previous_files_and_resumes(run_cli, monkeypatch):
    real_save, calls = torch.save, []

    def disk_full_after_the_first_file(obj, f, *args, **kwargs):
        calls.append(f)
        if len(calls) == 1:
            return real_save(obj, f, *args, **kwargs)
        f.write(b"PK\x03\x04 half a file")  # what a full disk leaves: a partial temp file
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint_io.torch, "save", disk_full_after_the_first_file)
    failed = run_cli("train", *EVERY_EPOCH)
    monkeypatch.setattr(checkpoint_io.torch, "save", real_save)

    assert failed.code == 1, failed.out
    (line,) = failed.err.strip().splitlines()
    ckpts = failed.run_dir / "checkpoints"
    assert line.startswith(f"neuralab: failed: writing checkpoint {ckpts}/"), line
    assert "No space left on device (errno 28)" in line and "is intact" in line, line
    assert "Traceback" not in failed.out
    results = failed.results()
    assert results["status"] == "failed" and "No space left" in results["error"]
    assert sorted(p.name for p in ckpts.iterdir()) == ["best.ckpt", "last.ckpt"]  # no temp
    kept = {n: torch.load(ckpts / n, weights_only=True) for n in ("best.ckpt", "last.ckpt")}
    assert kept["best.ckpt"]["epoch"] == kept["last.ckpt"]["epoch"] == 0

    resumed = run_cli("train", *EVERY_EPOCH, "resume=true")
    assert resumed.code == 0, resumed.out
    assert resumed.run_dir == failed.run_dir
    results = resumed.results()
    assert results["status"] == "ok" and results["epochs"] == 3
    step = kept["last.ckpt"]["global_step"]
    assert results["run_info"]["resumed_from"] == {
        "checkpoint": str(ckpts / "last.ckpt"),
        "step": step,
    }


def test_a_failed_tensorboard_write_leaves_checkpoints_and_results_whole(run_cli, monkeypatch):
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    real_add, calls = EventFileWriter.add_event, []

    def io_error_after_a_while(self, event):
        calls.append(event)
        if len(calls) > 40:
            raise OSError(errno.EIO, "Input/output error")
        return real_add(self, event)

    monkeypatch.setattr(EventFileWriter, "add_event", io_error_after_a_while)
    run = run_cli("train", *[o for o in EVERY_EPOCH if o != "logger=none"])
    monkeypatch.setattr(EventFileWriter, "add_event", real_add)

    assert len(calls) > 40, "the injected failure never fired"
    assert run.code == 1, run.out
    results = run.results()  # complete JSON
    assert results["status"] == "failed" and "Input/output error" in results["error"]
    for path in (run.run_dir / "checkpoints").glob("*"):
        assert path.suffix == ".ckpt", path  # no temp file left behind
        assert "state_dict" in torch.load(path, weights_only=True)


def _pause(step: int, marker: Path) -> list[str]:
    target = f"{PauseAt.__module__}.{PauseAt.__name__}"
    return [
        f"+callbacks.pause._target_={target}",
        f"+callbacks.pause.at_step={step}",
        f"+callbacks.pause.marker={marker}",
    ]


def test_one_process_at_a_time_trains_in_a_run_dir(tmp_path):
    run_dir = tmp_path / "logs/train/runs/shared"
    command = [TRAIN, f"hydra.run.dir={run_dir}", "debug=limit", *FAST["train"]]
    marker = tmp_path / "paused"
    with open(tmp_path / "first.txt", "w") as out:
        first = subprocess.Popen(
            [*command, *_pause(7, marker)], cwd=tmp_path, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert first.poll() is None, (tmp_path / "first.txt").read_text()
            assert time.monotonic() < deadline, "the first run never reached its pause"
            time.sleep(0.05)
        saved = (run_dir / ".hydra/overrides.yaml").read_text()

        second = run_subprocess([*command, "resume=true"], tmp_path)
        assert second.code == 2, second.out
        (line,) = [x for x in second.out.splitlines() if x.startswith("neuralab: ")]
        assert f"hydra.run.dir='{run_dir}' is not allowed" in line, line
        assert f"pid {first.pid} on " in line and f"holds {run_dir}/.run.lock" in line, line
        assert (run_dir / ".hydra/overrides.yaml").read_text() == saved  # nothing rewritten
    finally:
        first.send_signal(signal.SIGKILL)  # killed hard: it cannot release anything itself
        first.wait(timeout=60)

    third = run_subprocess([*command, "resume=true"], tmp_path)
    assert third.code == 0, third.out
    assert third.results(run_dir)["status"] == "ok"


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@t", "-c", "user.name=t", "-C", str(root), *args],
        check=True,
        capture_output=True,
    )


@pytest.mark.fast
def test_untracked_code_and_configs_make_a_run_dirty(tmp_path):
    package, conf = tmp_path / "src/mypkg", tmp_path / "conf"
    for path in (package / "__init__.py", conf / "train.yaml", tmp_path / "README.md"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "start")

    (tmp_path / "notes.txt").write_text("an untracked file outside the code\n")
    state = git_state(package, conf)
    assert state["dirty"] is False and state["untracked"] == []

    (package / "new_net.py").write_text("x = 1\n")
    (conf / "model").mkdir()
    (conf / "model/new.yaml").write_text("a: 1\n")
    state = git_state(package, conf)
    assert state["dirty"] is True
    assert state["untracked"] == ["conf/model/new.yaml", "src/mypkg/new_net.py"]


def test_jobs_started_within_seconds_share_one_read_of_the_repository(monkeypatch):
    """run_info.json's git state: read again only when the last read is > GIT_FRESH_S old."""
    reads = []
    monkeypatch.setattr(run_info_module, "git_state", lambda: reads.append(1) or {"n": len(reads)})
    monkeypatch.setattr(run_info_module, "_git_read", [])
    clock = [100.0]
    monkeypatch.setattr(run_info_module.time, "monotonic", lambda: clock[0])
    first = run_info_module.recent_git_state()
    clock[0] += run_info_module.GIT_FRESH_S / 2
    second = run_info_module.recent_git_state()
    assert first == second == {"n": 1} and first is not second and len(reads) == 1
    clock[0] += run_info_module.GIT_FRESH_S
    assert run_info_module.recent_git_state() == {"n": 2}
