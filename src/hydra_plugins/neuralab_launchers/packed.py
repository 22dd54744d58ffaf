"""hydra/launcher=packed (conf/hydra/launcher/packed.yaml): compatible jobs of a sweep
train as one vectorized fit (neuralab/pack/launch.py). Hydra imports this module for
every command, so it imports nothing heavy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hydra.core.utils import JobReturn, configure_log, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from neuralab.errors import ConfigError


class PackedLauncher(Launcher):
    def __init__(self, max_members: int = 64) -> None:
        if isinstance(max_members, bool) or not isinstance(max_members, int) or max_members < 1:
            raise ConfigError("hydra.launcher.max_members", max_members, "an integer >= 1")
        self.max_members = max_members

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.hydra_context, self.task_function, self.config = hydra_context, task_function, config
        remember_compositions(hydra_context.config_loader)

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        from neuralab.pack.launch import PackedLaunch

        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        launch = PackedLaunch(self.hydra_context, self.task_function, self.config, self.max_members)
        return launch.launch(job_overrides, initial_job_idx)


def remember_compositions(loader: Any) -> None:
    """Compose each job's config once, not twice. Hydra's sweeper composes every job of
    a batch to check it (validate_batch_is_legal) and the launcher composes it again,
    ~0.3 s a job here: this loader hands the launcher the checked config, once."""
    compose = loader.load_sweep_config
    if getattr(compose, "remembers", False):
        return
    kept: dict[tuple, DictConfig] = {}

    def load_sweep_config(master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        key = (id(master_config), tuple(sweep_overrides))
        config = kept.pop(key, None)
        if config is None:  # the sweeper's check: keep it for the launcher
            config = kept[key] = compose(master_config, sweep_overrides)
        return config

    load_sweep_config.remembers = True
    loader.load_sweep_config = load_sweep_config
