"""The members' own optimizers and schedules, stepped by Lightning as one.

Lightning's loop steps one optimizer (and its schedules) per batch, and counts the
steps in the checkpoint's loop state. `PackOptimizer` is that one optimizer: its step
updates every running member with the member's own optimizer and state (never a
shared state: a member's Adam moments are its own, and its `state_dict()` is what
its lone run would save). Members that stopped (early stopping, divergence) are
skipped: their parameters and optimizer states stay as they were. The same holds for
`PackSchedule`.

Speed: a small net's optimizer step is dozens of tiny tensor ops, each costing more
in overhead than in arithmetic. Members whose optimizers are of one class with equal
settings step together: as rows of the stacked parameters while their rows allow it
(pack/stacked_step.py: a seed sweep, a seed x lr sweep), else by one optimizer of that
class over all their parameters, with torch's multi-tensor (`foreach`) kernels,
sharing each parameter's own state dict with the member's optimizer. Both do the same
arithmetic per parameter (tests/pack compares them with stepping each optimizer).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer
from torch.optim.lr_scheduler import ReduceLROnPlateau

from neuralab.pack.stacked_step import StackedStep


class Active:
    """The indices of the members that still train (shared by the pack's parts)."""

    def __init__(self, count: int):
        self.members = list(range(count))
        self._index: Tensor | None = None

    def stop(self, member: int) -> None:
        if member in self.members:
            self.members.remove(member)
            self._index = None

    def keep(self, members: list[int]) -> None:
        """Only `members` run from now on (the test stage: those that did not diverge)."""
        self.members, self._index = list(members), None

    def index(self, device: torch.device) -> Tensor:
        """`members` as a tensor on `device`, made once per set (read every step)."""
        if self._index is None or self._index.device != device:
            self._index = torch.tensor(self.members, device=device)
        return self._index


class PackOptimizer(Optimizer):
    def __init__(self, optimizers: list[Optimizer], active: Active, nets: Any):
        # Not Optimizer.__init__: the parameters belong to the members' optimizers.
        self.optimizers, self.active, self.nets = optimizers, active, nets
        self.param_groups = [g for o in optimizers for g in o.param_groups]
        self.defaults: dict[str, Any] = {}
        self.state: dict = {}
        self._optimizer_step_pre_hooks: dict = {}
        self._optimizer_step_post_hooks: dict = {}
        self._together: dict[tuple, Optimizer] = {}  # see the module doc
        self.stacked = StackedStep(optimizers, nets)

    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        loss = closure() if closure is not None else None
        groups: dict[tuple, list[int]] = {}
        for member in self.active.members:
            groups.setdefault(_settings(self.optimizers[member]), []).append(member)
        if self.stacked.usable([(key[0], members) for key, members in groups.items()]):
            self.stacked.step()  # each group as one (pack/stacked_step.py)
            self._stepped(self.active.members)
            return loss
        self.stacked.release()
        for key, members in groups.items():
            if key[0] is None or len(members) == 1:
                for member in members:
                    self.optimizers[member].step()
            else:
                self._stepper(key, members).step()
                self._stepped(members)
        return loss

    def _stepped(self, members: list[int]) -> None:
        for member in members:  # what a schedule checks: its optimizer stepped first
            self.optimizers[member]._opt_called = True

    def _stepper(self, key: tuple, members: list[int]) -> Optimizer:
        """One optimizer of the members' class over their parameters, its settings
        theirs (kept current: a schedule changes lr), each parameter's state theirs."""
        owners = [self.optimizers[m] for m in members]
        cache_key = (key[0], tuple(members))
        together = self._together.get(cache_key)
        if together is None:
            if len(self._together) > 64:  # running members or groupings changed a lot
                self._together.clear()
            params = [p for o in owners for p in o.param_groups[0]["params"]]
            together = type(owners[0])([{**_plain(owners[0]), "params": params}])
            for owner in owners:
                for param in owner.param_groups[0]["params"]:
                    together.state[param] = owner.state[param]  # the same dict: shared
            self._together[cache_key] = together
        together.param_groups[0].update(_plain(owners[0]))
        return together

    def zero_grad(self, set_to_none: bool = True) -> None:
        # The members' .grad are views of the stacked gradients (StackedNets.share_grads).
        self.nets.zero_grad()

    def state_dict(self) -> dict[str, Any]:
        return {"members": [o.state_dict() for o in self.optimizers]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for optimizer, state in zip(self.optimizers, state_dict["members"], strict=True):
            optimizer.load_state_dict(state)


def _plain(optimizer: Optimizer) -> dict[str, Any]:
    """Its group's settings, for the multi-tensor path."""
    settings = {k: v for k, v in optimizer.param_groups[0].items() if k != "params"}
    return {**settings, "foreach": True}


def _settings(optimizer: Optimizer) -> tuple:
    """What must be equal for optimizers to step as one: class and every setting of
    their one parameter group; (None, ...) when they cannot (several groups, no
    multi-tensor path, settings that are not plain values)."""
    groups = optimizer.param_groups
    if len(groups) != 1 or "foreach" not in groups[0]:
        return (None, id(optimizer))
    items = sorted((k, v) for k, v in groups[0].items() if k not in ("params", "foreach"))
    try:
        hash(tuple(items))
    except TypeError:
        return (None, id(optimizer))
    return (type(optimizer), tuple(items))


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
