"""Runs that are stopped continue exactly: signals, hard kills, the resume rule, atomic files.

The signal tests run `neuralab-train` as a real process on digits (20 steps an epoch, 3
epochs), paused after a chosen step by `PauseAt` (it writes a marker, then waits), and
signalled once the marker exists, so the stop point is exact. The same command with
resume=true must then end with the metrics -- and TensorBoard scalars -- of a run that
was never stopped. Dropout and a per-step schedule (onecycle, which asks Lightning for
estimated_stepping_batches) make RNG, schedule and loader position matter.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from conftest import FAST, Run

from neuralab.data.loader import EpochSampler, InMemoryLoader
from neuralab.runtime.checkpoint_io import AtomicCheckpointIO, atomic_torch_save
from neuralab.runtime.faults import PauseAt

TRAIN = str(Path(sys.executable).parent / "neuralab-train")
# Chunks of 5 steps (20 an epoch): the pauses below land on chunk boundaries, mid-epoch.
# Every save written at once, so a SIGKILL finds the newest epoch's last.ckpt on disk.
EXACT = [
    "model=mlp_dropout",
    "scheduler=onecycle",
    "trainer.max_epochs=3",
    "data.steps_per_chunk=5",
    "callbacks.model_checkpoint.min_interval_s=0",
    *FAST["train"],
]
QUICK = ["debug=limit", *FAST["train"]]  # 5 steps an epoch, 3 epochs, in-process


def pause(step: int, marker: Path) -> list[str]:
    target = f"{PauseAt.__module__}.{PauseAt.__name__}"
    return [
        f"+callbacks.pause._target_={target}",
        f"+callbacks.pause.at_step={step}",
        f"+callbacks.pause.marker={marker}",
    ]


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(cwd / "out.txt", "a") as out:  # the child keeps its own copy of the handle
        return subprocess.Popen([TRAIN, *args], cwd=cwd, env=env, stdout=out, stderr=out)


def wait_for(marker: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not marker.exists():
        assert proc.poll() is None, (marker.parent / "out.txt").read_text()
        assert time.monotonic() < deadline, "the run never reached the pause step"
        time.sleep(0.05)


def finish(args: list[str], cwd: Path) -> Run:
    proc = start(args, cwd)
    code = proc.wait(timeout=300)
    return Run(code, (cwd / "out.txt").read_text(), cwd)


def scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Epoch metrics as TensorBoard shows them (purged steps hidden), per tag."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    from neuralab.runtime.tags import metric_name

    stages = ("train", "val", "test")
    tags = [t for t in events.Tags()["scalars"] if metric_name(t).split("/")[0] in stages]
    return {metric_name(t): [(e.step, e.value) for e in events.Scalars(t)] for t in tags}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Run:
    """The same training, never stopped."""
    root = tmp_path_factory.mktemp("reference")
    run = finish(EXACT, root)
    assert run.code == 0, run.out
    return run


def stopped_and_resumed(tmp_path: Path, sig: signal.Signals, step: int) -> tuple[Run, int]:
    marker = tmp_path / "paused"
    args = [*EXACT, *pause(step, marker)]
    proc = start(args, tmp_path)
    wait_for(marker, proc)
    proc.send_signal(sig)
    first_code = proc.wait(timeout=120)
    return finish([*args, "resume=true"], tmp_path), first_code


def assert_same_run(resumed: Run, reference: Run) -> None:
    assert resumed.code == 0, resumed.out
    assert resumed.results()["metrics"] == reference.results()["metrics"]
    assert scalars(resumed.run_dir) == scalars(reference.run_dir)  # no gap, no duplicate step


def test_sigterm_mid_epoch_saves_and_resume_matches_an_unstopped_run(tmp_path, reference):
    resumed, first_code = stopped_and_resumed(tmp_path, signal.SIGTERM, step=45)
    assert first_code == 128 + signal.SIGTERM, resumed.out
    assert_same_run(resumed, reference)
    sessions = json.loads((resumed.run_dir / "run_info.json").read_text())["sessions"]
    assert [s["resumed_from"] for s in sessions][0] is None
    assert sessions[1]["resumed_from"]["step"] == 45  # step 45 is mid-epoch: 20 steps an epoch


def test_sigkill_resumes_from_the_last_epoch_checkpoint(tmp_path, reference):
    resumed, first_code = stopped_and_resumed(tmp_path, signal.SIGKILL, step=25)
    assert first_code == -signal.SIGKILL
    assert_same_run(resumed, reference)
    sessions = json.loads((resumed.run_dir / "run_info.json").read_text())["sessions"]
    assert sessions[1]["resumed_from"]["step"] == 20  # epoch 0's last.ckpt


def interrupt_in_process(run_cli, tmp_path: Path, step: int | str, *overrides: str) -> Run:
    """SIGINT to this process once the run pauses after `step` (in-process: no import cost)."""
    marker = tmp_path / "paused"

    def send_when_paused() -> None:
        deadline = time.monotonic() + 60
        while not marker.exists():
            if time.monotonic() > deadline:
                return  # the run failed early; the test reports it
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=send_when_paused, daemon=True).start()
    return run_cli("train", *overrides, *QUICK, *pause(step, marker))  # -m must come first


def test_sigint_stops_with_130_and_the_resume_rule(run_cli, tmp_path):
    stopped = interrupt_in_process(run_cli, tmp_path, 7)
    assert stopped.code == 130, stopped.out
    run_dir = stopped.run_dir
    results = stopped.results()
    assert (results["status"], results["interrupted_at_step"]) == ("interrupted", 7)
    assert Path(results["checkpoint"]) == run_dir / "checkpoints" / "last.ckpt"
    assert torch.load(results["checkpoint"], weights_only=True)["global_step"] == 7

    # The same command + resume=true continues in the same dir, from step 7.
    resumed = run_cli("train", *QUICK, *pause(7, tmp_path / "paused"), "resume=true")
    assert resumed.code == 0, resumed.out
    assert resumed.run_dir == run_dir and resumed.results()["status"] == "ok"
    assert "continuing from" in resumed.out and "(step 7)" in resumed.out

    # Once it has ended, resuming again leaves it alone (exit 0, nothing rewritten).
    mtime = (run_dir / "results.json").stat().st_mtime_ns
    again = run_cli("train", *QUICK, *pause(7, tmp_path / "paused"), "ckpt_path=last")
    assert again.code == 0, again.out
    assert "nothing to resume" in again.out
    assert (run_dir / "results.json").stat().st_mtime_ns == mtime
    assert len(again.run_dirs()) == 1


@pytest.mark.parametrize("step, stops_at", [(5, 6), (15, 15)], ids=["epoch-end", "fit-end"])
def test_a_signal_at_an_epochs_last_batch_waits_for_its_end(run_cli, tmp_path, step, stops_at):
    """Saved after the last batch, Lightning would resume past the epoch's validation:
    the stop waits for the next epoch's first batch, or for the end of fit."""
    reference = run_cli("train", *QUICK, "++seed=3")
    reference_dir, expected = reference.run_dir, reference.results()["metrics"]
    stopped = interrupt_in_process(run_cli, tmp_path, step, "++seed=3")
    assert stopped.code == 130, stopped.out
    (run_dir,) = set(stopped.run_dirs()) - {reference_dir}
    assert stopped.results(run_dir)["interrupted_at_step"] == stops_at
    resumed = run_cli("train", *QUICK, "++seed=3", *pause(step, tmp_path / "paused"), "resume=true")
    assert resumed.code == 0, resumed.out
    assert resumed.results(run_dir)["metrics"] == expected
    assert scalars(run_dir) == scalars(reference_dir)  # epoch 0's validation is there too


def test_a_stopped_sweep_resumes_in_its_own_dirs(run_cli, tmp_path):
    stopped = interrupt_in_process(run_cli, tmp_path, "null,7", "-m")
    assert stopped.code == 130, stopped.out  # the sweep stops: the user asked for it
    jobs = stopped.run_dirs()
    assert [stopped.results(j)["status"] for j in jobs] == ["ok", "interrupted"]

    args = ["-m", *QUICK, *pause("null,7", tmp_path / "paused"), "resume=true"]
    resumed = run_cli("train", *args)
    assert resumed.code == 0, resumed.out
    assert resumed.run_dirs() == jobs  # the same sweep dir, the same job dirs
    assert [resumed.results(j)["status"] for j in jobs] == ["ok", "ok"]
    sessions = [json.loads((j / "run_info.json").read_text())["sessions"] for j in jobs]
    assert [len(s) for s in sessions] == [1, 2]  # job 0 was done: left alone
    assert sessions[1][1]["resumed_from"]["step"] == 7


def test_resume_without_an_earlier_run_starts_a_new_one(run_cli):
    run = run_cli("train", *QUICK, "resume=true")
    assert run.code == 0, run.out
    assert run.results()["status"] == "ok"


def test_ckpt_path_starts_a_new_run_from_that_state(run_cli):
    first = run_cli("train", *QUICK)
    assert first.code == 0, first.out
    first_dir = first.run_dir
    last = first_dir / "checkpoints" / "last.ckpt"
    more = run_cli("train", *QUICK, f"ckpt_path={last}", "trainer.max_epochs=4")
    assert more.code == 0, more.out
    (new_dir,) = set(more.run_dirs()) - {first_dir}
    assert more.results(new_dir)["epochs"] == 4  # epochs 0-2 came from the checkpoint
    assert "continuing from" in more.out and "(step 15)" in more.out


def test_run_info_records_seed_versions_device_and_git(run_cli):
    run = run_cli("train", *QUICK, "seed=7")
    info = run.results()["run_info"]
    assert info["seed"] == 7 and info["resumed_from"] is None
    assert {"python", "torch", "lightning", "hydra-core", "numpy"} <= set(info["versions"])
    assert info["versions"]["torch"] and info["versions"]["lightning"]
    assert info["device"]["accelerator"] == "CPUAccelerator" and info["device"]["root_device"]
    assert info["host"] and info["started_at"]
    assert info["git"] is None or len(info["git"]["commit"] or "") in (0, 40)


# --- the parts ----------------------------------------------------------------------------


def _batches(loader: InMemoryLoader, n: int | None = None) -> list[list[int]]:
    out = []
    for x, _ in loader:
        out.append(x[:, 0].long().tolist())
        if n is not None and len(out) == n:
            break
    return out


def _loader(epoch: int) -> InMemoryLoader:
    x = torch.arange(50.0)[:, None]
    sampler = EpochSampler(50, shuffle=True, seed=3)
    sampler.set_epoch(epoch)
    return InMemoryLoader((x, torch.zeros(50)), 8, sampler)


def test_loader_state_resumes_the_epoch_where_it_stopped():
    whole = _batches(_loader(2))
    first = _loader(2)
    seen = _batches(first, 3)
    state = first.state_dict()
    assert state == {"epoch": 2, "batches": 3}

    resumed = _loader(0)
    resumed.load_state_dict(state)
    resumed.load_state_dict(state)  # Lightning and ExactResume both load it: skip once
    resumed.sampler.set_epoch(2)  # what Lightning does before the first batch
    assert seen + _batches(resumed) == whole
    assert _batches(resumed) == whole  # the next pass is a whole epoch again


def test_loader_state_of_another_epoch_skips_nothing():
    loader = _loader(0)
    loader.load_state_dict({"epoch": 1, "batches": 7})
    loader.sampler.set_epoch(2)
    assert _batches(loader) == _batches(_loader(2))


def test_atomic_save_never_leaves_half_a_file(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "last.ckpt"
    atomic_torch_save({"step": 1}, path)

    def crash(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        AtomicCheckpointIO().save_checkpoint({"step": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"step": 1}
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]  # no temp file left


def test_checkpoint_io_loads_with_weights_only(tmp_path):
    path = tmp_path / "unsafe.ckpt"
    torch.save({"factory": functools.partial(int, "3")}, path)  # needs code to unpickle
    with pytest.raises(Exception, match="[Ww]eights only"):
        AtomicCheckpointIO().load_checkpoint(path, weights_only=False)


@pytest.mark.parametrize("as_list", [False, True])  # True: checkpoints before 2026-12-07
def test_rng_states_round_trip_through_a_weights_only_checkpoint(tmp_path, as_list):
    import random

    import numpy as np

    from neuralab.runtime.exact_resume import collect_rng_states, set_rng_states

    random.seed(5), np.random.seed(5), torch.manual_seed(5)
    states = collect_rng_states()
    assert isinstance(states["python"]["state"], torch.Tensor)  # one object, not 625
    if as_list:
        states["python"]["state"] = states["python"]["state"].tolist()
    atomic_torch_save({"rng": states}, tmp_path / "rng.ckpt")
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    set_rng_states(torch.load(tmp_path / "rng.ckpt", weights_only=True)["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
