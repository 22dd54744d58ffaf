"""neuralab's Optuna sweeper for Hydra: `neuralab-train -m hparams_search=optuna_tpe`.

Built on Optuna's ask-and-tell API (docs/SWEEPS.md "Hyperparameter search (Optuna)"). This class is
the Hydra side: settings, the launcher, the sweep dir. The search itself -- space, study,
batches, pruning, reports -- is neuralab/sweep/optuna_*.py.

Hydra imports every module under hydra_plugins at start-up, for every command, so this one
imports neither optuna (an optional extra) nor torch at module level.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NoReturn

from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from hydra_plugins.neuralab_launchers.packed import PackedLauncher


class OptunaSweeper(Sweeper):
    def __init__(self, **settings: Any) -> None:
        super().__init__()
        # sampler, pruner, direction, n_trials, n_jobs, storage, study_name, params: see
        # config.py next to this file
        self.settings = OmegaConf.to_container(OmegaConf.create(settings), resolve=True)
        self.hydra_context: HydraContext | None = None
        self.config: DictConfig | None = None
        self.launcher: Launcher | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> list[list[JobReturn]]:
        try:
            from neuralab.sweep.optuna_search import Search, checked_space
            from neuralab.sweep.optuna_space import SearchSpaceError
            from neuralab.sweep.optuna_study import open_study
        except ModuleNotFoundError as exc:
            if exc.name != "optuna":
                raise
            _refuse(['hydra/sweeper=optuna needs optuna: pip install -e ".[sweeps]"'])

        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        monitor = OmegaConf.select(self.config, "monitor", default=None) or {}
        try:
            space = checked_space(self.settings, arguments, parser, monitor.get("mode"))
        except SearchSpaceError as exc:
            _refuse(exc.errors)
        self.validate_batch_is_legal([space.probe()])  # a bad key fails here, not in trial 0
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")  # resume=true looks for it
        study = open_study(self.settings, self.settings["study_name"])
        search = Search(study, space, self.settings, sweep_dir, monitor.get("metric"))
        # Pruning hands each trial to its job in this process: the basic launcher, and the
        # packed one (whose lone jobs are pruned; inside a pack the pruner is not asked).
        in_process = isinstance(self.launcher, BasicLauncher | PackedLauncher)
        return search.run(self._launch, in_process=in_process)

    def _launch(self, overrides: list[list[str]], first_job_num: int) -> list[JobReturn]:
        return list(self.launcher.launch(overrides, initial_job_idx=first_job_num))


def _refuse(errors: list) -> NoReturn:
    """Bad settings: one line each on stderr, exit status 2 (as for bad input to a run);
    nothing was launched and no study was created."""
    from neuralab.runtime.job import EXIT_BAD_INPUT

    for error in errors:
        print(f"neuralab: error: {error}", file=sys.stderr)
    sys.exit(EXIT_BAD_INPUT)
