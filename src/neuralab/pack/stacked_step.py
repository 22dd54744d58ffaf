"""The members' optimizer steps as steps over rows of the stacked parameters.

Members whose optimizers are of one elementwise class (Adam, SGD, ...) with equal
settings -- all members of a seed sweep; each learning rate's members of a seed x lr
sweep -- form a group. When a group's members sit in evenly spaced rows of the stacked
parameters (M, ...) (pack/stacked.py) -- rows 0..M-1, or every 4th row from row 1 --
those rows are one view of each stacked tensor, and one optimizer of that class steps
the views: a handful of tensor ops per group instead of a handful per member and
parameter, the same arithmetic per element. Each member's optimizer keeps its state as
views of its rows of the group's state (its Adam moments are still its own numbers,
and its state_dict is its lone run's), and shares the scalar `step` with its group.
Once the groups change (a member stopped, or a plateau schedule changed one member's
lr), `release` gives each member its own scalars and the members step on their own
(pack/optim.py), on the same views.

Where torch has a fused kernel for the class on the device (Adam, AdamW, SGD, Adagrad)
and the rows are contiguous, the step uses it: one kernel per tensor instead of one
per operation. It rounds a few operations differently from the members' own (unfused)
step, by ~1 ulp a step (a lone run and its packed twin agree to ~1e-7 after 20
epochs); `fused=False` keeps it bit-equal to them (tests/pack).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.optim import Optimizer

# Optimizers whose update is elementwise: stepping a stack of parameters is stepping
# each of them (no norm or statistic across a parameter's entries).
ELEMENTWISE = (
    torch.optim.Adam,
    torch.optim.AdamW,
    torch.optim.SGD,
    torch.optim.RMSprop,
    torch.optim.Adagrad,
    torch.optim.Adamax,
    torch.optim.NAdam,
    torch.optim.RAdam,
)


class StackedStep:
    def __init__(self, optimizers: list[Optimizer], nets: Any, fused: bool = True):
        self.optimizers, self.nets, self.fused = optimizers, nets, fused
        self.groups: list[RowGroup] | None = None  # fixed at the first step
        self.released = False

    def usable(self, groups: list[tuple[type | None, list[int]]]) -> bool:
        """Whether these groups ((optimizer class, members) each) step as rows: the
        classes elementwise, each group's rows evenly spaced, the groups those of the
        first step."""
        if self.released:
            return False
        members = [m for _, m in groups]
        if self.groups is None:
            if not self.nets.params or not all(
                cls in ELEMENTWISE and _spaced(m) for cls, m in groups
            ):
                return False
            self.groups = [RowGroup(m, self.optimizers, self.nets, self.fused) for m in members]
        return [g.members for g in self.groups] == members

    def step(self) -> None:
        for group in self.groups:
            group.step()

    def release(self) -> None:
        """Before members step on their own: each its own scalars (its own step count)."""
        if self.released:
            return
        self.released = True
        for optimizer in self.optimizers:
            for state in optimizer.state.values():
                for key, value in state.items():
                    if isinstance(value, Tensor) and value.dim() == 0:
                        state[key] = value.clone()


class RowGroup:
    """Members in evenly spaced rows, stepped by one optimizer over views of those rows."""

    def __init__(self, members: list[int], optimizers: list[Optimizer], nets: Any, fused: bool):
        self.members, self.nets = members, nets
        self.optimizers = [optimizers[m] for m in members]
        spacing = members[1] - members[0] if len(members) > 1 else 1
        self.rows = slice(members[0], members[-1] + 1, spacing)
        self.params = {n: nn.Parameter(p.detach()[self.rows]) for n, p in nets.params.items()}
        self.fused = fused and spacing == 1  # torch's fused kernels want contiguous rows
        self.stepper: Optimizer | None = None
        self.linked = False

    def step(self) -> None:
        for name, param in self.params.items():  # views of the rows' gradients
            grad = self.nets.params[name].grad
            param.grad = None if grad is None else grad[self.rows]
        settings = _settings(self.optimizers[0])
        if self.stepper is None:
            self.stepper = _stepper(type(self.optimizers[0]), settings, self.params, self.fused)
            if any(o.state for o in self.optimizers):  # resumed, or initialized eagerly
                self._stack_states()
        group = self.stepper.param_groups[0]
        group.update({k: v for k, v in settings.items() if k not in ("fused", "foreach")})
        self.stepper.step()
        if not self.linked:  # once: the optimizers update their state tensors in place
            self._link()

    def _own(self, index: int, name: str) -> nn.Parameter:
        """The group's `index`-th member's own parameter `name`."""
        return self.nets.members[self.members[index]][name]

    def _stack_states(self) -> None:
        """The group's state from the members' own (all at the same step)."""
        for name, param in self.params.items():
            rows = [o.state[self._own(i, name)] for i, o in enumerate(self.optimizers)]
            self.stepper.state[param] = {
                key: torch.stack([r[key] for r in rows]) if _row(value, param[0]) else value
                for key, value in rows[0].items()
            }

    def _link(self) -> None:
        """Each member's state: views of its rows, the shared scalars (step) as they are."""
        self.linked = True
        for name, param in self.params.items():
            state = self.stepper.state[param]
            for i, optimizer in enumerate(self.optimizers):
                optimizer.state[self._own(i, name)] = {
                    key: value[i] if _row(value, param) else value for key, value in state.items()
                }


def _spaced(members: list[int]) -> bool:
    return len({b - a for a, b in zip(members, members[1:], strict=False)}) <= 1


def _stepper(cls: type, settings: dict, params: dict[str, Tensor], fused: bool) -> Optimizer:
    """One optimizer of `cls` over the rows, fused where torch can."""
    tensors = list(params.values())
    if fused and "fused" in settings:
        try:
            return cls([{**settings, "fused": True, "foreach": None, "params": tensors}])
        except RuntimeError:  # no fused kernel for this class on this device
            pass
    return cls([{**settings, "params": tensors}])


def _row(value: Any, like: Tensor) -> bool:
    return isinstance(value, Tensor) and value.shape == like.shape


def _settings(optimizer: Optimizer) -> dict[str, Any]:
    return {k: v for k, v in optimizer.param_groups[0].items() if k != "params"}
