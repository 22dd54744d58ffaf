"""A seed sweep of data whose classes each seed draws (the synthetic teacher's labels)
packs: its splits have one shape for every seed (data/module.py `_sizes`). Before, a
seed's stratified split could be one sample off, and the pack was refused."""

from __future__ import annotations

from twins import jobs, packed_members, packed_sweep, results

SMALL_SYNTHETIC = [
    "data=synthetic",
    "data.num_features=8",
    "data.params.n_samples=600",
    "data.params.n_test=60",
    "model.hidden_sizes=[16]",
    "trainer.max_epochs=1",
]


def test_a_seed_sweep_of_synthetic_data_is_one_pack(tmp_path):
    sweep = jobs(packed_sweep(tmp_path, *SMALL_SYNTHETIC, "seed=1,2,3,4,5"))
    assert [results(job)["status"] for job in sweep] == ["ok"] * 5
    assert [packed_members(job) for job in sweep] == [5] * 5
