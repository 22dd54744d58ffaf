"""Class weights in a pack: members with weights and members without have losses of
different structure (a weight buffer or none), so they train in different packs, and a
weighted member is its lone run. Before, the members without weights set the loss of
all: a `loss.class_weights=null,balanced` sweep trained the balanced jobs unweighted."""

from __future__ import annotations

import torch
from twins import (
    assert_same_training,
    basic_sweep,
    jobs,
    metric_diff,
    packed_members,
    packed_sweep,
)

from neuralab.losses import CrossEntropy
from neuralab.pack.stacked import structure

COMMON = ("data=imbalanced", "model.hidden_sizes=[16]", "trainer.max_epochs=2")


def test_weighted_and_unweighted_losses_do_not_stack():
    weighted = CrossEntropy(weight=torch.tensor([1.0, 2.0, 3.0]))
    assert structure(weighted) != structure(CrossEntropy())


def test_a_class_weights_sweep_packs_each_kind_apart(tmp_path_factory):
    sweep = ("loss.class_weights=null,balanced", "seed=1,2")
    packed = jobs(packed_sweep(tmp_path_factory.mktemp("weights_packed"), *COMMON, *sweep))
    basic = jobs(basic_sweep(tmp_path_factory.mktemp("weights_basic"), *COMMON, *sweep))
    assert [packed_members(job) for job in packed] == [2, 2, 2, 2]
    for p, b in zip(packed, basic, strict=True):
        assert_same_training(p, b)
    assert metric_diff(packed[0], packed[2]) > 1e-3  # seed 1: weights change what it learns
