"""A packed sweep composes each distinct job shape once: the sweeper's check hands its
configs to the launcher, and jobs that differ only in setting values get a copy of a
composed config (their .hydra files are compared with the basic launcher's in
test_equivalence.py). Counted here: Hydra's compositions in one command."""

from __future__ import annotations

from hydra._internal.config_loader_impl import ConfigLoaderImpl

SWEEP = ["seed=1,2,3,4", "trainer.max_epochs=1", "callbacks.diagnostics=null"]


def compositions(run_cli, monkeypatch, *overrides: str) -> int:
    calls = []
    compose = ConfigLoaderImpl.load_configuration

    def counted(self, *args, **kwargs):
        calls.append(kwargs.get("overrides", args[1] if len(args) > 1 else None))
        return compose(self, *args, **kwargs)

    monkeypatch.setattr(ConfigLoaderImpl, "load_configuration", counted)
    run = run_cli("train", "-m", *overrides, *SWEEP)
    assert run.code == 0, run.out[-3000:]
    return len(calls)


def test_a_packed_seed_sweep_composes_one_job_config(run_cli, monkeypatch):
    basic = compositions(run_cli, monkeypatch, "hydra/launcher=basic")
    packed = compositions(run_cli, monkeypatch, "hydra/launcher=packed")
    # basic composes each of the 4 jobs twice (the sweeper's check, the launch); packed
    # composes the first job's config only. Both: the command's config, the defaults.
    assert basic - packed >= 2 * 4 - 1, (basic, packed)
    assert packed <= 4, (basic, packed)
