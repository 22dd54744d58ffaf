"""Which jobs of a sweep train together (neuralab/pack/plan.py): `packable` says which
overrides a member keeps to itself, `pack_key` is equal for jobs that may share a pack,
`group` puts equal keys into packs in job order.

Schedules are read from conf/scheduler/*.yaml as the launcher reads them (unresolved).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from neuralab.pack.plan import group, pack_key, packable

CONF = Path(__file__).resolve().parents[2] / "conf"


def schedule(name: str) -> dict | None:
    """conf/scheduler/<name>.yaml as the launcher passes it (none: no schedule)."""
    return yaml.safe_load((CONF / "scheduler" / f"{name}.yaml").read_text()) or None


@pytest.mark.fast
@pytest.mark.parametrize(
    "override",
    [
        "seed=3",
        "data.seed=7",
        "init=he_normal",
        "init.scheme=orthogonal",
        "optimizer=sgd",
        "optimizer.lr=0.1",
        "optimizer.weight_decay=1e-4",
        "scheduler=cosine",
        "scheduler.gamma=0.5",
        "module.l1_penalty=1e-5",
        "module.l2_penalty=1e-4",
        "trainer.gradient_clip_val=1.0",
        "trainer.gradient_clip_algorithm=value",
        "loss.class_weights=balanced",
        "callbacks.early_stopping.patience=3",
        "~callbacks.early_stopping",
        "callbacks.model_checkpoint.save_top_k=2",
        "+callbacks.early_stopping.verbose=true",
        "model.dropout=0.3",
    ],
)
def test_a_members_own_settings_are_packable(override):
    assert packable(override)


@pytest.mark.fast
@pytest.mark.parametrize(
    "override",
    [
        "model=mlp_small",
        "model.activation=tanh",
        "loss.class_weights=null",  # no weight buffer: not stackable with weighted ones
        "module=perceptron",
        "data=iris",
        "data.batch_size=32",
        "data.seeds=1",  # a look-alike of data.seed
        "seeds=1",  # a look-alike of seed
        "initial=1",  # a look-alike of init
        "loss=mse",
        "trainer.max_epochs=3",
        "trainer.precision=64",
        "scheduler.interval=step",  # Lightning steps every member's schedule at once
        "scheduler.monitor=val/acc",
        "callbacks.diagnostics=null",
    ],
)
def test_settings_the_pack_shares_are_not_packable(override):
    assert not packable(override)


@pytest.mark.fast
def test_jobs_that_differ_in_seed_optimizer_and_init_share_a_key():
    cosine = schedule("cosine")
    first = pack_key(["seed=1", "optimizer=sgd", "init=he_normal", "data=iris"], cosine)
    second = pack_key(["seed=2", "optimizer=adam", "init=default", "data=iris"], cosine)
    assert first == second
    # The fixed overrides are part of the key, in any order.
    assert pack_key(["data=iris", "seed=2"], None) == pack_key(["seed=1", "data=iris"], None)


@pytest.mark.fast
@pytest.mark.parametrize(
    "other",
    [
        ["model=mlp_small", "seed=2"],
        ["data.batch_size=32", "seed=2"],
        ["model.activation=tanh", "seed=2"],
        ["trainer.max_epochs=3", "seed=2"],
    ],
)
def test_a_net_or_batch_size_override_separates(other):
    assert pack_key(["seed=1"], None) != pack_key(other, None)


@pytest.mark.fast
def test_schedules_pack_by_presence_interval_monitor_and_plateau():
    epoch = pack_key(["scheduler=cosine"], schedule("cosine"))
    # Another class stepped at the same points: packable (each member has its own).
    assert pack_key(["scheduler=step"], schedule("step")) == epoch
    assert pack_key(["scheduler=exponential"], schedule("exponential")) == epoch
    # No schedule, a per-step one, a plateau one (monitor): each its own pack.
    others = {
        "none": pack_key(["scheduler=none"], schedule("none")),
        "onecycle": pack_key(["scheduler=onecycle"], schedule("onecycle")),
        "plateau": pack_key(["scheduler=plateau"], schedule("plateau")),
    }
    assert epoch not in others.values()
    assert len(set(others.values())) == 3
    # Per-step schedules of two classes still pack together.
    assert pack_key(["scheduler=warmup"], schedule("warmup")) == others["onecycle"]


@pytest.mark.fast
def test_group_keeps_equal_keys_together_in_job_order():
    keys = ["a", "b", "a", "c", "b", "a"]
    assert group(keys, max_members=64) == [[0, 2, 5], [1, 4], [3]]


@pytest.mark.fast
def test_max_members_splits_a_group_into_packs():
    keys = ["a"] * 5 + ["b"] * 2
    assert group(keys, max_members=2) == [[0, 1], [2, 3], [4], [5, 6]]
    assert group(keys, max_members=1) == [[i] for i in range(7)]


@pytest.mark.fast
def test_a_sweeps_jobs_group_as_their_overrides_say():
    """model=mlp,mlp_small seed=1,2 with scheduler=none,cosine: four packs of two."""
    jobs = [
        (model, sched, seed)
        for model in ("mlp", "mlp_small")
        for sched in ("none", "cosine")
        for seed in (1, 2)
    ]
    keys = [
        pack_key([f"model={m}", f"scheduler={s}", f"seed={seed}"], schedule(s))
        for m, s, seed in jobs
    ]
    assert group(keys, max_members=64) == [[0, 1], [2, 3], [4, 5], [6, 7]]
