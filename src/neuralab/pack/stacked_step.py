"""Every member's optimizer step as one step over the stacked parameters.

While all members train with optimizers of one elementwise class (Adam, SGD, ...) and
equal settings -- a seed sweep -- one optimizer of that class steps the stacked
parameters (M, ...) (pack/stacked.py): a handful of tensor ops instead of a handful per
member, the same arithmetic per element. Each member's optimizer keeps its state as
views of its rows of the stacked state (its Adam moments are still its own numbers,
and its state_dict is its lone run's), and shares the scalar `step` while they step
together. Once that no longer holds (a member stopped, or a plateau schedule changed
one member's lr), `release` gives each member its own scalars and the members step on
their own (pack/optim.py), on the same views.

Where torch has a fused kernel for the class on the device (Adam, AdamW, SGD, Adagrad),
the stacked step uses it: one kernel per tensor instead of one per operation. It
rounds a few operations differently from the members' own (unfused) step, by ~1 ulp a
step (a lone run and its packed twin agree to ~1e-7 after 20 epochs); `fused=False`
keeps it bit-equal to them (tests/pack).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
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
        self.stepper: Optimizer | None = None
        self.released = self.linked = False

    def usable(self, optimizer_class: type | None, members: list[int]) -> bool:
        if self.released or len(members) != len(self.optimizers):
            return False
        return optimizer_class in ELEMENTWISE and len(self.nets.params) > 0

    def step(self) -> None:
        settings = _settings(self.optimizers[0])
        if self.stepper is None:
            params = list(self.nets.params.values())
            self.stepper = _stepper(type(self.optimizers[0]), settings, params, self.fused)
            if any(o.state for o in self.optimizers):  # resumed, or initialized eagerly
                self._stack_states()
        group = self.stepper.param_groups[0]
        group.update({k: v for k, v in settings.items() if k not in ("fused", "foreach")})
        self.stepper.step()
        if not self.linked:  # once: the optimizers update their state tensors in place
            self._link()

    def _stack_states(self) -> None:
        """The stacked state from the members' own (all at the same step)."""
        for name, stacked in self.nets.params.items():
            rows = [o.state[self.nets.members[i][name]] for i, o in enumerate(self.optimizers)]
            self.stepper.state[stacked] = {
                key: torch.stack([r[key] for r in rows]) if _row(value, stacked[0]) else value
                for key, value in rows[0].items()
            }

    def _link(self) -> None:
        """Each member's state: views of its rows, the shared scalars (step) as they are."""
        self.linked = True
        for name, stacked in self.nets.params.items():
            state = self.stepper.state[stacked]
            for i, optimizer in enumerate(self.optimizers):
                optimizer.state[self.nets.members[i][name]] = {
                    key: value[i] if _row(value, stacked) else value for key, value in state.items()
                }

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


def _stepper(cls: type, settings: dict, params: list[Tensor], fused: bool) -> Optimizer:
    """One optimizer of `cls` over the stacked tensors, fused where torch can."""
    if fused and "fused" in settings:
        try:
            return cls([{**settings, "fused": True, "foreach": None, "params": params}])
        except RuntimeError:  # no fused kernel for this class on this device
            pass
    return cls([{**settings, "params": params}])


def _row(value: Any, like: Tensor) -> bool:
    return isinstance(value, Tensor) and value.shape == like.shape


def _settings(optimizer: Optimizer) -> dict[str, Any]:
    return {k: v for k, v in optimizer.param_groups[0].items() if k != "params"}
