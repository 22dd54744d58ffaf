"""`neuralab-train -m hydra/launcher=packed ...` gives every job what the basic launcher
gives it: the same initial net, the same weights and metrics, and the same outputs (job
dirs, results.json, results.csv, checkpoints, TensorBoard scalars and HParams row), so
`neuralab-eval` reproduces a packed job's test metrics.

Each module fixture is one tiny sweep on digits (20 steps an epoch), shared by the tests
that read it: seeds 1-3 packed and their basic twins after 1 and after 5 epochs, seeds
1-8 packed (membership must not matter), and an SGD step too small to move any weight
(lr=1e-30: the checkpoints hold the initial nets).
"""

from __future__ import annotations

import lightning as L
import pytest
import torch
from omegaconf import OmegaConf
from test_results import read_csv
from test_tensorboard import load, session_hparams
from twins import (
    METRICS_ATOL,
    WEIGHTS_ATOL,
    assert_same_training,
    checkpoint,
    jobs,
    metric_diff,
    packed_members,
    packed_sweep,
    results,
    twins,
    weight_diff,
    weights,
)

from neuralab.compose import build_net
from neuralab.runtime.checkpoint_files import CONFIG_KEY

SEEDS = "seed=1,2,3"


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    return twins(
        tmp_path_factory,
        "untrained",
        "seed=1,2",
        "optimizer=sgd",
        "optimizer.lr=1e-30",
        "trainer.max_epochs=1",
    )


@pytest.fixture(scope="module")
def one_epoch(tmp_path_factory):
    return twins(tmp_path_factory, "one_epoch", SEEDS, "trainer.max_epochs=1")


@pytest.fixture(scope="module")
def five_epochs(tmp_path_factory):
    return twins(tmp_path_factory, "five_epochs", SEEDS, "trainer.max_epochs=5")


@pytest.fixture(scope="module")
def pack_of_eight(tmp_path_factory):
    root = tmp_path_factory.mktemp("pack_of_eight")
    return jobs(packed_sweep(root, "seed=1,2,3,4,5,6,7,8", "trainer.max_epochs=1"))


# ------------------------------------------------------------------ training


def test_members_start_from_their_lone_runs_seeded_nets(untrained):
    for packed, basic in untrained.pairs:
        got, lone = weights(packed), weights(basic)
        assert all(torch.equal(got[k], lone[k]) for k in lone), packed.name
        # ... which is the net compose.build_net makes under the job's seed.
        config = OmegaConf.create(checkpoint(packed)[CONFIG_KEY])
        L.seed_everything(config.seed, verbose=False)
        built = {f"net.{k}": v for k, v in build_net(config).state_dict().items()}
        assert all(torch.equal(got[k], v) for k, v in built.items()), packed.name
    first, second = (weights(job) for job in untrained.packed)
    assert not torch.equal(first["net.head.weight"], second["net.head.weight"])


def test_after_one_epoch_each_member_has_its_lone_runs_weights(one_epoch):
    for packed, basic in one_epoch.pairs:
        for name in ("last", "best"):
            assert weight_diff(packed, basic, name) <= WEIGHTS_ATOL, (packed.name, name)
        # The optimizer's own state (Adam's moments and step) too.
        (got,) = checkpoint(packed)["optimizer_states"]
        (lone,) = checkpoint(basic)["optimizer_states"]
        assert got["param_groups"] == lone["param_groups"]
        assert got["state"].keys() == lone["state"].keys()
        for index, state in lone["state"].items():
            for key, value in state.items():
                diff = (got["state"][index][key] - value).abs().max().item()
                assert diff <= WEIGHTS_ATOL, (packed.name, index, key, diff)


def test_after_five_epochs_members_have_their_lone_runs_results(five_epochs):
    for packed, basic in five_epochs.pairs:
        assert_same_training(packed, basic)
        assert results(packed)["epochs"] == 5


def test_a_seed_by_lr_sweep_steps_each_lr_as_one_block_and_equals_its_lone_runs(
    tmp_path_factory,
):
    """Job order interleaves the learning rates (seed 1 lr a, seed 1 lr b, ...); the pack
    puts each lr's members in adjacent rows (one fused step per lr) and every job still
    gets its own results."""
    pair = twins(
        tmp_path_factory, "seed_by_lr", "seed=1,2", "optimizer.lr=1e-3,1e-2", "trainer.max_epochs=2"
    )
    assert [job.name for job in pair.packed] == [job.name for job in pair.basic]
    for packed, basic in pair.pairs:
        assert_same_training(packed, basic)
    assert results(pair.packed[0])["metrics"] != results(pair.packed[1])["metrics"]


def test_a_members_training_does_not_depend_on_its_pack(one_epoch, pack_of_eight):
    """seeds 1-3 in a pack of 3 and in a pack of 8."""
    assert [packed_members(job) for job in pack_of_eight] == [8] * 8
    for small, big in zip(one_epoch.packed, pack_of_eight[:3], strict=True):
        assert small.name == big.name
        assert weight_diff(small, big) <= WEIGHTS_ATOL, small.name
        assert metric_diff(small, big) <= METRICS_ATOL, small.name
    assert all(results(job)["status"] == "ok" for job in pack_of_eight)


# ------------------------------------------------------------------- outputs


def test_job_dirs_and_results_json_have_the_same_names_and_fields(five_epochs):
    assert [p.name for p in five_epochs.packed] == [b.name for b in five_epochs.basic]
    assert [p.name for p in five_epochs.packed] == ["0_seed=1", "1_seed=2", "2_seed=3"]
    for packed, basic in five_epochs.pairs:
        rp, rb = results(packed), results(basic)
        assert rp.keys() == rb.keys()
        for key in ("hparams", "overrides", "metric_tags", "epochs", "status"):
            assert rp[key] == rb[key], key
        assert rp["best_checkpoint"] == str(packed / "checkpoints" / "best.ckpt")


def test_job_configs_are_those_hydra_composes_for_the_basic_launcher(five_epochs):
    """Jobs 1 and 2 (seed=2, 3) get a copy of job 0's config with their values set
    (hydra_plugins/neuralab_launchers/compositions.py), not a composition of their own:
    their .hydra files must say exactly what Hydra composes for the same job."""
    for packed, basic in five_epochs.pairs:
        for name in ("config.yaml", "overrides.yaml"):
            assert (packed / ".hydra" / name).read_text() == (basic / ".hydra" / name).read_text()
        hp, hb = (OmegaConf.load(d / ".hydra" / "hydra.yaml").hydra for d in (packed, basic))
        assert hp.job == hb.job and hp.overrides.task == hb.overrides.task
        choices = {k: v for k, v in hp.runtime.choices.items() if k != "hydra/launcher"}
        assert choices == {k: v for k, v in hb.runtime.choices.items() if k != "hydra/launcher"}
        assert hp.runtime.choices["hydra/launcher"] == "packed"


def test_results_csv_has_the_same_rows_and_columns(five_epochs):
    sweeps = (five_epochs.packed[0].parent, five_epochs.basic[0].parent)
    packed, basic = (read_csv(sweep / "results.csv") for sweep in sweeps)
    assert len(packed) == len(basic) == 3
    assert list(packed[0]) == list(basic[0])  # the columns, in order
    for row_p, row_b in zip(packed, basic, strict=True):
        for column, value in row_b.items():
            if column == "wall_time_s":
                continue
            if column in results(five_epochs.basic[0])["metrics"]:
                assert abs(float(row_p[column]) - float(value)) <= METRICS_ATOL, column
            else:
                assert row_p[column] == value, column
    for sweep in sweeps:
        assert "3 jobs: 3 ok." in (sweep / "results.md").read_text()


def test_tensorboard_has_the_same_scalars_and_hparams_row(five_epochs):
    """Diagnostics are off in both (packed members have none: a known gap)."""
    for packed, basic in five_epochs.pairs:
        ep, eb = load(packed), load(basic)
        tags = eb.Tags()["scalars"]
        assert ep.Tags()["scalars"] == tags, packed.name
        assert {"curves/val/loss", "curves/train/lr", "test/acc", "epochs"} <= set(tags)
        for tag in tags:
            got, lone = ep.Scalars(tag), eb.Scalars(tag)
            assert [e.step for e in got] == [e.step for e in lone], tag
            values = zip(got, lone, strict=True)
            assert all(abs(a.value - b.value) <= METRICS_ATOL for a, b in values), tag
        # The HParams row, the custom-scalars layout, the graph.
        assert ep.Tags()["tensors"] == eb.Tags()["tensors"], packed.name
        assert ep.Tags()["graph"] is eb.Tags()["graph"] is True
        assert session_hparams(ep) == session_hparams(eb), packed.name
    for jobs_ in (five_epochs.packed, five_epochs.basic):  # the sweep's HParams summary
        assert list(jobs_[0].parent.glob("events.out.tfevents.*"))


def test_checkpoints_have_the_lone_runs_format(five_epochs):
    for packed, basic in five_epochs.pairs:
        for name in ("best", "last"):
            got, lone = checkpoint(packed, name), checkpoint(basic, name)
            assert got.keys() == lone.keys(), name
            assert got["loops"] == lone["loops"], name
            assert got["callbacks"].keys() == lone["callbacks"].keys(), name
            assert (got["epoch"], got["global_step"]) == (lone["epoch"], lone["global_step"])
            assert got["hyper_parameters"] == lone["hyper_parameters"], name


def test_eval_reproduces_a_packed_jobs_test_metrics(run_cli, five_epochs):
    seen: set = set()
    for job in five_epochs.packed[:2]:
        expected = results(job)["metrics"]
        evaluated = run_cli("eval", f"run_dir='{job}'")  # quoted: the name has '='
        assert evaluated.code == 0, evaluated.out
        (eval_dir,) = set(evaluated.run_dirs("eval")) - seen
        seen.add(eval_dir)
        got = evaluated.results(eval_dir)
        assert got["status"] == "ok"
        assert got["metrics"]["test/acc"] == pytest.approx(expected["test_acc"], abs=1e-5)
        assert got["metrics"]["test/loss"] == pytest.approx(expected["test_loss"], abs=1e-5)
