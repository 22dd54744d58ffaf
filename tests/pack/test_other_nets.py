"""Packs of other nets, and sweeps whose jobs cannot all pack.

BatchNorm (each member's running statistics its own) and a forker's conv net
(tests/fixtures: any plain nn.Module stacks) equal their basic-launcher twins. A sweep
over nets packs each net's jobs together and runs a module that is not packable (the
perceptron rule) one job at a time, every job ending ok.
"""

from __future__ import annotations

import pytest
from conftest import FORK_CONF
from twins import (
    PACKED,
    QUIET,
    assert_same_training,
    packed_members,
    results,
    twins,
    weights,
)

import neuralab.pack.fit


@pytest.fixture(scope="module")
def batchnorm(tmp_path_factory):
    # SGD, not Adam: a Linear bias before BatchNorm has a zero gradient up to float noise,
    # which Adam scales up to full steps (a lone run on 1 vs 2 threads drifts ~3e-3 too).
    return twins(
        tmp_path_factory,
        "batchnorm",
        "model=mlp_batchnorm",
        "optimizer=sgd",
        "optimizer.lr=0.1",
        "seed=1,2",
        "trainer.max_epochs=2",
    )


@pytest.fixture(scope="module")
def conv(tmp_path_factory):
    return twins(
        tmp_path_factory, "conv", FORK_CONF, "model=small_conv", "seed=1,2", "trainer.max_epochs=1"
    )


def test_batchnorm_members_equal_their_lone_runs_running_stats_included(batchnorm):
    for packed, basic in batchnorm.pairs:
        assert_same_training(packed, basic)
        assert results(packed)["epochs"] == 2
    names = set(weights(batchnorm.packed[0]))
    assert {"net.blocks.0.norm.running_mean", "net.blocks.0.norm.running_var"} <= names


def test_a_forkers_conv_net_packs_and_equals_its_lone_runs(conv):
    for packed, basic in conv.pairs:
        assert_same_training(packed, basic)
    kernels = [k for k, v in weights(conv.packed[0]).items() if v.ndim == 4]
    assert kernels == ["net.features.0.weight", "net.features.3.weight"]


def test_each_net_packs_apart_and_unpackable_jobs_run_alone(run_cli, monkeypatch):
    packs = []
    fit_pack = neuralab.pack.fit.fit_pack

    def spy(runs):
        packs.append([run.output_dir.name for run in runs])
        return fit_pack(runs)

    monkeypatch.setattr(neuralab.pack.fit, "fit_pack", spy)
    run = run_cli(
        "train",
        "-m",
        PACKED,
        *QUIET,
        "model=mlp,mlp_small,perceptron",
        "seed=1,2",
        "trainer.max_epochs=1",
    )
    assert run.code == 0, run.out
    assert packs == [
        ["0_model=mlp,seed=1", "1_model=mlp,seed=2"],
        ["2_model=mlp_small,seed=1", "3_model=mlp_small,seed=2"],
    ]
    assert "jobs [4, 5] run one at a time: PerceptronModule does not declare" in run.out
    jobs = run.run_dirs()
    assert [job.name.partition("_")[0] for job in jobs] == [str(n) for n in range(6)]
    assert [results(job)["status"] for job in jobs] == ["ok"] * 6
    assert [results(job)["epochs"] for job in jobs] == [1] * 6
    assert [packed_members(job) for job in jobs] == [2, 2, 2, 2, None, None]


def test_jobs_with_a_callback_the_pack_would_not_run_train_alone(run_cli):
    """A callback of the user's own (here Lightning's LearningRateMonitor) runs in a
    lone run only: such jobs are not packed, and the callback does its work."""
    monitor = "+callbacks.lr_monitor._target_=lightning.pytorch.callbacks.LearningRateMonitor"
    run = run_cli("train", "-m", *QUIET, monitor, "seed=1,2", "trainer.max_epochs=1")
    assert run.code == 0, run.out
    assert "a pack would not run their callbacks LearningRateMonitor" in run.out
    jobs = run.run_dirs()
    assert [packed_members(job) for job in jobs] == [None, None]
    assert [results(job)["status"] for job in jobs] == ["ok", "ok"]
