"""scripts/lab/pack_equivalence.py compares twin jobs by their largest differences."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts" / "lab"
sys.path.insert(0, str(SCRIPTS))  # the script imports its sibling contenders.py
import pack_equivalence as eq  # noqa: E402


def job(root: Path, name: str, weight: float, acc: float) -> Path:
    path = root / name
    (path / "checkpoints").mkdir(parents=True)
    for ckpt, shift in (("last", 0.0), ("best", 1.0)):
        state = {"net.w": torch.tensor([1.0, weight + shift]), "net.b": torch.zeros(2)}
        torch.save({"state_dict": state}, path / "checkpoints" / f"{ckpt}.ckpt")
    metrics = {"test/acc": acc, "test/loss": 0.5, "note": "not a number"}
    (path / "results.json").write_text(json.dumps({"metrics": metrics}))
    return path


def test_the_largest_weight_and_metric_differences_over_every_pair(tmp_path):
    packed = [job(tmp_path, "p0", 2.0, 0.9), job(tmp_path, "p1", 3.0, 0.8)]
    alone = [job(tmp_path, "a0", 2.25, 0.9), job(tmp_path, "a1", 3.0, 0.85)]
    found = eq.compare(packed, alone)
    assert found == pytest.approx({"weights": 0.25, "metrics": 0.05})
    assert "| x | 2.5e-01 | 5.0e-02 |" in eq.table({"x": found})


def test_twins_that_hold_different_keys_are_refused(tmp_path):
    packed, alone = job(tmp_path, "p", 1.0, 0.9), job(tmp_path, "a", 1.0, 0.9)
    (alone / "results.json").write_text(json.dumps({"metrics": {"test/acc": 0.9}}))
    with pytest.raises(AssertionError, match="differ in what they hold"):
        eq.compare([packed], [alone])
