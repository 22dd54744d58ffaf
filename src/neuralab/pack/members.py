"""A pack's member: its lone run's own module, trainer and callbacks, driven by the pack.

Each member is built exactly as its lone run (train.start: data, module, trainer, the
configured callbacks and loggers, in its own job dir). Its trainer never fits;
instead, at each epoch boundary of the pack's fit, the member's trainer takes the
pack's loop state (the loop counters of the lone run at that point: same data size,
batch size and chunks) and the member's own epoch sums, and its module and its
callbacks run the hooks they would run in the lone run:
    module.on_train_epoch_start        the epoch's lr (its own optimizer's)
    module.on_validation_epoch_end     val/* to its loggers and callback_metrics
    RunRecord, EarlyStopping, ModelCheckpoint .on_validation_end
    ... .on_train_epoch_end, module.on_train_epoch_end  (train/*, epochs)
    ... .on_train_end                  when it stops or the pack ends
So a member's TensorBoard scalars, best.ckpt and last.ckpt (written by its own
ModelCheckpoint through its own trainer: today's format, its config stamped) and
early stopping are its lone run's. Its diagnostics, which watch every step, are
driven step by step (pack/watch.py). The other callbacks that watch every step (the
timer, the progress bar, the lone divergence guard) are not driven: the pack has its
own timer and checks divergence per member itself (pack/module.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, Checkpoint, EarlyStopping, ModelSummary
from lightning.pytorch.callbacks.progress import ProgressBar
from lightning.pytorch.trainer.states import TrainerFn, TrainerStatus
from lightning.pytorch.utilities.types import LRSchedulerConfig
from torch import Tensor

from neuralab.diagnostics import Diagnostics
from neuralab.runtime.checkpointing import ModelCheckpoint, frozen, snapshotting
from neuralab.runtime.divergence import Diverged, DivergenceGuard
from neuralab.runtime.exact_resume import ExactResume
from neuralab.runtime.lightning_internals import draws_graph, logged_hparams, pin_loops_state
from neuralab.runtime.loggers import write_graph
from neuralab.runtime.run_record import RunRecord
from neuralab.runtime.signals import GracefulStop, RunInterrupted
from neuralab.runtime.timing import RunTimer
from neuralab.sweep.optuna_pruning import OptunaPruning

# The member callbacks the pack drives, and those that only need `setup` (state).
DRIVEN = (RunRecord, EarlyStopping, Checkpoint)
MONITORING = (EarlyStopping, Checkpoint)  # Lightning runs their epoch-end hooks last
# Every callback a member may have: driven, watched step by step (pack/watch.py),
# shown once at fit start (the model summary), or whose work the pack does itself (its
# timer, epoch lines, per-member divergence check and signal stop; Optuna's pruner is
# not consulted in a pack). A job with any other callback -- a forker's own, which the
# pack would not run -- trains alone (pack/fit.py `why_not`).
KNOWN = (
    *DRIVEN,
    ExactResume,
    Diagnostics,
    ModelSummary,
    RunTimer,
    ProgressBar,
    DivergenceGuard,
    GracefulStop,
    OptunaPruning,
)


def undriven(trainer: L.Trainer) -> list[str]:
    """The names of the trainer's callbacks a pack would not run."""
    return [type(cb).__name__ for cb in trainer.callbacks if not isinstance(cb, KNOWN)]


@dataclass
class Optimization:
    optimizer: torch.optim.Optimizer
    scheduler: Any = None
    interval: str = "epoch"
    monitor: str | None = None


class Member:
    def __init__(self, run: Any, index: int):
        self.run, self.index = run, index
        self.module: L.LightningModule = run.module
        self.trainer: L.Trainer = run.trainer
        trainer_cfg = run.cfg.trainer
        self.clip = (
            trainer_cfg.get("gradient_clip_val"),
            trainer_cfg.get("gradient_clip_algorithm"),
        )
        self.driven = [cb for cb in self.trainer.callbacks if isinstance(cb, DRIVEN)]
        self.stopped = False
        self.outcome: Exception | None = None  # Diverged, when it did
        self.loops: dict = {}  # its trainer's loop state (attach, follow)
        self.optimization: Optimization | None = None
        self.watch: Any = None  # its diagnostics (pack/watch.py), if it has any

    def watched(self, hook: str, *args: Any) -> None:
        """Its diagnostics' `hook` (pack/watch.py), if it has diagnostics."""
        if self.watch is not None:
            self.watch.call(hook, *args)

    # ----------------------------------------------------------------- set-up
    def optimize(self, pack_trainer: L.Trainer) -> Optimization:
        """The member's own configure_optimizers (it may ask the trainer for the
        number of steps: the pack's is the lone run's)."""
        self.module.trainer = pack_trainer
        config = self.module.configure_optimizers()
        if isinstance(config, torch.optim.Optimizer):
            self.optimization = Optimization(config)
        else:
            schedule = config.get("lr_scheduler") or {}
            if not isinstance(schedule, dict):
                schedule = {"scheduler": schedule}
            self.optimization = Optimization(
                config["optimizer"],
                schedule.get("scheduler"),
                schedule.get("interval", "epoch"),
                schedule.get("monitor"),
            )
        return self.optimization

    def attach(self, pack_trainer: L.Trainer, graph: Callable[[Any], Any]) -> None:
        """The member's trainer as its lone run's at fit start (its fit never runs)."""
        trainer, module, parts = self.trainer, self.module, self.optimization
        self._summary()
        trainer.strategy.connect(module)
        module.trainer = trainer
        trainer.state.fn, trainer.state.status = TrainerFn.FITTING, TrainerStatus.RUNNING
        trainer.strategy.optimizers = [parts.optimizer]
        if parts.scheduler is not None:
            plateau = isinstance(parts.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
            trainer.strategy.lr_scheduler_configs = [
                LRSchedulerConfig(
                    parts.scheduler,
                    interval=parts.interval,
                    monitor=parts.monitor,
                    reduce_on_plateau=plateau,
                )
            ]
        trainer.callbacks.append(PackedPosition(pack_trainer))
        self.loops = pin_loops_state(trainer, self._loops_state)()
        if isinstance(trainer.checkpoint_callback, ModelCheckpoint):
            trainer.checkpoint_callback.keep_written = True  # its test reads it (best_weights)
        for callback in trainer.callbacks:
            if isinstance(callback, (*DRIVEN, ExactResume)):
                callback.setup(trainer, module, "fit")

        for callback in self.driven:
            callback.on_train_start(trainer, module)
        hparams = logged_hparams(module)
        for logger in trainer.loggers:
            if hparams is not None:
                logger.log_hyperparams(hparams)
            if draws_graph(logger):
                write_graph(logger.experiment, graph(module))

    def _summary(self) -> None:
        """The model summary, as its lone run prints it at fit start (the sweep's first
        job has it); its example forward runs without a trainer's batch hooks."""
        self.module.trainer = None
        for callback in self.trainer.callbacks:
            if isinstance(callback, ModelSummary):
                callback.on_fit_start(self.trainer, self.module)

    # ---------------------------------------------------------------- driving
    def follow(self, loops: dict) -> None:
        """Take the pack's loop counters: the lone run's at this point."""
        self.trainer.fit_loop.load_state_dict(loops)
        self.loops = {**self.loops, "fit_loop": loops}

    def _loops_state(self) -> dict:
        """Its checkpoints' loop state: the fit loop's the pack's it took last (its own
        loops give back what they load), the loops it never runs as they were. Shared
        with the pack and the other members: new dicts where PackedPosition writes."""
        fit_loop = self.loops["fit_loop"]
        state = {**fit_loop.get("state_dict", {})}
        return {**self.loops, "fit_loop": {**fit_loop, "state_dict": state}}

    def train_epoch_start(self, loops: dict) -> None:
        self.follow(loops)
        self.module.on_train_epoch_start()

    def validation_end(self, loops: dict, sums: Tensor) -> None:
        self.follow(loops)
        self.module.metrics["val"].sums = sums.clone()
        self.module.on_validation_epoch_end()
        self.watched("on_validation_epoch_end")
        for callback in self.driven:
            callback.on_validation_end(self.trainer, self.module)

    def train_epoch_end(self, loops: dict, sums: Tensor | None) -> None:
        self.follow(loops)
        trainer, module = self.trainer, self.module
        module.metrics["train"].sums = None if sums is None else sums.clone()
        for callback in self.driven:
            if not isinstance(callback, MONITORING):
                callback.on_train_epoch_end(trainer, module)
        self.watched("on_train_epoch_end")
        module.on_train_epoch_end()
        for callback in self.driven:
            if isinstance(callback, MONITORING):
                callback.on_train_epoch_end(trainer, module)
        if trainer.should_stop:
            self.end_fit()

    def end_fit(self) -> None:
        """As the lone run's fit ends: ModelCheckpoint writes what it kept in memory."""
        if self.stopped:
            return
        self.stopped = True
        for callback in self.driven:
            callback.on_train_end(self.trainer, self.module)
        self.watched("on_train_end")
        self.trainer.state.status = TrainerStatus.FINISHED

    def diverge(self, step: int, value: float) -> None:
        """Its loss was not finite at `step`: it stops there, as its lone run would."""
        last = self.run.last
        self.outcome = Diverged(step, value, last if last.is_file() else None)
        self.stopped = True
        for callback in self.driven:  # its newest good state reaches the disk
            callback.on_exception(self.trainer, self.module, self.outcome)

    def save_interrupted(self, loops: dict, sums: Tensor | None, signum: int) -> None:
        """A signal stops the pack: this member's full state to last.ckpt, as its lone
        run's GracefulStop saves it (then ModelCheckpoint writes what it kept)."""
        self.follow(loops)
        self.module.metrics["train"].sums = None if sums is None else sums.clone()
        self.trainer.save_checkpoint(self.run.last, weights_only=False)
        self.outcome = RunInterrupted(signum, self.trainer.global_step, self.run.last)
        self.stopped = True
        for callback in self.driven:
            callback.on_exception(self.trainer, self.module, self.outcome)

    def monitored(self, name: str) -> float:
        return float(self.trainer.callback_metrics[name])

    @property
    def best_checkpoint(self) -> str | None:
        checkpoint = self.trainer.checkpoint_callback
        return (checkpoint.best_model_path or None) if checkpoint else None

    def best_weights(self, device: torch.device) -> dict[str, Tensor]:
        """The state_dict in best_checkpoint: the dict written there at the end of fit
        when it is still in memory (the same tensors), else read back from the file."""
        best, checkpoint = self.best_checkpoint, self.trainer.checkpoint_callback
        kept = getattr(checkpoint, "written", {}).get(best)
        if kept is not None:
            return kept["state_dict"]
        return torch.load(best, map_location=device, weights_only=True)["state_dict"]


class PackedPosition(Callback):
    """What a member's checkpoints take from the pack: the train loader's position (the
    member's trainer has none of its own, where its lone run keeps its own), and tensors
    of their own: the member's parameters and optimizer states are views of the pack's
    stacked ones, and torch.save writes a view's whole storage (every member's in each
    file)."""

    def __init__(self, pack_trainer: L.Trainer):
        self.pack_trainer = pack_trainer

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict
    ) -> None:
        for key in ("state_dict", "optimizer_states"):  # views of the pack's stacked tensors
            if key in checkpoint and not snapshotting():  # (a snapshot copies them anyway)
                checkpoint[key] = frozen(checkpoint[key])
        position = self.pack_trainer.train_dataloader.state_dict()
        fit_loop = checkpoint.get("loops", {}).get("fit_loop", {})
        fit_loop.setdefault("state_dict", {})["combined_loader"] = [position]
        exact = checkpoint.get("callbacks", {}).get(ExactResume.__qualname__)
        if exact is not None:
            exact["train_loader"] = position
