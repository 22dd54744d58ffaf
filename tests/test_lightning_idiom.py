"""A LightningModule in Lightning's own idiom works under the default config.

tests/fixtures/src/fork_examples/lit_classifier.py is written as Lightning's style
guide teaches (`x, y = batch`, torchmetrics + `self.log`, its own optimizer, no
neuralab base class). Through `neuralab-train module=lit_classifier` and nothing
else changed (the default data.steps_per_chunk included) it trains, validates and
tests; `neuralab-eval` rebuilds it; it resumes exactly after a signal; it runs in a
multirun and under Optuna; its own metric names drive monitor, results and tables.
"""

from __future__ import annotations

import csv
import math
import signal

import pytest
import torch
from conftest import FIXTURES, FORK_CONF
from test_resume import EXACT, finish, pause, start, wait_for

from neuralab.metrics import METRICS, Metric
from neuralab.runtime.checkpoint_files import CONFIG_KEY

LIT = [FORK_CONF, "module=lit_classifier", "trainer.max_epochs=3"]


def ok(run) -> dict:
    assert run.code == 0, run.out[-3000:]
    results = run.results()
    assert results["status"] == "ok", results
    return results


@pytest.mark.fast
def test_it_trains_validates_tests_and_reports_its_own_metrics(run_cli):
    results = ok(run_cli("train", *LIT, "monitor.metric=val/acc", "monitor.mode=max"))
    metrics = results["metrics"]
    assert results["epochs"] == 3
    for key in ("final_train_loss", "final_val_acc", "best_val_acc", "best_val_loss", "test_acc"):
        assert math.isfinite(metrics[key]), key
    assert metrics["best_val_acc"] >= metrics["final_val_acc"]  # a running max
    assert metrics["test_acc"] > 0.8  # digits, 3 epochs: it really learned
    assert results["hparams"]["module.lr"] == 0.01  # its own settings are HParams columns


@pytest.mark.fast
def test_its_checkpoint_evaluates_without_saving_a_config(run_cli):
    train = run_cli("train", *LIT)
    trained = ok(train)
    checkpoint = torch.load(train.run_dir / "checkpoints/best.ckpt", weights_only=True)
    assert "config" not in checkpoint["hyper_parameters"]  # the module saved none...
    assert checkpoint[CONFIG_KEY]["module"]["lr"] == 0.01  # ...neuralab stamped it in

    evaluated = run_cli("eval", FORK_CONF, f"run_dir={train.run_dir}")
    assert evaluated.code == 0, evaluated.out[-3000:]
    (eval_dir,) = evaluated.run_dirs("eval")
    metrics = evaluated.results(eval_dir)["metrics"]
    assert metrics["test/acc"] == pytest.approx(trained["metrics"]["test_acc"], abs=1e-6)


def test_it_gets_plain_batches_not_chunks(run_cli):
    # data.steps_per_chunk is 100 by default; a chunk would break `x, y = batch`.
    results = ok(run_cli("train", *LIT, "trainer.max_epochs=1", "data.steps_per_chunk=7"))
    assert results["epochs"] == 1


@pytest.mark.fast
def test_a_metric_it_does_not_log_is_refused_naming_those_it_does(run_cli):
    run = run_cli("train", *LIT, "monitor.metric=val/f1")
    assert run.code == 2, run.out[-3000:]
    assert "monitor.metric='val/f1'" in run.out and "val/acc, val/loss" in run.out


def test_it_resumes_after_sigterm_as_if_never_stopped(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(FIXTURES / "src"))  # the processes import it
    args = [
        FORK_CONF,
        "module=lit_classifier",
        *[a for a in EXACT if not a.startswith("scheduler=")],  # its own optimizer, no schedule
    ]
    (tmp_path / "reference").mkdir()
    reference = finish(args, tmp_path / "reference")
    assert reference.code == 0, reference.out[-3000:]
    marker = tmp_path / "paused"
    proc = start([*args, *pause(45, marker)], tmp_path)
    wait_for(marker, proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 128 + signal.SIGTERM
    resumed = finish([*args, *pause(45, marker), "resume=true"], tmp_path)
    assert resumed.code == 0, resumed.out[-3000:]
    weights = [
        torch.load(run.run_dir / "checkpoints/last.ckpt", weights_only=True)["state_dict"]
        for run in (resumed, reference)
    ]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])  # bit for bit
    # Val and test metrics match exactly. The interrupted epoch's train/* means do not:
    # Lightning keeps self.log's epoch accumulators out of checkpoints (neuralab's own
    # modules keep their sums in theirs), so they cover the batches after the resume.
    mine, theirs = resumed.results()["metrics"], reference.results()["metrics"]
    assert {k: v for k, v in mine.items() if "train" not in k} == {
        k: v for k, v in theirs.items() if "train" not in k
    }


def test_it_runs_in_a_multirun_with_one_row_per_job(run_cli):
    run = run_cli("train", "-m", *LIT, "trainer.max_epochs=1", "module.lr=0.01,0.05")
    assert run.code == 0, run.out[-3000:]
    (sweep,) = (run.root / "logs/train/multiruns").iterdir()
    with open(sweep / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert all(math.isfinite(float(r["best_val_loss"])) for r in rows)


def test_optuna_gets_its_objective(run_cli):
    grid = ["-m", "hydra/sweeper=optuna", "hydra.sweeper.sampler.name=grid"]
    run = run_cli("train", *grid, *LIT, "trainer.max_epochs=1", "module.lr=0.01,0.05")
    assert run.code == 0, run.out[-3000:]
    (sweep,) = (run.root / "logs/train/multiruns").iterdir()
    with open(sweep / "trials.csv") as f:
        trials = list(csv.DictReader(f))
    assert len(trials) == 2
    assert all(math.isfinite(float(t["value"])) for t in trials), trials


@pytest.mark.fast
def test_a_named_metric_added_in_one_place_is_logged_and_monitorable(run_cli, monkeypatch):
    # What a forker writes in metrics.py: one entry (here, the top-2 accuracy).
    def top2(outputs, targets):
        return (outputs.topk(2, dim=-1).indices == targets[:, None]).any(-1).float()

    monkeypatch.setitem(METRICS["classification"], "top2", Metric(top2, higher_is_better=True))
    run = run_cli("train", "trainer.max_epochs=2", "monitor.metric=val/top2", "monitor.mode=max")
    results = ok(run)
    metrics = results["metrics"]
    assert metrics["best_val_top2"] >= metrics["final_val_acc"]  # top-2 >= top-1
    assert 0 < metrics["test_top2"] <= 1
