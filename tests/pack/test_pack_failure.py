"""A pack that fails (a bug, not a member's divergence) fails each of its jobs the way a
lone job fails in a sweep: status failed, traceback.txt, the sweep goes on."""

from __future__ import annotations

import json

from neuralab.pack.module import PackedModule


def test_a_failing_pack_fails_its_jobs_and_the_sweep_goes_on(run_cli, monkeypatch):
    def broken(self, batch, batch_idx):
        raise RuntimeError("a bug inside the pack")

    monkeypatch.setattr(PackedModule, "training_step", broken)
    run = run_cli("train", "-m", "hydra/launcher=packed", "seed=1,2", "callbacks.diagnostics=null")
    assert run.code == 1, run.out[-3000:]  # no job ended ok (sweep/status.py)
    assert "Traceback" not in run.err
    (sweep,) = (run.root / "logs" / "train" / "multiruns").iterdir()
    jobs = sorted(d for d in sweep.iterdir() if (d / ".hydra").is_dir())
    assert len(jobs) == 2
    for job in jobs:
        results = json.loads((job / "results.json").read_text())
        assert results["status"] == "failed"
        assert "a bug inside the pack" in results["error"]
        assert "a bug inside the pack" in (job / "traceback.txt").read_text()
    assert "2 jobs: 2 failed" in run.out
