"""A packed sweep stopped by SIGTERM continues: as a pack (bit for bit, on CPU) or, from
each member's own last.ckpt, one job at a time with the basic launcher.

The sweep runs as a real process; the signal goes when the pack's console line for its
second epoch appears (chunks of 5 steps, 20 an epoch, 12 epochs: the stop falls
mid-fit, at a chunk end or an epoch end, wherever the signal lands).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

TRAIN = str(Path(sys.executable).parent / "neuralab-train")
SWEEP = [
    "-m",
    "hydra/launcher=packed",
    "seed=1,2,3",
    "trainer.max_epochs=12",
    "data.steps_per_chunk=5",
    "callbacks.early_stopping=null",
    "callbacks.diagnostics=null",
    "callbacks.model_checkpoint.min_interval_s=0",
    "trainer.enable_progress_bar=false",
]


def run(args: list[str], cwd: Path, signal_after: str | None = None) -> int:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    out_path = cwd / "out.txt"
    with open(out_path, "a") as out:
        proc = subprocess.Popen([TRAIN, *args], cwd=cwd, env=env, stdout=out, stderr=out)
    if signal_after is not None:
        deadline = time.monotonic() + 180
        while signal_after not in out_path.read_text():
            assert proc.poll() is None, out_path.read_text()[-3000:]
            assert time.monotonic() < deadline, "the pack never reached its second epoch"
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=300)


def jobs(root: Path) -> dict[str, Path]:
    (sweep,) = (root / "logs" / "train" / "multiruns").iterdir()
    return {d.name: d for d in sorted(sweep.iterdir()) if (d / ".hydra").is_dir()}


def results(job: Path) -> dict:
    return json.loads((job / "results.json").read_text())


def weights(job: Path) -> dict[str, torch.Tensor]:
    return torch.load(job / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The same packed sweep, never stopped."""
    root = tmp_path_factory.mktemp("reference")
    assert run(SWEEP, root) == 0, (root / "out.txt").read_text()[-3000:]
    return root


def interrupt(root: Path) -> Path:
    """The sweep stopped by SIGTERM in its second epoch, in `root` (resumed in place:
    a moved run dir would get versioned checkpoint names, packed or not)."""
    root.mkdir()
    code = run(SWEEP, root, signal_after="pack of 3: epoch 2/12")
    assert code == 128 + signal.SIGTERM, (root / "out.txt").read_text()[-3000:]
    return root


@pytest.fixture
def interrupted(tmp_path) -> Path:
    return interrupt(tmp_path / "interrupted")


def test_sigterm_leaves_every_member_interrupted_with_its_checkpoint(interrupted):
    for name, job in jobs(interrupted).items():
        outcome = results(job)
        assert outcome["status"] == "interrupted", (name, outcome)
        assert 0 < outcome["interrupted_at_step"] < 12 * 20
        # Its own tensors only: the pack's stacked storage holds every member's weights.
        for name, tensor in weights(job).items():
            assert tensor.untyped_storage().nbytes() == tensor.numel() * 4, (job.name, name)
    steps = {results(job)["interrupted_at_step"] for job in jobs(interrupted).values()}
    assert len(steps) == 1  # one pack, one stop


def test_resumed_pack_ends_bit_equal_to_an_unstopped_one(interrupted, reference):
    root = interrupted
    assert run([*SWEEP, "resume=true"], root) == 0, (root / "out.txt").read_text()[-3000:]
    resumed, unstopped = jobs(root), jobs(reference)
    assert list(resumed) == list(unstopped)
    for name in unstopped:
        assert results(resumed[name])["status"] == "ok"
        assert results(resumed[name])["metrics"] == results(unstopped[name])["metrics"], name
        for key, value in weights(unstopped[name]).items():
            assert torch.equal(weights(resumed[name])[key], value), (name, key)


def test_members_continue_alone_with_the_basic_launcher(interrupted, reference):
    root = interrupted
    args = [*SWEEP, "resume=true", "hydra/launcher=basic"]
    assert run(args, root) == 0, (root / "out.txt").read_text()[-3000:]
    alone, unstopped = jobs(root), jobs(reference)
    for name in unstopped:
        got, want = results(alone[name]), results(unstopped[name])
        assert got["status"] == "ok" and got["epochs"] == want["epochs"] == 12
        for metric, value in want["metrics"].items():
            assert got["metrics"][metric] == pytest.approx(value, abs=1e-4), (name, metric)
