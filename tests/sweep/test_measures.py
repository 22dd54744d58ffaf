"""neuralab.sweep.measures on hand-made job dirs (no training): each measure reads
the files a job writes and returns the number it promises, or None."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from torch.utils.tensorboard import SummaryWriter

from neuralab.sweep.measures import MEASURES


def job_dir(tmp_path: Path, metrics: dict, status: str = "ok", **files: object) -> Path:
    (tmp_path / ".hydra").mkdir()
    config = {"data": {"task": "classification"}, "report": {"target": 0.8}}
    (tmp_path / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    results = {"status": status, "metrics": metrics, "epochs": 4}
    (tmp_path / "results.json").write_text(json.dumps(results))
    for name, content in files.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(content))
    return tmp_path


def write_scalars(path: Path, scalars: dict[str, list[tuple[int, float]]]) -> None:
    writer = SummaryWriter(str(path))
    for tag, points in scalars.items():
        for step, value in points:
            writer.add_scalar(tag, value, step)
    writer.close()


def test_result_and_timing_measures(tmp_path):
    path = job_dir(
        tmp_path, {"final_train_acc": 1.0, "final_val_acc": 0.75}, timing={"train_s": 2.0}
    )
    assert MEASURES["train_val_gap"](path) == pytest.approx(0.25)
    assert MEASURES["sec_per_epoch"](path) == pytest.approx(0.5)
    assert MEASURES["diverged"](path) == 0.0


def test_diverged_and_missing_values(tmp_path):
    path = job_dir(tmp_path, {}, status="diverged")
    assert MEASURES["diverged"](path) == 1.0
    for name in ("train_val_gap", "sec_per_epoch", "epochs_to_target", "first_layer_grad_norm"):
        assert MEASURES[name](path) is None, name


def test_epochs_to_target_uses_the_configs_target(tmp_path):
    path = job_dir(tmp_path, {})
    write_scalars(path, {"val/acc": [(9, 0.5), (19, 0.85), (29, 0.95)]})
    assert MEASURES["epochs_to_target"](path) == 2.0  # report.target 0.8: reached at epoch 2


def test_first_layer_grad_norm_averages_the_first_epoch(tmp_path):
    path = job_dir(tmp_path, {})
    write_scalars(
        path,
        {
            "grad_norm/layer00_blocks.0.linear": [(0, 2.0), (5, 4.0), (10, 100.0)],
            "grad_norm/layer01_head": [(0, 7.0)],
            "train/loss": [(9, 1.0), (19, 0.5)],  # epoch 0 ends at step 9
        },
    )
    assert MEASURES["first_layer_grad_norm"](path) == pytest.approx(3.0)


def test_hidden_unit_spread_is_zero_for_identical_units(tmp_path):
    path = job_dir(tmp_path, {})
    (path / "checkpoints").mkdir()
    same = {"net.blocks.0.linear.weight": torch.ones(4, 3), "net.head.weight": torch.randn(2, 4)}
    torch.save({"state_dict": same}, path / "checkpoints" / "last.ckpt")
    assert MEASURES["hidden_unit_spread"](path) == 0.0
    rows = torch.tensor([[0.0, 0.0], [2.0, 2.0]])  # per-input std over the 2 units: sqrt(2)
    torch.save(
        {"state_dict": {"net.blocks.0.linear.weight": rows}}, path / "checkpoints" / "last.ckpt"
    )
    assert MEASURES["hidden_unit_spread"](path) == pytest.approx(2**0.5)
