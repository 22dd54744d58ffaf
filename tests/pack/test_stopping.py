"""Members of a pack stop on their own, as their lone runs do, and the others go on.

Early stopping: `callbacks.early_stopping.min_delta=1.0` (with patience 1) stops a
member after epoch 2 (val/loss never improves by a whole 1.0 twice), min_delta=0 lets
it run all 4 epochs; the stopped member must not change while the pack trains on (Adam
would move its weights on a zero gradient: a stopped member takes no step).
Divergence: SGD at lr=1e4 gives a NaN loss within the first epoch; lr=0.01 trains.
Each job is compared with its basic-launcher twin.
"""

from __future__ import annotations

import json

import pytest
from test_results import read_csv
from test_tensorboard import load
from twins import assert_same_training, checkpoint, results, twins

from neuralab.runtime.tags import tensorboard_tag as tb

EARLY_STOP = 2  # the epoch a min_delta=1.0 member stops after
MAX_EPOCHS = 4


@pytest.fixture(scope="module")
def early_stopped(tmp_path_factory):
    return twins(
        tmp_path_factory,
        "early_stopped",
        "seed=1,2",
        "callbacks.early_stopping.patience=1",
        "callbacks.early_stopping.min_delta=1.0,0.0",
        f"trainer.max_epochs={MAX_EPOCHS}",
    )


@pytest.fixture(scope="module")
def diverging(tmp_path_factory):
    return twins(
        tmp_path_factory,
        "diverging",
        "optimizer=sgd",
        "optimizer.lr=1e4,0.01",
        "trainer.max_epochs=2",
    )


def test_an_early_stopped_member_keeps_its_lone_runs_weights(early_stopped):
    epochs = [results(job)["epochs"] for job in early_stopped.packed]
    # min_delta=1.0, 0.0 for seed 1, then for seed 2: one stops, one runs to the end.
    assert epochs == [EARLY_STOP, MAX_EPOCHS, EARLY_STOP, MAX_EPOCHS]
    for packed, basic in early_stopped.pairs:
        assert_same_training(packed, basic)
        got, lone = checkpoint(packed), checkpoint(basic)
        assert (got["epoch"], got["global_step"]) == (lone["epoch"], lone["global_step"])
        assert got["loops"] == lone["loops"], packed.name


def test_an_early_stopped_members_curves_end_where_its_lone_runs_do(early_stopped):
    for packed, basic in early_stopped.pairs:
        got, lone = load(packed).Scalars(tb("val/loss")), load(basic).Scalars(tb("val/loss"))
        assert [e.step for e in got] == [e.step for e in lone], packed.name
        assert len(got) == results(basic)["epochs"]


def test_a_diverged_member_ends_as_its_lone_run_and_the_other_trains_on(diverging):
    (diverged, lone_diverged), (trained, lone_trained) = diverging.pairs
    got, lone = results(diverged), results(lone_diverged)
    assert got["status"] == lone["status"] == "diverged"
    for key in ("diverged_at_step", "diverged_loss", "error", "epochs", "last_checkpoint"):
        assert got[key] == lone[key], key
    assert_same_training(trained, lone_trained)
    statuses = [row["status"] for row in read_csv(diverged.parent / "results.csv")]
    assert statuses == ["diverged", "ok"]


def test_every_members_wall_time_counts_from_its_own_start(diverging):
    """results.json's wall_time_s spans the job from its start to its end, which holds
    the pack's whole fit (timing.json train_s), whatever way the job ended."""
    timings = [job / "timing.json" for job in diverging.packed if (job / "timing.json").exists()]
    train_s = json.loads(timings[0].read_text())["train_s"]  # the pack's, in every member's
    for job in diverging.packed:  # the diverged one too (it writes no timing.json)
        assert results(job)["wall_time_s"] >= train_s, (job.name, results(job)["status"])
