"""Activation statistics of one batch, gathered by forward hooks.

For every activation module of the net (the classes of neuralab.layers.ACTIVATIONS,
except identity), on one batch of outputs y: (B, U) from a Linear, or (B, C, *spatial)
from a conv, where a "unit" is a channel (a conv filter: it shares its weights across
positions, so it is dead or alive as a whole). N is every value of the batch:
    act_mean, act_std   over all N values
    act_saturated       tanh / sigmoid only: share of the N values near a bound
                        (|y| > 0.99 for tanh; y < 0.01 or y > 0.99 for sigmoid),
                        where the local gradient is below 0.02 (tanh) or 0.01 (sigmoid)
    act_dead            ReLU family only: share of the units (U features, or C channels)
                        whose output is <= 0 for every sample (and position) of the batch
"Dead" is one condition for the whole family: the unit never enters its positive,
linear regime on the batch (for each of these y <= 0 exactly when the input is <= 0).
For relu such a unit gets exactly zero gradient, the classic dead ReLU; for
leaky_relu, elu, selu, gelu and silu it only gets the small negative-side gradient,
so the same number reads "stuck on the flat side", comparable across a sweep.
Only activation modules are seen: a net calling F.relu in forward has no act_ tags.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from neuralab.diagnostics.norms import layer_tag
from neuralab.layers import ACTIVATIONS

ACT_KINDS = ("act_mean", "act_std", "act_saturated", "act_dead")
SATURATION = 0.99  # how close to a bound counts as saturated (bounds: +-1 tanh, 0/1 sigmoid)

# y (B, U) -> bool (B, U): the values sitting near a bound.
SATURATING: dict[type[nn.Module], Callable[[Tensor], Tensor]] = {
    ACTIVATIONS["tanh"]: lambda y: y.abs() > SATURATION,
    ACTIVATIONS["sigmoid"]: lambda y: (y < 1 - SATURATION) | (y > SATURATION),
}
DEAD_FAMILY = tuple(ACTIVATIONS[n] for n in ("relu", "leaky_relu", "elu", "selu", "gelu", "silu"))
# identity also fills the norm and dropout slots of an MLP block: nothing to watch there.
WATCHED = tuple(cls for cls in ACTIVATIONS.values() if cls is not nn.Identity)


def named_activations(net: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every activation module with its tag suffix, in registration order."""
    acts = [(name, m) for name, m in net.named_modules() if type(m) in WATCHED]
    return [(layer_tag(i, name), m) for i, (name, m) in enumerate(acts)]


def batch_stats(module: nn.Module, y: Tensor) -> dict[str, Tensor]:
    """The statistics that apply to this activation type, as 0-d device tensors."""
    y = y.detach().float()
    stats = {"act_mean": y.mean(), "act_std": y.std(unbiased=False)}
    saturated = SATURATING.get(type(module))
    if saturated is not None:
        stats["act_saturated"] = saturated(y).float().mean()
    if isinstance(module, DEAD_FAMILY):
        # The largest value of each unit: over the batch, and over positions for a conv.
        peak = y.amax(dim=(0, *range(2, y.dim())))  # (U,) or (C,)
        stats["act_dead"] = (peak <= 0).float().mean()
    return stats


class ActivationProbe:
    """Hooks every activation for one forward pass; `stats` then holds tag -> 0-d tensor.
    With `members`, the net runs M stacked nets on inputs (M, B, ...) (a packed fit):
    each statistic is then (M,), each member's computed on its own rows as above."""

    def __init__(self, net: nn.Module, members: bool = False):
        self.layers, self.members = named_activations(net), members
        self.stats: dict[str, Tensor] = {}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def attach(self) -> None:
        self.detach()
        self.stats = {}
        for tag, module in self.layers:
            self._handles.append(module.register_forward_hook(self._hook(tag)))

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    @property
    def attached(self) -> bool:
        return bool(self._handles)

    def _hook(self, tag: str) -> Callable[[nn.Module, tuple, Tensor], None]:
        def record(module: nn.Module, inputs: tuple, output: Tensor) -> None:
            rows = [batch_stats(module, y) for y in (output if self.members else [output])]
            for kind, value in rows[0].items():
                stacked = torch.stack([row[kind] for row in rows]) if self.members else value
                self.stats[f"{kind}/{tag}"] = stacked

        return record
