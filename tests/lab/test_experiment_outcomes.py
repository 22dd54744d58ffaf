"""The experiments with a clear-cut outcome reproduce it (conf/experiment/, issue 7).

Each test launches the real experiment sweep (`neuralab-train -m experiment=<name>`)
shrunk to one seed and a few epochs, then reads each job's results.json or a
derived measure (neuralab.sweep.measures). Margins are wide on purpose: the
outcomes are orders of magnitude or all-or-nothing, not a few percent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from neuralab.sweep.measures import MEASURES

ONE_SEED = "hydra.sweeper.params.seed=1"


@pytest.fixture(autouse=True)
def one_thread():
    """Nets this small run several times faster on one thread than on two that
    compete with other processes for the cores; the thread count is restored after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def sweep(run_cli, name: str, *overrides: str) -> list[Path]:
    run = run_cli("train", "-m", f"experiment={name}", ONE_SEED, *overrides)
    assert run.code == 0, run.out
    dirs = run.run_dirs(name)
    assert dirs, f"no job dirs under logs/{name}\n{run.out}"
    return dirs


def job(dirs: list[Path], *choices: str) -> Path:
    """The one job dir whose overrides include every `choices` entry."""
    found = [
        d
        for d in dirs
        if set(choices) <= set(yaml.safe_load((d / ".hydra" / "overrides.yaml").read_text()))
    ]
    assert len(found) == 1, f"{choices}: expected one job, found {[d.name for d in found]}"
    return found[0]


def results(job_dir: Path) -> dict:
    return json.loads((job_dir / "results.json").read_text())


def test_perceptron_learns_and_or_but_not_xor_mlp_learns_all(run_cli):
    dirs = sweep(run_cli, "perceptron_gates", "trainer.max_epochs=15")
    assert len(dirs) == 6  # 3 gates x {perceptron, mlp_small}
    for gate in ("and", "or"):
        assert results(job(dirs, f"data={gate}", "model=perceptron"))["metrics"]["test_acc"] == 1.0
    # Four clusters, no line separates XOR: the best line gets 3 of 4 corners right.
    assert results(job(dirs, "data=xor", "model=perceptron"))["metrics"]["test_acc"] <= 0.75
    for gate in ("and", "or", "xor"):
        assert results(job(dirs, f"data={gate}", "model=mlp_small"))["metrics"]["test_acc"] == 1.0


def test_identity_activation_is_a_linear_model(run_cli):
    dirs = sweep(run_cli, "activations", "model.activation=relu,identity", "trainer.max_epochs=15")
    identity = results(job(dirs, "model.activation=identity"))["metrics"]
    relu = results(job(dirs, "model.activation=relu"))["metrics"]
    # Concentric circles: a linear boundary does about as well as guessing.
    assert 0.4 <= identity["best_val_acc"] <= 0.7, identity
    assert relu["best_val_acc"] >= 0.95, relu


def test_zeros_init_keeps_hidden_units_identical_and_large_init_explodes(run_cli):
    dirs = sweep(
        run_cli,
        "init_schemes",
        "init=zeros,normal_large,he_normal",
        "model.activation=relu",
        "trainer.max_epochs=2",
    )
    zeros, large, he = (job(dirs, f"init={s}") for s in ("zeros", "normal_large", "he_normal"))
    spread = MEASURES["hidden_unit_spread"]
    assert spread(zeros) == 0.0  # symmetry never broken: every hidden unit the same
    assert spread(he) > 0.01
    assert results(zeros)["metrics"]["test_acc"] < 0.2  # a constant prediction: ~1 class in 10
    grad = MEASURES["first_layer_grad_norm"]
    large_status = results(large)["status"]
    assert large_status == "diverged" or grad(large) > 1000 * grad(he), (large_status, grad(large))
    assert results(he)["status"] == "ok" and 0 < grad(he) < 100


def test_deep_sigmoid_gradients_vanish_relu_and_batch_norm_do_not(run_cli):
    dirs = sweep(
        run_cli,
        "vanishing_gradients",
        f"model.hidden_sizes=[{','.join(['32'] * 16)}]",
        "model.activation=sigmoid,relu",
        "model.norm=none,batch",
        "trainer.max_epochs=1",
    )
    grad = MEASURES["first_layer_grad_norm"]
    sigmoid = grad(job(dirs, "model.activation=sigmoid", "model.norm=none"))
    for other in (("relu", "none"), ("sigmoid", "batch"), ("relu", "batch")):
        norm = grad(job(dirs, f"model.activation={other[0]}", f"model.norm={other[1]}"))
        assert sigmoid < 1e-3 * norm, (other, sigmoid, norm)


def test_high_lr_diverges_without_clipping_and_stays_finite_with_it(run_cli):
    dirs = sweep(run_cli, "gradient_clipping", "trainer.max_epochs=3")
    assert results(job(dirs, "experiment/clipping=none"))["status"] == "diverged"
    for algorithm in ("norm", "value"):
        clipped = results(job(dirs, f"experiment/clipping={algorithm}"))
        assert clipped["status"] == "ok", clipped
        assert clipped["metrics"]["final_train_loss"] < 100, clipped["metrics"]
