"""End-to-end training through the real entry points: what the runs learn and leave behind.

Every run goes through `neuralab-train` / `neuralab-eval` (in-process via `run_cli`,
or a fresh process for DDP) and is checked from what it wrote: results.json,
checkpoints/, event files. Small data and few epochs keep each run to seconds.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from conftest import Run

FIXED_EPOCHS = ["callbacks.early_stopping=null"]
XOR_MLP = [
    "data=xor",
    "model=mlp",
    "model.hidden_sizes=[8]",
    "model.activation=tanh",
    "optimizer.lr=0.05",
]


def trained(run: Run) -> dict:
    """The single run's results.json, after checking the run ended well."""
    assert run.code == 0, run.out
    results = run.results()
    assert results["status"] == "ok"
    return results


# --- what the models learn -------------------------------------------------------------


@pytest.mark.parametrize("gate", ["and", "or"])
def test_perceptron_learns_linearly_separable_gates(run_cli, gate):
    results = trained(run_cli("train", "model=perceptron", f"data={gate}"))
    assert results["metrics"]["test_acc"] == 1.0
    assert results["metrics"]["best_val_acc"] == 1.0
    assert results["hparams"]["optimizer"] == "perceptron_rule"
    # The rule counts its updates as steps, so the best checkpoint is written and tested.
    assert results["best_checkpoint"].endswith("checkpoints/best.ckpt")


def test_perceptron_cannot_learn_xor(run_cli):
    results = trained(run_cli("train", "model=perceptron", "data=xor"))
    assert results["metrics"]["test_acc"] <= 0.75


def test_mlp_learns_xor(run_cli):
    results = trained(run_cli("train", *XOR_MLP, "trainer.max_epochs=20"))
    assert results["metrics"]["test_acc"] == 1.0
    assert results["hparams"]["width"] == 8 and results["hparams"]["activation"] == "tanh"


# --- multirun and multi-process --------------------------------------------------------


def test_multirun_two_jobs(run_cli):
    run = run_cli(
        "train", "-m", "optimizer=sgd,adam", "data=iris", "trainer.max_epochs=2", *FIXED_EPOCHS
    )
    assert run.code == 0, run.out
    sweeps = list((run.root / "logs" / "train" / "multiruns").iterdir())
    assert len(sweeps) == 1, sweeps
    jobs = run.run_dirs()
    assert [j.name.partition("_")[0] for j in jobs] == ["0", "1"]  # <num>_<overrides>
    assert all(j.parent == sweeps[0] for j in jobs)
    optimizers = []
    for job in jobs:
        assert list(job.glob("events.out.tfevents.*")), f"no event file in {job}"
        assert (job / "checkpoints" / "best.ckpt").is_file()
        assert (job / "checkpoints" / "last.ckpt").is_file()
        results = run.results(job)
        assert results["status"] == "ok" and results["epochs"] == 2
        assert Path(results["best_checkpoint"]).resolve().parent.parent == job.resolve()
        optimizers.append(results["hparams"]["optimizer"])
    assert optimizers == ["sgd", "adam"]


# --- eval reproduces training ----------------------------------------------------------


def assert_eval_reproduces(run_cli, *train_overrides: str) -> None:
    train = run_cli("train", *train_overrides)
    expected = trained(train)["metrics"]
    run_dir = train.run_dir
    for arg in (f"ckpt_path={run_dir}/checkpoints/best.ckpt", f"run_dir={run_dir}"):
        before = set(train.run_dirs("eval"))
        ev = run_cli("eval", arg)
        assert ev.code == 0, ev.out
        (eval_dir,) = set(ev.run_dirs("eval")) - before
        results = ev.results(eval_dir)
        assert results["status"] == "ok"
        assert Path(results["checkpoint"]).name == "best.ckpt"
        got = results["metrics"]
        assert got["test/acc"] == pytest.approx(expected["test_acc"], abs=1e-6), arg
        assert got["test/loss"] == pytest.approx(expected["test_loss"], abs=1e-6), arg


def test_eval_reproduces_default_run(run_cli):
    assert_eval_reproduces(run_cli, "trainer.max_epochs=2", *FIXED_EPOCHS)


def test_eval_needs_no_overrides(run_cli):
    assert_eval_reproduces(
        run_cli,
        "model=mlp_batchnorm",
        "model.hidden_sizes=[32,16]",
        "model.activation=tanh",
        "data=wine",
        "init=he_normal",
        "trainer.max_epochs=3",
        *FIXED_EPOCHS,
    )


def test_eval_reproduces_perceptron(run_cli):
    assert_eval_reproduces(
        run_cli, "model=perceptron", "data=and", "trainer.max_epochs=3", *FIXED_EPOCHS
    )


# --- checkpoints -----------------------------------------------------------------------

PRIMITIVES = (str, int, float, bool, type(None))


def assert_primitive(value, where: str = "hyper_parameters") -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, str), f"{where}: key {key!r}"
            assert_primitive(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            assert_primitive(item, f"{where}[{i}]")
    else:
        assert type(value) in PRIMITIVES, f"{where} is a {type(value).__name__}: {value!r}"


@pytest.mark.parametrize("model", ["mlp", "perceptron"])
def test_checkpoints_hold_only_primitives(run_cli, model):
    data = "data=and" if model == "perceptron" else "data=iris"
    run = run_cli("train", f"model={model}", data, "scheduler=step", "trainer.max_epochs=1")
    trained(run)
    for name in ("best.ckpt", "last.ckpt"):
        checkpoint = torch.load(
            run.run_dir / "checkpoints" / name, map_location="cpu", weights_only=True
        )
        assert_primitive(checkpoint["hyper_parameters"])
        config = checkpoint["neuralab_config"]  # stamped into every file by neuralab-train
        assert type(config) is dict
        assert_primitive(config, "neuralab_config")
        assert config["choices"]["model"] == model
        assert config["seed"] == 42 and "_target_" in config["model"]


# --- determinism and regressions --------------------------------------------------------


def test_same_seed_same_metrics(run_cli):
    args = ("model=mlp_dropout", "data=wine", "trainer.max_epochs=3", *FIXED_EPOCHS)
    first = trained(run_cli("train", *args))["metrics"]
    second_run = run_cli("train", *args)
    assert second_run.code == 0, second_run.out
    _, second_dir = second_run.run_dirs()
    second = second_run.results(second_dir)["metrics"]
    assert first == second
    assert all(math.isfinite(v) for v in first.values())


def test_diabetes_trains_with_mse(run_cli):
    results = trained(run_cli("train", "data=diabetes", "trainer.max_epochs=2"))
    assert results["hparams"]["loss"] == "mse"
    metrics = results["metrics"]
    assert "test_acc" not in metrics
    assert math.isfinite(metrics["test_loss"]) and math.isfinite(metrics["best_val_loss"])


def test_diabetes_with_huber(run_cli):
    results = trained(run_cli("train", "data=diabetes", "loss=huber", "trainer.max_epochs=2"))
    assert results["hparams"]["loss"] == "huber"
    assert math.isfinite(results["metrics"]["test_loss"])


def test_progress_bar_off_needs_no_second_setting(run_cli):
    """trainer.enable_progress_bar=false alone (the progress_bar callback still
    configured) turns the bar off; Lightning alone would refuse the pair."""
    run = run_cli(
        "train",
        "data=iris",
        "trainer.max_epochs=1",
        "trainer.enable_progress_bar=false",
        fast=False,
    )
    assert run.code == 0, run.out[-2000:]
    assert "Epoch 0:" not in run.out


def test_max_steps_inside_the_first_epoch_ends_cleanly(run_cli):
    """No validation ran, so early stopping has no val/loss: it checks at validation's
    end only (Lightning's default, the train epoch's end, failed here)."""
    run = run_cli("train", "data=iris", "++trainer.max_steps=3")
    assert run.code == 0, run.out[-2000:]
    assert run.results()["status"] == "ok" and run.results()["epochs"] == 1
