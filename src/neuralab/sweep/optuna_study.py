"""The Optuna study behind a sweep: its settings, sampler and pruner, resuming it, and how a
finished job is told to it.

A study lives in its storage (by default `optuna.db`, SQLite, in the sweep dir), so a stopped
search goes on where it stopped: trials that finished stay finished and count towards
`n_trials`; a trial left running by a stopped process is run again under its own number,
in its own job dir, where `resume=true` continues it from its last checkpoint.

How a job's ending is told to the study:

    job status        trial state   why
    ok (finite value) COMPLETE      the value is the best value of the monitored metric
    pruned            PRUNED        the pruner stopped it (last reported value kept)
    diverged          PRUNED        NaN/Inf loss: a bad region that TPE should learn to avoid
    failed, other     FAIL          an error says nothing about the hyperparameters; TPE
                                    ignores FAIL trials
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, Trial, TrialState

from neuralab.errors import ConfigError
from neuralab.runtime.run_dirs import DIVERGED, OK, PRUNED

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "none")
DIRECTIONS = ("minimize", "maximize")
MODE_TO_DIRECTION = {"min": "minimize", "max": "maximize"}
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
SQLITE = "sqlite:///"


def check_settings(sweeper: Mapping[str, Any]) -> list[ConfigError]:
    """Every setting of `hydra.sweeper` (but params) that Optuna cannot run with."""
    errors = []

    def need(ok: bool, key: str, allowed: str | tuple) -> None:
        if not ok:
            errors.append(ConfigError(f"hydra.sweeper.{key}", _get(sweeper, key), allowed))

    need(_get(sweeper, "sampler.name") in SAMPLERS, "sampler.name", SAMPLERS)
    need(_get(sweeper, "pruner.name") in PRUNERS, "pruner.name", PRUNERS)
    need(_get(sweeper, "direction") in (None, *DIRECTIONS), "direction", (*DIRECTIONS, "null"))
    for key in ("n_trials", "n_jobs", "sampler.n_startup_trials"):
        need(_is_int(_get(sweeper, key), low=1), key, "an integer >= 1")
    for key in ("pruner.n_startup_trials", "pruner.n_warmup_steps"):
        need(_is_int(_get(sweeper, key), low=0), key, "an integer >= 0")
    return errors


def _get(node: Mapping[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def _is_int(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def direction(setting: str | None, monitor_mode: str | None) -> str:
    """`hydra.sweeper.direction`, or the task's `monitor.mode` (min/max), or minimize."""
    return setting or MODE_TO_DIRECTION.get(str(monitor_mode), "minimize")


def open_study(sweeper: Mapping[str, Any], name: str) -> optuna.Study:
    """The study `name` in the storage, created or (when it exists) loaded."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the sweeper logs each trial itself
    storage = sweeper["storage"]
    if storage and storage.startswith(SQLITE):  # SQLite makes the file, not its dir
        Path(storage.removeprefix(SQLITE)).parent.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        direction=sweeper["direction"],
        pruner=_pruner(sweeper["pruner"]),
        load_if_exists=True,
    )
    # The sampler is set once the study is loaded: a resumed study's seed is moved on by the
    # trials it has, so it does not draw the same "random" points again.
    study.sampler = _sampler(sweeper["sampler"], already=len(study.trials))
    return study


def _sampler(conf: Mapping[str, Any], already: int) -> optuna.samplers.BaseSampler:
    seed = None if conf["seed"] is None else int(conf["seed"]) + already
    if conf["name"] == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=conf["n_startup_trials"])
    # random; grid trials are enqueued with all their values (grid_batch): nothing is drawn
    return optuna.samplers.RandomSampler(seed=seed)


def _pruner(conf: Mapping[str, Any]) -> optuna.pruners.BasePruner:
    if conf["name"] == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(
        n_startup_trials=conf["n_startup_trials"], n_warmup_steps=conf["n_warmup_steps"]
    )


def started(study: optuna.Study) -> int:
    """Trials that count towards n_trials: finished, or left running (continued first)."""
    return sum(t.state in (*FINISHED, TrialState.RUNNING) for t in study.trials)


def left_running(study: optuna.Study) -> list[Trial]:
    """Trials a stopped process left running, as trials this process can report to and tell.
    `Trial(study, trial_id)` is how Study.ask builds one; FrozenTrial has no public id."""
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return [Trial(study, t._trial_id) for t in running]


def ask_batch(study: optuna.Study, distributions: Mapping[str, Any], size: int) -> list[Trial]:
    return [study.ask(dict(distributions)) for _ in range(size)]


def grid_batch(
    study: optuna.Study, distributions: Mapping[str, Any], points: list[dict], size: int
) -> list[Trial]:
    """The next `size` grid points no trial of the study has, in grid order, as trials."""
    tried = [t.params for t in study.get_trials(deepcopy=False) if t.state != TrialState.WAITING]
    trials = []
    for point in [p for p in points if p not in tried][:size]:
        study.enqueue_trial(point)
        trials.append(study.ask(dict(distributions)))  # takes the enqueued values
    return trials


def tell(study: optuna.Study, trial: Trial, status: str, value: Any, attrs: dict) -> FrozenTrial:
    """Record a job's ending in the study (the table in this module's docstring)."""
    for key, attr in attrs.items():
        trial.set_user_attr(key, attr)
    trial.set_user_attr("status", status)
    finite = isinstance(value, int | float) and math.isfinite(value)
    if status == OK and finite:
        return study.tell(trial, float(value))
    if status in (PRUNED, DIVERGED):
        return study.tell(trial, state=TrialState.PRUNED)
    return study.tell(trial, state=TrialState.FAIL)


def best(study: optuna.Study) -> FrozenTrial | None:
    """The best COMPLETE trial, or None while there is none."""
    try:
        return study.best_trial
    except ValueError:
        return None
