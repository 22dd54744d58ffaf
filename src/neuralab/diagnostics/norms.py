"""Per-layer gradient norm, weight norm and update/weight ratio of every nn.Linear.

A "layer" is an nn.Linear of the net, in registration order (input -> output for
the MLP: blocks.0.linear, blocks.1.linear, ..., head). Norms are Frobenius norms
of the weight matrix only (biases are excluded: they are few and start at zero).
Everything stays a device tensor; the caller turns a batch of them into floats
once per epoch, so nothing here synchronises with the host.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

NORM_KINDS = ("grad_norm", "weight_norm", "update_ratio")


def layer_tag(index: int, name: str) -> str:
    """`layer00_blocks.0.linear`: the zero-padded index keeps TensorBoard's sort input->output."""
    return f"layer{index:02d}_{name}"


def named_linears(net: nn.Module) -> list[tuple[str, nn.Linear]]:
    """Every nn.Linear of `net` with its tag suffix, in registration order."""
    linears = [(name, m) for name, m in net.named_modules() if isinstance(m, nn.Linear)]
    return [(layer_tag(i, name), m) for i, (name, m) in enumerate(linears)]


def _norms(tensors: list[Tensor]) -> Tensor:  # L tensors -> (L,)
    return torch.stack([torch.linalg.vector_norm(t.detach().float()) for t in tensors])


class NormProbe:
    """Measures one optimizer step: call `before_step` after backward, `after_step` after it."""

    def __init__(self, layers: list[tuple[str, nn.Linear]]):
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
