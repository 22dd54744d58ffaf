"""Pruning: a trial of an Optuna sweep reports its validation curve and stops when the
pruner (median by default) judges it worse than the trials before it at the same epoch.

The sweeper hands each running trial to its job through this module (`trials_in_process`,
keyed by the Hydra job number, which is the trial number). That only works when the job
runs in the sweeper's process -- Hydra's basic launcher -- so with other launchers (joblib,
submitit) the callback finds no trial and pruning is off. It is also off under DDP (the
ranks would have to agree on the decision) and in every run outside an Optuna sweep, where
`OptunaPruning` (in conf/callbacks/default.yaml) does nothing.

A pruned run raises `Pruned`; it ends with status `pruned` (runtime/job.py) and the sweep goes
on. This module imports no optuna: it only calls the trial's `report` and `should_prune`.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import lightning as L
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.callbacks import Callback

_trials: dict[int, Any] = {}  # Hydra job number -> the optuna.Trial it runs


class Pruned(Exception):
    """The pruner stopped this trial at `epoch`; the run is over, status `pruned`."""

    def __init__(self, epoch: int, metric: str, value: float):
        self.epoch, self.metric, self.value = epoch, metric, value
        super().__init__(f"pruned by the Optuna sweep at epoch {epoch} ({metric}={value:.4g})")


@contextlib.contextmanager
def trials_in_process(trials: Mapping[int, Any]) -> Iterator[None]:
    """Make `trials` (job number -> trial) visible to the jobs launched inside the block."""
    _trials.update(trials)
    try:
        yield
    finally:
        _trials.clear()


def current_trial() -> Any | None:
    """The trial the running Hydra job belongs to, or None outside an in-process sweep."""
    if not _trials:
        return None
    try:
        num = HydraConfig.get().job.num
    except ValueError:  # not inside a Hydra job
        return None
    return _trials.get(num)


class OptunaPruning(Callback):
    """Report `monitor` after every validation epoch; raise Pruned when the trial should stop."""

    def __init__(self, monitor: str):
        self.monitor = monitor
        self._trial: Any | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._trial = current_trial() if stage == "fit" and trainer.world_size == 1 else None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._trial is None or trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None or not math.isfinite(float(value)):
            return  # a NaN loss is the divergence guard's to report
        value, epoch = float(value), trainer.current_epoch
        with warnings.catch_warnings():
            # A trial continued after a hard stop may report again an epoch it reported
            # after its last checkpoint: Optuna keeps the first value and warns.
            warnings.simplefilter("ignore")
            self._trial.report(value, epoch)
        if self._trial.should_prune():
            raise Pruned(epoch, self.monitor, value)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._trial = None
