"""hydra/launcher=packed (conf/hydra/launcher/packed.yaml): compatible jobs of a sweep
train as one vectorized fit (neuralab/pack/launch.py). Hydra imports this module for
every command, so it imports nothing heavy."""

from __future__ import annotations

from collections.abc import Sequence

from hydra.core.utils import JobReturn, configure_log, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from hydra_plugins.neuralab_launchers.compositions import Compositions
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
        # Before the sweeper's check composes the jobs: see compositions.py.
        self.compositions = Compositions(hydra_context.config_loader)

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        from neuralab.pack.launch import PackedLaunch

        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        launch = PackedLaunch(
            self.hydra_context,
            self.task_function,
            self.config,
            self.max_members,
            compose=self.compositions.take,  # each job's config once (compositions.py)
        )
        return launch.launch(job_overrides, initial_job_idx)
