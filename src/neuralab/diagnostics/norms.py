"""Per-layer gradient norm, weight norm and update/weight ratio of every weighted layer.

A "layer" is a module of the net with a weight of >= 2 dimensions (Linear, ConvNd,
Embedding, ...), named by its path, in registration order (input -> output for the
MLP: blocks.0.linear, blocks.1.linear, ..., head; for a conv net e.g. features.0, head).
1-D weights (the scale of a norm layer) are left out: they are not a map from one
layer's units to the next. Norms are Frobenius norms of the whole weight, kernel
dims included (biases are excluded: they are few and start at zero).
Everything stays a device tensor; the caller turns a batch of them into floats
once per epoch, so nothing here synchronises with the host.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.parameter import is_lazy

NORM_KINDS = ("grad_norm", "weight_norm", "update_ratio")


def layer_tag(index: int, name: str) -> str:
    """`layer00_blocks.0.linear`: the zero-padded index keeps TensorBoard's sort input->output."""
    return f"layer{index:02d}_{name}"


def named_weighted(net: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every module of `net` with a >= 2-D weight, with its tag suffix, in registration order."""
    layers = [(name, m) for name, m in net.named_modules() if _has_matrix_weight(m)]
    return [(layer_tag(i, name), m) for i, (name, m) in enumerate(layers)]


def _has_matrix_weight(module: nn.Module) -> bool:
    # A real Parameter only: a parametrized weight (weight_norm) is recomputed on each
    # access, and a lazy one has no shape before the first forward.
    weight = getattr(module, "weight", None)
    return isinstance(weight, nn.Parameter) and not is_lazy(weight) and weight.dim() >= 2


def _norms(tensors: list[Tensor]) -> Tensor:  # L tensors -> (L,)
    return torch.stack([torch.linalg.vector_norm(t.detach().float()) for t in tensors])


class NormProbe:
    """Measures one optimizer step: call `before_step` after backward, `after_step` after it."""

    def __init__(self, layers: list[tuple[str, nn.Module]]):
        self.tags = [tag for tag, _ in layers]
        self.weights = [m.weight for _, m in layers]
        self._grad_norm: Tensor | None = None
        self._before: list[Tensor] = []

    @property
    def pending(self) -> bool:
        return self._grad_norm is not None

    @torch.no_grad()
    def before_step(self) -> None:
        # A layer without a gradient (frozen, or unused this step) counts as zero.
        grads = [w.grad if w.grad is not None else torch.zeros_like(w) for w in self.weights]
        self._grad_norm = _norms(grads)
        self._before = [w.detach().clone() for w in self.weights]

    @torch.no_grad()
    def after_step(self) -> Tensor:
        """(3, L): gradient norm, weight norm and update ratio of each layer.

        The weight norm is the one the gradient was computed at (before the step).
        The ratio is ||W_after - W_before|| / max(||W_before||, ||W_after||): the
        usual update/weight ratio (~1e-3 is healthy for SGD), except that a layer
        starting at zero (the perceptron) reads 1 instead of dividing by zero.
        """
        before, after = _norms(self._before), _norms(self.weights)
        update = _norms([w - b for w, b in zip(self.weights, self._before, strict=True)])
        ratio = update / torch.maximum(before, after).clamp_min(1e-12)
        out = torch.stack([self._grad_norm, before, ratio])
        self._grad_norm, self._before = None, []
        return out
