"""`hydra/sweeper=optuna`: the settings of neuralab's Optuna sweeper, with their defaults.

Stored in Hydra's ConfigStore when Hydra scans the plugins at start-up, for every command,
so this module imports no optuna (an optional extra: `pip install -e ".[sweeps]"`).
The presets in conf/hparams_search/optuna_*.yaml select it and set `params`.
"""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore


@dataclass
class SamplerConf:
    name: str = "tpe"  # tpe (Bayesian) | random | grid (every point of the choices, in order)
    # Fixed by default, so the same command draws the same trials; null: a random seed.
    seed: int | None = 0
    n_startup_trials: int = 10  # tpe: random trials before its model takes over


@dataclass
class PrunerConf:
    name: str = "median"  # median | none
    n_startup_trials: int = 5  # trials that must finish before any trial is pruned
    n_warmup_steps: int = 0  # validation epochs a trial runs before it can be pruned


@dataclass
class OptunaSweeperConf:
    _target_: str = "hydra_plugins.neuralab_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    sampler: SamplerConf = field(default_factory=SamplerConf)
    pruner: PrunerConf = field(default_factory=PrunerConf)
    direction: str | None = None  # minimize | maximize; null: from the task's monitor.mode
    n_trials: int = 20  # in the study, counting those of earlier (stopped) sessions
    n_jobs: int = 1  # trials per launcher call (run in parallel by a parallel launcher)
    # SQLite in the sweep dir: `resume=true` finds the sweep dir and the study goes on.
    # null: in memory (nothing to resume).
    storage: str | None = "sqlite:///${hydra.sweep.dir}/optuna.db"
    study_name: str = "${hydra.job.name}"
    # setting -> search space in Hydra's sweep syntax (neuralab/sweep/optuna_space.py)
    params: dict[str, Any] = field(default_factory=dict)


ConfigStore.instance().store(
    group="hydra/sweeper", name="optuna", node=OptunaSweeperConf, provider="neuralab"
)
