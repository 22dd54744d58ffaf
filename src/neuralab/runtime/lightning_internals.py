"""Every use of a private Lightning attribute, in one place.

neuralab goes faster and survives more than Lightning alone by reaching into a few of
its internals. Each one is named in PRIVATE and reached only through `private()`: if a
Lightning release moves one, the error names the attribute and the installed version
(and tests/runtime/test_lightning_internals.py fails the same way on upgrade), instead
of an AttributeError deep inside a run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from torch import Tensor

# (owner, attribute): what each access reads or calls, and why neuralab needs it.
PRIVATE = {
    ("Trainer", "_logger_connector"): "log epoch values without self.log's per-key cost",
    ("Trainer", "_checkpoint_connector"): "snapshot a checkpoint dict kept in memory",
    ("_CheckpointConnector", "_get_loops_state_dict"): "a packed member's loop state, given",
    ("_TrainingEpochLoop", "_batches_that_stepped"): "the x-axis step of logged scalars",
    ("TensorBoardLogger", "_log_graph"): "draw the model graph once, not at fit and test",
    ("TensorBoardLogger", "_prefix"): "the tag prefix of the one-event scalar writer",
    ("LightningModule", "_log_hyperparams"): "whether a packed member's loggers get hparams",
    ("ModelCheckpoint", "_should_save_on_train_epoch_end"): "when last.ckpt is due",
    ("ModelCheckpoint", "_should_skip_saving_checkpoint"): "whether a save may run now",
    ("ModelCheckpoint", "_save_last_checkpoint"): "last.ckpt at every epoch end",
    ("ModelCheckpoint", "_last_checkpoint_saved"): "link best/last when the state is one",
    ("ModelCheckpoint", "_last_global_step_saved"): "link best/last when the state is one",
    ("registry", "entry_points"): "scan the installed entry points once, not per Trainer",
}


class LightningMoved(RuntimeError):
    pass


def private(obj: object, name: str) -> Any:
    """`obj.<name>`, failing with a message that names it and the Lightning version."""
    owner = type(obj).__name__
    assert any(attr == name for _, attr in PRIVATE), f"{name} is not listed in PRIVATE"
    try:
        return getattr(obj, name)
    except AttributeError:
        raise LightningMoved(
            f"lightning {L.__version__} has no {owner}.{name}, which neuralab uses to "
            f"{_why(name)} (src/neuralab/runtime/lightning_internals.py)"
        ) from None


def _why(name: str) -> str:
    return next(why for (_, attr), why in PRIVATE.items() if attr == name)


def _epoch_loop(trainer: L.Trainer) -> Any:
    return trainer.fit_loop.epoch_loop


# ---------------------------------------------------------------- start-up
class ScannedOnce:
    """An entry-point scan, run once per group: what `scan(group=...)` found first."""

    def __init__(self, scan: Any):
        self.scan, self.found = scan, {}

    def __call__(self, group: str) -> Any:
        if group not in self.found:
            self.found[group] = self.scan(group=group)
        return self.found[group]


def scan_entry_points_once() -> None:
    """Every Trainer scans all installed distributions for callback-factory entry
    points (~8 ms; a sweep builds a Trainer per job). What is installed does not change
    while a process runs, so the scan is kept; each Trainer still loads and calls the
    factories found (its own callbacks)."""
    from lightning.fabric.utilities import registry

    scan = private(registry, "entry_points")
    if not isinstance(scan, ScannedOnce):
        registry.entry_points = ScannedOnce(scan)


# ---------------------------------------------------------------- logging
def batches_that_stepped(trainer: L.Trainer) -> int:
    """Lightning's logging step: optimizer steps taken (also counting chunk steps)."""
    return private(_epoch_loop(trainer), "_batches_that_stepped")


def log_to_loggers(trainer: L.Trainer, metrics: dict[str, float], step: int | None) -> None:
    """Every logger gets `metrics` at `step` (None: the step Lightning would use now)."""
    private(trainer, "_logger_connector").log_metrics(metrics, step)


def draw_graph_once(trainer: L.Trainer) -> None:
    """Lightning draws the graph at each stage's start; after fit, once is enough."""
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            private(logger, "_log_graph")  # fails loudly if the switch moved
            logger._log_graph = False


def logged_hparams(module: L.LightningModule) -> dict | None:
    """What Lightning's loggers get at fit start: the saved hyperparameters, unless the
    module saved them with logger=False."""
    return module.hparams_initial if private(module, "_log_hyperparams") else None


def draws_graph(logger: Logger) -> bool:
    """Whether this logger draws the model graph at fit start (log_graph=true)."""
    return isinstance(logger, TensorBoardLogger) and private(logger, "_log_graph")


def tag_prefix(logger: Logger) -> str:
    return private(logger, "_prefix")


# ---------------------------------------------------------------- steps
def count_optimizer_step(trainer: L.Trainer) -> None:
    """One optimizer step taken outside Lightning's loop (a chunk's inner steps):
    trainer.global_step and the logging step advance as if Lightning had taken it."""
    loop = _epoch_loop(trainer)
    progress = loop.automatic_optimization.optim_progress.optimizer.step
    progress.increment_ready()
    progress.increment_completed()  # trainer.global_step += 1
    loop._batches_that_stepped = batches_that_stepped(trainer) + 1


# ---------------------------------------------------------------- checkpoints
def dump_checkpoint(trainer: L.Trainer, weights_only: bool) -> dict:
    """The checkpoint dict Lightning would write now."""
    return private(trainer, "_checkpoint_connector").dump_checkpoint(weights_only)


def pin_loops_state(trainer: L.Trainer, state: Callable[[], dict]) -> Callable[[], dict]:
    """The loop state the trainer's checkpoints take from now on: `state()`, instead of
    Lightning's walk of its loops (progress dataclass by dataclass, ~0.6 ms a
    checkpoint). Only for a trainer whose loops just load states known elsewhere (a
    packed member's). Returns the walk (the state as Lightning gives it)."""
    connector = private(trainer, "_checkpoint_connector")
    walk = private(connector, "_get_loops_state_dict")
    connector._get_loops_state_dict = state
    return walk


class CheckpointHooks(ModelCheckpoint):
    """ModelCheckpoint's private save path, under public names for runtime/checkpointing.py.

    Lightning calls `_save_checkpoint` and `_monitor_candidates`; they go to the
    subclass's `save_state` and `monitor_candidates`.
    """

    def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        self.save_state(trainer, filepath)

    def _monitor_candidates(self, trainer: L.Trainer) -> dict[str, Tensor]:
        return self.monitor_candidates(trainer)

    def save_state(self, trainer: L.Trainer, filepath: str) -> None:
        super()._save_checkpoint(trainer, filepath)

    def monitor_candidates(self, trainer: L.Trainer) -> dict[str, Tensor]:
        return super()._monitor_candidates(trainer)

    def saves_on_train_epoch_end(self, trainer: L.Trainer) -> bool:
        return private(self, "_should_save_on_train_epoch_end")(trainer)

    def may_save_now(self, trainer: L.Trainer) -> bool:
        return not private(self, "_should_skip_saving_checkpoint")(trainer)

    def save_last_now(self, trainer: L.Trainer) -> None:
        private(self, "_save_last_checkpoint")(trainer, self.monitor_candidates(trainer))

    @property
    def last_saved(self) -> tuple[str, int]:
        """(path, global step) of the newest save."""
        path = private(self, "_last_checkpoint_saved")
        return path, private(self, "_last_global_step_saved")

    @last_saved.setter
    def last_saved(self, value: tuple[str, int]) -> None:
        self.last_saved  # noqa: B018 -- checks both names exist before setting them
        self._last_checkpoint_saved, self._last_global_step_saved = value
