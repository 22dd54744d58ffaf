"""One pack: its members' runs (train.start, each in its own job dir) trained as one
Lightning fit of `PackedModule`, then tested each on its own best checkpoint.

`why_not` says why runs cannot share a pack (they then run one at a time, as with the
basic launcher). `fit_pack` leaves each member with what its lone run's `train`
would have when it writes results.json: the metrics logged during fit, the test
metrics and the best checkpoint, or the outcome that ended it (divergence).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.exceptions import SIGTERMException

from neuralab.metrics import EpochMetrics
from neuralab.pack.data import pack_loader, unequal_splits
from neuralab.pack.members import Member, undriven
from neuralab.pack.module import PackedModule
from neuralab.pack.stacked import structure, unstackable
from neuralab.pack.survival import PackStop, pack_checkpoint, restore
from neuralab.runtime.chunks import chunks_allowed
from neuralab.runtime.exact_resume import ExactResume
from neuralab.runtime.publish import publish
from neuralab.runtime.signals import RunInterrupted, StopRequest
from neuralab.runtime.timing import RunTimer

log = logging.getLogger("neuralab")

SINGLE_DEVICE = {"devices": 1, "num_nodes": 1}
PACKABLE_PRECISION = {"32-true", "32", 32, "64-true", "64", 64}


def why_not(runs: list[Any]) -> str | None:
    """Why these runs cannot train as one pack (None: they can)."""
    module = runs[0].module
    if not getattr(module, "packable", False):
        return f"{type(module).__name__} does not declare `packable = True`"
    trainer = runs[0].cfg.trainer
    if any(trainer.get(k, v) != v for k, v in SINGLE_DEVICE.items()):
        return "a pack trains on one device (trainer.devices=1)"
    if trainer.get("precision") not in PACKABLE_PRECISION:
        return f"trainer.precision={trainer.get('precision')} (packs train in 32 or 64 bits)"
    if trainer.get("accumulate_grad_batches", 1) != 1:
        return "trainer.accumulate_grad_batches is not 1"
    if len({r.plan.step for r in runs}) > 1:
        return "their checkpoints (resume) are at different steps"
    callbacks = sorted({name for r in runs for name in undriven(r.trainer)})
    if callbacks:
        return f"a pack would not run their callbacks {', '.join(callbacks)}"
    losses = [structure(r.module.loss_fn) for r in runs]
    if any(loss != losses[0] for loss in losses[1:]):
        return "their losses differ in structure (class weights on some members only)"
    # An input to check a batched twin with before the fit, where only a twin will do.
    example = getattr(runs[0].module, "example_input_array", None)
    nets = [r.module.net for r in runs]
    return unstackable(nets, example) or unequal_splits([r.datamodule for r in runs])


class PackData(L.LightningDataModule):
    """The members' train and val splits as one loader each (pack/data.py)."""

    def __init__(self, datamodules: list):
        super().__init__()
        self.datamodules = datamodules

    def train_dataloader(self) -> Any:
        chunk = self.datamodules[0].steps_per_chunk if chunks_allowed(self.trainer) else 1
        return pack_loader(self.datamodules, "train", self.trainer.strategy.root_device, chunk)

    def val_dataloader(self) -> Any:
        return pack_loader(self.datamodules, "val", self.trainer.strategy.root_device, 1)


class PackTimer(RunTimer):
    """timing.json in the dir of every member whose fit ended (a diverged lone run
    writes none): the pack's clocks, one fit trained them all; samples are each
    member's own (a batch is (M, B, ...))."""

    def __init__(self, members: list[Member]):
        super().__init__()
        self.members = members

    @staticmethod
    def rows(batch: Any) -> int:
        return batch[0].shape[1]

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.train_end = time.time()
        report = {**self.report(1), "packed_members": len(self.members)}
        for member in self.members:
            if member.outcome is None:
                self.write(member.run.output_dir, report)


class EpochLines(Callback):
    """One console line per pack epoch (the members' own loggers have their curves)."""

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: PackedModule) -> None:
        running = len(pl_module.active.members)
        log.info(
            "pack of %d: epoch %d/%s, %d still training",
            len(pl_module.members),
            trainer.current_epoch + 1,
            trainer.max_epochs,
            running,
        )


def pack_trainer(trainer: dict, members: list[Member], stop: PackStop) -> L.Trainer:
    """The member trainers' settings (resolved), without what each member has itself:
    callbacks, loggers, checkpoints, clipping (pack/module.py clips each by its own)."""
    return instantiate(
        trainer,
        callbacks=[EpochLines(), PackTimer(members), ExactResume(), stop],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        gradient_clip_val=None,
        _convert_="all",
    )


def fit_pack(runs: list[Any]) -> list[Member]:
    members = [Member(run, index) for index, run in enumerate(runs)]
    pack = PackedModule(members, runs[0].datamodule.task)
    request = StopRequest()
    stop = PackStop(request, members)
    trainer = pack_trainer(runs[0].config["trainer"], members, stop)
    data = PackData([r.datamodule for r in runs])
    log.info("packed %d jobs into one fit", len(members))
    try:
        with request.installed(), _resume_file(runs, members) as ckpt_path:
            if runs[0].cfg.train:
                _fit(trainer, pack, data, ckpt_path)
        for member in members:
            member.end_fit()
            member.fit_metrics = {k: float(v) for k, v in member.trainer.callback_metrics.items()}
            member.test_metrics = {}
        if runs[0].cfg.test:
            _test(pack, members, [r.datamodule for r in runs], trainer.strategy.root_device)
    except Exception as exc:  # the pack failed: each job that had not ended fails with it
        log.error("the pack of %d jobs failed: %s", len(members), exc)
        for member in members:
            member.outcome = member.outcome or exc
    return members


def _fit(trainer: L.Trainer, pack: PackedModule, data: PackData, ckpt_path: Path | None) -> None:
    try:
        trainer.fit(pack, datamodule=data, ckpt_path=ckpt_path, weights_only=True)
    except (RunInterrupted, SIGTERMException):
        log.warning("pack stopped by a signal: its running jobs saved last.ckpt")


@contextlib.contextmanager
def _resume_file(runs: list[Any], members: list[Member]) -> Iterator[Path | None]:
    """Continuing members (resume=true): the pack's checkpoint joined from theirs, in a
    file for the length of the fit (Lightning restores from a path)."""
    checkpoints = [r.plan.checkpoint for r in runs]
    if checkpoints[0] is None:
        yield None
        return
    for member, checkpoint in zip(members, checkpoints, strict=True):
        restore(member.trainer, member.module, checkpoint)
    path = runs[0].output_dir.parent / f".pack_resume_{runs[0].output_dir.name}.ckpt"
    torch.save(pack_checkpoint(checkpoints), path)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def _test(pack: PackedModule, members: list[Member], datamodules: list, device: Any) -> None:
    """Each member on its test split with its best weights, as trainer.test(ckpt_path=best)."""
    tested = [m.index for m in members if m.outcome is None]
    if not tested:
        return
    for index in tested:
        if members[index].best_checkpoint:
            members[index].module.load_state_dict(members[index].best_weights(device))
    pack.active.keep(tested)
    loader = pack_loader(datamodules, "test", device, 1)
    with torch.no_grad():
        for x, y in loader:
            outputs, losses = pack.forward_members(x, y, train=False)
            pack._add("test", outputs, y, losses)
    sums = pack.take_sums("test")
    for index in tested:
        member = members[index]
        metrics = EpochMetrics(member.run.datamodule.task)
        metrics.sums = sums[index]
        values = {f"test/{k}": float(v) for k, v in metrics.compute(lambda t: t).items()}
        publish(member.trainer, values)
        member.test_metrics = values
        member.watched("on_test_epoch_end")  # its test pictures
