"""Many nets of one structure as one vectorized call (torch.func).

Each member keeps its own net: its parameters stay the leaves its own optimizer
steps, and its buffers (BatchNorm's running statistics) stay its own. A forward
stacks the members' parameters and buffers along a new first dimension and runs
one copy of the net under `vmap(functional_call)`, so every layer is a batched
operation over the members; the gradient of each stacked tensor flows back to each
member's own parameters. Why not batched layers written by hand: this works for
any plain nn.Module (a forker's conv net included), with no change to the net.

Buffers updated in the forward (BatchNorm in train mode) are copied back to the
members that ran, so a member's statistics are those of its own batches only.
Dropout draws per member (`randomness="different"`): masks differ from a lone run's.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap


def structure(net: nn.Module) -> tuple:
    """What must be equal for nets to stack: module types and tensor shapes."""
    modules = tuple((name, type(m).__name__, _settings(m)) for name, m in net.named_modules())
    tensors = tuple(
        (name, tuple(t.shape), t.dtype)
        for name, t in [*net.named_parameters(), *net.named_buffers()]
    )
    return modules, tensors


def _settings(module: nn.Module) -> tuple:
    """A module's plain settings (dropout p, eps, momentum, ...): one copy runs all."""
    return tuple(
        sorted((k, v) for k, v in vars(module).items() if isinstance(v, int | float | str | bool))
    )


def unstackable(nets: list[nn.Module]) -> str | None:
    """Why these nets cannot run as one (None: they can)."""
    first = structure(nets[0])
    for index, net in enumerate(nets[1:], 1):
        if structure(net) != first:
            return f"member {index}'s net differs from member 0's in structure or settings"
    if any(p.is_meta or not p.is_leaf for p in nets[0].parameters()):
        return "the net has lazy or non-leaf parameters"
    return None


class StackedNets:
    """`forward(*inputs, active=...)`: members `active` on inputs (A, B, ...) each.

    `buffers=False`: the members' buffers are read but never written back (a loss's
    class weights); with True, those a train-mode forward updates are copied back.
    """

    def __init__(self, nets: list[nn.Module], buffers: bool = True):
        self.nets, self.writes_buffers = nets, buffers
        # A private copy runs the calls: hooks on the members' own nets (diagnostics)
        # see only their own forwards, never the pack's.
        self.template = copy.deepcopy(nets[0])
        self.params = [dict(n.named_parameters()) for n in nets]
        self.buffers = [dict(n.named_buffers()) for n in nets]
        self._vmapped = vmap(self._call, randomness="different")
        self.last_params: dict[str, Tensor] = {}  # the stacked parameters of the last call

    def _call(self, params: dict, buffers: dict, *inputs: Tensor) -> Tensor:
        return functional_call(self.template, (params, buffers), inputs)

    def forward(self, *inputs: Tensor, active: list[int], train: bool) -> Tensor:
        self.template.train(train)
        params = self.last_params = _stack(self.params, active)
        buffers = _stack(self.buffers, active)
        out = self._vmapped(params, buffers, *inputs)
        if train and self.writes_buffers and buffers:
            with torch.no_grad():
                for name, stacked in buffers.items():
                    for row, member in enumerate(active):
                        self.buffers[member][name].copy_(stacked[row])
        return out


def _stack(tensors: list[dict[str, Tensor]], active: list[int]) -> dict[str, Tensor]:
    names = tensors[active[0]].keys()
    return {name: torch.stack([tensors[m][name] for m in active]) for name in names}
