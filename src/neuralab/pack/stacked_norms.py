"""The members' norm measurements (diagnostics/norms.py) from their stacked tensors.

Each member's Diagnostics measures its layers' gradient norm, weight norm and update
ratio at the same optimizer steps (its lone run's cadence; a pack's members share
their steps). Measured member by member that is ~30 small tensor operations per member
and step (0.45 ms: 0.6 s of a 16-member sweep's 6 s). Here the first member to measure
at a step measures every member at once, one reduction per layer over the stacked
(M, ...) tensors, and each member's probe reads its own column. A member's parameters
and gradients are views of its rows (pack/stacked.py): the values are its own, up to
the order of float additions in a norm.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from neuralab.diagnostics.norms import NormProbe
from neuralab.pack.stacked import StackedNets


def _row_norms(stacked: Tensor) -> Tensor:
    """(M, ...) -> (M,): each member's Frobenius norm."""
    return torch.linalg.vector_norm(stacked.detach().float().flatten(1), dim=1)


class StackedNorms:
    """Measurements of every member at a step, kept until each member has read them."""

    def __init__(self, nets: StackedNets, step: Callable[[], int]):
        self.params, self.members, self.step = nets.params, nets.members, step
        self._before: dict[int, tuple[Tensor, list[Tensor]]] = {}  # step -> (L, M), weights
        self._after: dict[int, Tensor] = {}  # step -> (3, L, M)

    def probe(self, index: int) -> Callable[[list], NormProbe]:
        """Member `index`'s probe factory (Diagnostics.norm_probe): its layers' weights
        are views of its row of the stacked parameters, found by identity."""
        names = {id(view): name for name, view in self.members[index].items()}

        def member_probe(layers: list) -> NormProbe:
            return MemberNorms(layers, self, [names[id(m.weight)] for _, m in layers], index)

        return member_probe

    @torch.no_grad()
    def before(self, names: list[str]) -> tuple[int, Tensor]:
        """(the step, (L, M) gradient norms), measured at the first request of the step."""
        step = self.step()
        if step not in self._before:
            # The previous step's stays: at this step's hook, members after the first
            # still complete it (after) before they measure this one.
            for old in sorted(self._before)[:-1]:
                self._before.pop(old), self._after.pop(old, None)
            stacked = [self.params[name] for name in names]
            grads = [s.grad if s.grad is not None else torch.zeros_like(s) for s in stacked]
            norms = torch.stack([_row_norms(g) for g in grads])
            self._before[step] = (norms, [s.detach().clone() for s in stacked])
        return step, self._before[step][0]

    @torch.no_grad()
    def after(self, step: int, names: list[str]) -> Tensor:
        """(3, L, M) for the step measured: as NormProbe.after_step, every member at once."""
        if step not in self._after:
            grad_norm, before = self._before[step]
            weights = [self.params[name] for name in names]
            start = torch.stack([_row_norms(b) for b in before])
            end = torch.stack([_row_norms(w) for w in weights])
            update = torch.stack([_row_norms(w - b) for w, b in zip(weights, before, strict=True)])
            ratio = update / torch.maximum(start, end).clamp_min(1e-12)
            self._after[step] = torch.stack([grad_norm, start, ratio])
        return self._after[step]


class MemberNorms(NormProbe):
    """A member's NormProbe reading its column of the pack's measurements."""

    def __init__(self, layers: list, shared: StackedNorms, names: list[str], index: int):
        super().__init__(layers)
        self.shared, self.names, self.index = shared, names, index
        self._step = -1

    def before_step(self) -> None:
        self._step, norms = self.shared.before(self.names)
        self._grad_norm = norms[:, self.index]

    def after_step(self) -> Tensor:
        out = self.shared.after(self._step, self.names)[:, :, self.index]
        self._grad_norm = None
        return out
