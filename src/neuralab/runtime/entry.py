"""The console scripts `neuralab-train` and `neuralab-eval`: light, so refusals are quick.

Importing lightning and torch takes seconds. A command starts here instead: Hydra
composes the config, and the run guard (runtime/run_guard.py) refuses what the config
alone rules out -- before anything heavy is imported. Only then does the task import
neuralab.train (or neuralab.eval), the flow of a run, which reads as before.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from neuralab.runtime.config import config_dir, register_resolvers
from neuralab.runtime.parse_cache import parse_interpolations_once
from neuralab.runtime.quick_exit import quick_exit
from neuralab.runtime.run_guard import guarded

register_resolvers()
parse_interpolations_once()  # a sweep's jobs resolve the same interpolations


def _train(cfg: DictConfig) -> float | None:
    from neuralab.runtime.job import run_job
    from neuralab.train import train

    return run_job(train)(cfg)


def _evaluate(cfg: DictConfig) -> float | None:
    from neuralab.eval import evaluate
    from neuralab.runtime.cli import report_config_errors

    return report_config_errors(evaluate)(cfg)


# Hydra names the job after the task function's module (`hydra.job.name`: the Optuna
# study's and the SLURM job's name): `train` and `eval`, the entry points' own modules.
_train.__module__, _evaluate.__module__ = "neuralab.train", "neuralab.eval"

train_main = guarded(
    hydra.main(config_path=config_dir(), config_name="train", version_base="1.3")(_train)
)
eval_main = guarded(
    hydra.main(config_path=config_dir(), config_name="eval", version_base="1.3")(_evaluate)
)
# The console scripts themselves: the same, then out without Python's teardown
# (runtime/quick_exit.py); in-process callers (tests) call train_main / eval_main.
train_cli, eval_cli = quick_exit(train_main), quick_exit(eval_main)
