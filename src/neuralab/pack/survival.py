"""A pack stopped by a signal, and continued with resume=true.

Stop: at Lightning's next stopping point (after a chunk, or at an epoch end) every
running member saves `checkpoints/last.ckpt` through its own trainer -- its lone
run's full training state, with the pack's loader position and its own epoch sums --
and ends `interrupted`. Members that had already stopped (early stopping) are tested
and end as they would have.

Continue: each member's run finds its own last.ckpt (runtime/resume.py); `pack_checkpoint`
joins them into the checkpoint of the pack's own fit (the members' weights, optimizer
and schedule states, the loop state they share), and each member's callbacks and
module take back their own states (`restore`). Members continue together only from
the same step; otherwise they continue one at a time, each from its own checkpoint.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.exceptions import SIGTERMException

from neuralab.runtime.exact_resume import ExactResume
from neuralab.runtime.signals import RunInterrupted, StopRequest

COPIED = ("epoch", "global_step", "pytorch-lightning_version", "loops")


def pack_checkpoint(checkpoints: list[dict]) -> dict:
    """The pack fit's checkpoint from its members' own (all saved at the same step)."""
    first = checkpoints[0]
    pack = {key: first[key] for key in COPIED}
    pack["state_dict"] = {
        f"member_modules.{i}.{key}": value
        for i, checkpoint in enumerate(checkpoints)
        for key, value in checkpoint["state_dict"].items()
    }
    pack["optimizer_states"] = [{"members": [c["optimizer_states"][0] for c in checkpoints]}]
    schedules = [c["lr_schedulers"][0] for c in checkpoints if c.get("lr_schedulers")]
    pack["lr_schedulers"] = [{"members": schedules}] if schedules else []
    # The loader position and the random state: the pack's, the same in every member's.
    exact = first.get("callbacks", {}).get(ExactResume.__qualname__)
    pack["callbacks"] = {ExactResume.__qualname__: exact} if exact else {}
    return pack


def restore(trainer: L.Trainer, module: L.LightningModule, checkpoint: dict) -> None:
    """A member's callbacks and module take back their states (Lightning restores the
    weights and optimizer through the pack's checkpoint)."""
    states = checkpoint.get("callbacks", {})
    for callback in trainer.callbacks:
        if callback.state_key in states:
            callback.load_state_dict(states[callback.state_key])
    module.on_load_checkpoint(checkpoint)


class PackStop(Callback):
    """A signal stops the pack where Lightning would stop a lone run, and every running
    member saves its full state first (as GracefulStop does for a lone run)."""

    def __init__(self, request: StopRequest, members: list):
        self.request, self.members = request, members
        self.interrupted: RunInterrupted | None = None

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, i: int
    ) -> None:
        last_batch = trainer.fit_loop.epoch_loop.batch_progress.is_last_batch
        if self.request.signum is not None and not last_batch:
            raise self._save_all(trainer, pl_module)

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if isinstance(exception, SIGTERMException) and self.interrupted is None:
            self._save_all(trainer, pl_module)  # Lightning stopped at an epoch end

    def _save_all(self, trainer: L.Trainer, pack: Any) -> RunInterrupted:
        loops, sums = trainer.fit_loop.state_dict(), pack.sums["train"]
        signum = self.request.signum or 15
        for index in pack.active.members:
            member = self.members[index]
            member.save_interrupted(loops, None if sums is None else sums[index], signum)
        self.interrupted = RunInterrupted(signum, trainer.global_step, None)
        return self.interrupted
