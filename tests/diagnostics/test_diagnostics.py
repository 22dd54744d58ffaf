"""The TensorBoard diagnostics of neuralab.diagnostics, read back from real runs' event files.

Each run is a short `neuralab-train` in-process (few batches, dense cadence), loaded
as TensorBoard loads it with nothing sampled away.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from conftest import EventsByName, train_in
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from neuralab.diagnostics.norms import NORM_KINDS

SIZE_GUIDANCE = {k: 0 for k in ("scalars", "tensors", "histograms", "images")}
# Short runs, every diagnostic at every opportunity.
QUICK = [
    "trainer.max_epochs=2",
    "++trainer.limit_train_batches=4",
    "++trainer.limit_val_batches=1",
    "callbacks.early_stopping=null",
    "callbacks.diagnostics.every_n_steps=2",
    "callbacks.diagnostics.every_n_epochs=1",
]
# One step at init: the gradients that the theory of vanishing gradients is about.
AT_INIT = [
    "trainer.max_epochs=1",
    "++trainer.limit_train_batches=1",
    "++trainer.limit_val_batches=1",
    "test=false",
    "callbacks.diagnostics.every_n_steps=1",
    "callbacks.diagnostics.histograms=false",
    "callbacks.diagnostics.images=false",
]
DEEP = "model.hidden_sizes=[64,64,64,64,64,64,64,64]"  # 8 hidden layers + head
MLP_LAYERS = ["layer00_blocks.0.linear", "layer01_blocks.1.linear", "layer02_head"]
MLP_ACTS = ["layer00_blocks.0.act", "layer01_blocks.1.act"]
DIAGNOSTIC_PREFIXES = (*NORM_KINDS, "act_", "weights/", "grads/")
IMAGES = ("val/confusion_matrix", "test/confusion_matrix", "train/decision_boundary")


def train(root: Path, *overrides: str) -> EventsByName:
    """neuralab-train in-process from `root`; the run's events, fully loaded, by the
    names the diagnostics log (TensorBoard shows them under `diagnostics/`)."""
    train_in(root, *overrides)
    (run_dir,) = [p for p in root.glob("logs/train/runs/*") if (p / ".hydra").is_dir()]
    events = EventAccumulator(str(run_dir), size_guidance=SIZE_GUIDANCE)
    events.Reload()
    assert all(t.startswith("diagnostics/") for t in events.Tags()["histograms"])
    return EventsByName(events)


def tags(events: EventAccumulator, kind: str, prefix: str) -> list[str]:
    return sorted(t for t in events.Tags()[kind] if t.startswith(prefix))


def values(events: EventAccumulator, tag: str) -> list[float]:
    return [e.value for e in events.Scalars(tag)]


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> EventAccumulator:
    """The default MLP on digits, with tanh (saturation) instead of relu."""
    return train(tmp_path_factory.mktemp("digits"), "model.activation=tanh", *QUICK)


@pytest.fixture(scope="module")
def moons(tmp_path_factory) -> EventAccumulator:
    """The default relu MLP on 2-D data (decision boundary, dead units)."""
    return train(tmp_path_factory.mktemp("moons"), "data=moons", *QUICK)


def test_per_layer_norm_tags_ordered_input_to_output(digits):
    for kind in NORM_KINDS:
        assert tags(digits, "scalars", f"{kind}/") == [f"{kind}/{layer}" for layer in MLP_LAYERS]
        for layer in MLP_LAYERS:
            points = digits.Scalars(f"{kind}/{layer}")
            assert [p.step for p in points] == [0, 2, 4, 6], kind  # 8 steps, every 2nd
            assert all(math.isfinite(p.value) and p.value >= 0 for p in points)
    # Adam's first steps move every weight by ~lr: a small but non-zero relative update.
    assert all(0 < v < 0.1 for v in values(digits, "update_ratio/layer00_blocks.0.linear"))


@pytest.mark.parametrize(
    "run, kinds, absent",
    [("digits", ["act_saturated"], "act_dead"), ("moons", ["act_dead"], "act_saturated")],
    ids=["tanh", "relu"],
)
def test_activation_stats_per_epoch(run, kinds, absent, request):
    events = request.getfixturevalue(run)
    for kind in ("act_mean", "act_std", *kinds):
        assert tags(events, "scalars", f"{kind}/") == [f"{kind}/{a}" for a in MLP_ACTS]
        # One point per epoch, at the step Lightning logs val/loss at.
        points = events.Scalars(f"{kind}/{MLP_ACTS[0]}")
        assert [p.step for p in points] == [e.step for e in events.Scalars("val/loss")]
    for kind in kinds:  # fractions
        assert all(0 <= v <= 1 for a in MLP_ACTS for v in values(events, f"{kind}/{a}"))
    assert not tags(events, "scalars", f"{absent}/")  # relu never saturates; tanh has no dead


def test_histograms_of_weights_and_grads(digits):
    assert tags(digits, "histograms", "weights/") == [f"weights/{x}" for x in MLP_LAYERS]
    assert tags(digits, "histograms", "grads/") == [f"grads/{x}" for x in MLP_LAYERS]
    # The first step of each epoch, and the final weights.
    assert [h.step for h in digits.Histograms(f"weights/{MLP_LAYERS[0]}")] == [0, 4, 8]
    assert [h.step for h in digits.Histograms(f"grads/{MLP_LAYERS[0]}")] == [0, 4]


def test_the_final_weight_histogram_describes_the_final_weights(digits):
    (ckpt,) = Path(digits.path).glob("checkpoints/last.ckpt")
    weight = torch.load(ckpt, weights_only=True)["state_dict"]["net.blocks.0.linear.weight"]
    w = weight.double().flatten()
    final = digits.Histograms(f"weights/{MLP_LAYERS[0]}")[-1].histogram_value
    assert final.num == w.numel() and sum(final.bucket) == w.numel()
    assert (final.min, final.max) == pytest.approx((w.min().item(), w.max().item()))
    assert final.sum == pytest.approx(w.sum().item(), abs=1e-6)
    assert final.sum_squares == pytest.approx(w.square().sum().item())
    # 64 even buckets between min and max, each counting the weights up to its limit.
    limits = final.bucket_limit
    assert len(limits) == 65 and limits[0] == final.min and limits[-1] == pytest.approx(final.max)
    assert final.bucket[0] == 0 and final.bucket[1] == (w <= limits[1]).sum()


def test_confusion_matrix_images(digits):
    images = digits.Tags()["images"]
    assert {"val/confusion_matrix", "test/confusion_matrix"} <= set(images), images
    assert "train/decision_boundary" not in images  # digits has 64 features
    (image,) = digits.Images("test/confusion_matrix")
    assert image.width > 100 and image.height > 100 and image.encoded_image_string


def test_decision_boundary_on_2d_data(moons):
    # Tagged train/: it draws the training points (on the net's classes at that epoch).
    assert len(moons.Images("train/decision_boundary")) == 2  # one per epoch
    assert len(moons.Images("val/confusion_matrix")) == 2


def test_perceptron_has_norms_and_decision_boundary(tmp_path):
    events = train(tmp_path, "model=perceptron", "data=xor", *QUICK)
    assert tags(events, "scalars", "grad_norm/") == ["grad_norm/layer00_linear"]
    assert tags(events, "scalars", "act_") == []  # the step activation is no module
    # From zero weights, the perceptron's first update is the whole weight (ratio 1).
    assert values(events, "update_ratio/layer00_linear")[0] == pytest.approx(1.0)
    assert {"train/decision_boundary", "val/confusion_matrix"} <= set(events.Tags()["images"])


def test_regression_shows_predictions_vs_targets(tmp_path):
    events = train(tmp_path, "data=diabetes", *QUICK)
    images = set(events.Tags()["images"])
    assert {"val/pred_vs_target", "test/pred_vs_target"} <= images, images
    assert not images & set(IMAGES)


def test_diagnostics_null_turns_everything_off(tmp_path):
    events = train(tmp_path, *QUICK[:4], "callbacks.diagnostics=null")
    scalars = events.Tags()["scalars"]
    assert "val/loss" in scalars  # the run itself trained and logged
    assert not [t for t in scalars if t.startswith(DIAGNOSTIC_PREFIXES)]
    assert events.Tags()["histograms"] == [] and events.Tags()["images"] == []


def first_to_last_grad_ratio(events: EventAccumulator) -> float:
    """||grad head|| / ||grad first layer|| at the first step."""
    grads = tags(events, "scalars", "grad_norm/")
    assert len(grads) == 9 and grads[-1].endswith("_head")
    return values(events, grads[-1])[0] / values(events, grads[0])[0]


def test_deep_sigmoid_gradients_vanish_and_relu_he_do_not(tmp_path):
    sigmoid = train(
        tmp_path / "s", DEEP, "model.activation=sigmoid", "init=xavier_normal", *AT_INIT
    )
    relu = train(tmp_path / "r", DEEP, "model.activation=relu", "init=he_normal", *AT_INIT)
    # Measured for seed 42: sigmoid ~1e4 (sigmoid' <= 1/4 per layer), relu+He ~1.
    assert first_to_last_grad_ratio(sigmoid) >= 10
    assert first_to_last_grad_ratio(relu) < 10


def test_huge_init_saturates_tanh(digits, tmp_path):
    huge = train(tmp_path, "model.activation=tanh", "init=normal", "init.std=5", *AT_INIT)
    # Measured for seed 42: ~0.9 with N(0, 5^2) weights, ~0 with torch's default init.
    assert values(huge, f"act_saturated/{MLP_ACTS[0]}")[0] > 0.5
    assert values(digits, f"act_saturated/{MLP_ACTS[0]}")[0] < 0.1


@pytest.mark.parametrize("setting", ["every_n_steps=0", "every_n_epochs=1.5"])
def test_bad_cadence_is_one_clear_error(run_cli, setting):
    run = run_cli("train", f"callbacks.diagnostics.{setting}")
    assert run.code == 2, run.out[-2000:]
    assert f"callbacks.diagnostics.{setting}" in run.out and "an integer >= 1" in run.out
    assert ("or auto" in run.out) == setting.startswith("every_n_steps")


@pytest.mark.parametrize("batch, every", [(64, 10), (4, 16)])
def test_auto_cadence_measures_about_20_times_an_epoch(tmp_path, batch, every):
    """every_n_steps=auto (the default): 20 batches an epoch -> every 10 steps (the
    floor); 315 batches (digits in batches of 4) -> every round(315 / 20) = 16 steps."""
    events = train(
        tmp_path,
        f"data.batch_size={batch}",
        "trainer.max_epochs=1",
        "test=false",
        "callbacks.diagnostics.histograms=false",
        "callbacks.diagnostics.images=false",
    )
    steps = [e.step for e in events.Scalars(f"grad_norm/{MLP_LAYERS[0]}")]
    batches = math.ceil(1257 / batch)  # digits' train split
    assert steps == list(range(0, batches, every))
