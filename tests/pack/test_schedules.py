"""Schedules and clipping in packs: each member's own schedule (its class and settings),
stepped at its lone run's points, and its own gradient clipping, equal their lone runs.

Per-epoch schedules of different classes share a pack; a per-step one (onecycle) and a
plateau one (each member's own monitored value) each pack with their kind. Clipping:
members clipped by their own norms with their own thresholds (and by values).
"""

from __future__ import annotations

import pytest
from test_tensorboard import load
from twins import assert_same_training, packed_members, twins


def lr_curve(job) -> list[float]:
    return [e.value for e in load(job).Scalars("curves/train/lr")]


@pytest.mark.parametrize(
    "name, overrides",
    [
        ("per_epoch", ["scheduler=cosine,step,exponential"]),
        ("per_step", ["scheduler=onecycle", "seed=1,2"]),
        (
            "plateau",
            ["scheduler=plateau", "scheduler.patience=0", "+scheduler.threshold=0.9", "seed=1,2"],
        ),
        ("clipping", ["trainer.gradient_clip_val=0.05,0.5", "optimizer=sgd"]),
        (
            "clip_value",
            ["trainer.gradient_clip_algorithm=value", "trainer.gradient_clip_val=0.01,1"],
        ),
    ],
)
def test_members_schedules_and_clipping_are_their_lone_runs(tmp_path_factory, name, overrides):
    pair = twins(tmp_path_factory, name, *overrides, "trainer.max_epochs=3")
    for packed, basic in pair.pairs:
        assert_same_training(packed, basic)
        assert lr_curve(packed) == lr_curve(basic), packed.name
    assert packed_members(pair.packed[0]) == len(pair.packed)
    if "scheduler" in overrides[0]:  # the schedule really moved the lr
        assert len(set(lr_curve(pair.packed[0]))) > 1
