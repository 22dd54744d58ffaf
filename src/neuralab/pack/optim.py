"""The members' own optimizers and schedules, stepped by Lightning as one.

Lightning's loop steps one optimizer (and its schedules) per batch, and counts the
steps in the checkpoint's loop state. `PackOptimizer` is that one optimizer: its step
steps every running member's own optimizer (never a shared state: a member's Adam
moments are its own, and its `state_dict()` is what its lone run would save).
Members that stopped (early stopping, divergence) are skipped: their parameters and
optimizer states stay as they were. The same holds for `PackSchedule`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor
from torch.optim import Optimizer
from torch.optim.lr_scheduler import ReduceLROnPlateau


class Active:
    """The indices of the members that still train (shared by the pack's parts)."""

    def __init__(self, count: int):
        self.members = list(range(count))

    def stop(self, member: int) -> None:
        if member in self.members:
            self.members.remove(member)


class PackOptimizer(Optimizer):
    def __init__(self, optimizers: list[Optimizer], active: Active):
        # Not Optimizer.__init__: the parameters belong to the members' optimizers.
        self.optimizers, self.active = optimizers, active
        self.param_groups = [g for o in optimizers for g in o.param_groups]
        self.defaults: dict[str, Any] = {}
        self.state: dict = {}
        self._optimizer_step_pre_hooks: dict = {}
        self._optimizer_step_post_hooks: dict = {}

    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        loss = closure() if closure is not None else None
        for member in self.active.members:
            self.optimizers[member].step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        for member in self.active.members:
            self.optimizers[member].zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return {"members": [o.state_dict() for o in self.optimizers]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for optimizer, state in zip(self.optimizers, state_dict["members"], strict=True):
            optimizer.load_state_dict(state)


class PackSchedule:
    """The members' schedules; `metrics(member)` gives a plateau schedule its value."""

    def __init__(self, schedulers: list, active: Active, metrics: Callable[[int], float]):
        self.schedulers, self.active, self.metrics = schedulers, active, metrics
        self.plateau = isinstance(schedulers[0], ReduceLROnPlateau)

    def step(self) -> None:
        for member in self.active.members:
            if self.plateau:
                self.schedulers[member].step(self.metrics(member))
            else:
                self.schedulers[member].step()

    def state_dict(self) -> dict[str, Any]:
        return {"members": [s.state_dict() for s in self.schedulers]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for scheduler, state in zip(self.schedulers, state_dict["members"], strict=True):
            scheduler.load_state_dict(state)
