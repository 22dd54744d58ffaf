"""Batched layers: nets of Linear, norm, activation and dropout layers run over the
members without vmap.

`vmap(functional_call)` (pack/stacked.py) runs any net, but it pays a Python-level
batching rule per operation, as much as the arithmetic itself for the small nets
here. For nets whose layers all have a batched twin below, `twin(net)` is a copy of
the net with each Linear / BatchNorm1d / LayerNorm replaced by a layer that reads the
members' stacked parameters (M, ...) and takes inputs (M, B, ...): one batched matrix
product per Linear. The net's own forward code (blocks, residual sums) runs unchanged
on the extra leading dimension; elementwise layers (activations, dropout) need no
twin, and dropout then draws per member, as under vmap. Where the members' dropout
rates differ, `BatchedDropout` gives each member its own rate (vmap cannot: it runs
one copy of the net, one rate).

That forward code may still depend on the batch being the first dimension (a
flatten(1), a mean over dim 0): the pack compares the twin with vmap on its first
call and keeps vmap when they differ (StackedNets.forward).

Losses: `loss_twin` gives each member's mean loss from one call over all members' samples,
for the losses that are means over samples (no class weights: those make it a
weighted mean per member, left to vmap).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuralab.losses import BinaryCrossEntropy, CrossEntropy

# Layers that act on each entry alone: the same on (M, B, ...) as on (B, ...).
ELEMENTWISE = (
    nn.ReLU,
    nn.LeakyReLU,
    nn.Sigmoid,
    nn.Tanh,
    nn.ELU,
    nn.SELU,
    nn.GELU,
    nn.SiLU,
    nn.Identity,
    nn.Dropout,
)

Tensors = Callable[[], dict[str, Tensor]]  # the stacked tensors of the current call


class BatchedLinear(nn.Module):
    def __init__(self, name: str, params: Tensors):
        super().__init__()
        self.name, self.params = name, params

    def forward(self, x: Tensor) -> Tensor:  # (M, B, in) -> (M, B, out)
        params = self.params()
        weight = params[f"{self.name}weight"].transpose(1, 2)
        bias = params.get(f"{self.name}bias")
        if bias is None:
            return torch.bmm(x, weight)
        return torch.baddbmm(bias.unsqueeze(1), x, weight)


class BatchedBatchNorm(nn.Module):
    """Each member's batch statistics and running statistics are its own: the members'
    features side by side are the channels of one batch_norm call."""

    def __init__(self, name: str, norm: nn.BatchNorm1d, params: Tensors, buffers: Tensors):
        super().__init__()
        self.name, self.params, self.buffers = name, params, buffers
        self.eps, self.momentum = norm.eps, norm.momentum

    def forward(self, x: Tensor) -> Tensor:  # (M, B, d)
        members, batch, width = x.shape
        params, buffers = self.params(), self.buffers()
        weight, bias = params.get(f"{self.name}weight"), params.get(f"{self.name}bias")
        mean, var = buffers[f"{self.name}running_mean"], buffers[f"{self.name}running_var"]
        if self.training:
            buffers[f"{self.name}num_batches_tracked"].add_(1)
        flat = x.transpose(0, 1).reshape(batch, members * width)
        out = F.batch_norm(
            flat,
            mean.view(-1),  # views: the running statistics are updated in place
            var.view(-1),
            None if weight is None else weight.reshape(-1),
            None if bias is None else bias.reshape(-1),
            self.training,
            self.momentum,
            self.eps,
        )
        return out.view(batch, members, width).transpose(0, 1)


class BatchedLayerNorm(nn.Module):
    def __init__(self, name: str, norm: nn.LayerNorm, params: Tensors):
        super().__init__()
        self.name, self.params = name, params
        self.shape, self.eps = norm.normalized_shape, norm.eps

    def forward(self, x: Tensor) -> Tensor:  # (M, B, d)
        params = self.params()
        out = F.layer_norm(x, self.shape, None, None, self.eps)
        weight, bias = params.get(f"{self.name}weight"), params.get(f"{self.name}bias")
        if weight is not None:
            out = out * weight.unsqueeze(1)
        return out if bias is None else out + bias.unsqueeze(1)


class BatchedDropout(nn.Module):
    """nn.Dropout at each member's own rate p_m (an nn.Identity member: p_m = 0): in
    training, each entry of member m's rows is kept with probability 1 - p_m and scaled
    by 1 / (1 - p_m); p_m = 0 leaves the rows exactly as they are. Eval: identity."""

    def __init__(self, name: str, rates: Tensors):
        super().__init__()
        self.name, self.rates = name, rates

    def forward(self, x: Tensor) -> Tensor:  # (M, B, ...)
        if not self.training:
            return x
        rates = self.rates()[self.name].to(x.dtype)  # (M,) of the current call's members
        keep = (1 - rates).view(-1, *[1] * (x.ndim - 1))
        # rand in [0, 1): always below keep = 1, so the scale is exactly 1 there.
        return x * ((torch.rand_like(x) < keep) / keep)


def twin(
    net: nn.Module, params: Tensors, buffers: Tensors, rates: Tensors | None = None
) -> nn.Module | None:
    """A copy of `net` with batched layers, or None when a layer has no batched twin.
    `rates`: the dropout rates (M,) of the current call's members by module name; its
    names (read now) become BatchedDropout layers."""
    copied = copy.deepcopy(net)
    slots = set(rates()) if rates is not None else set()
    for name, module in list(copied.named_modules()):
        if name in slots:
            replacement = BatchedDropout(name, rates)
        else:
            replacement = _twin_layer(module, f"{name}." if name else "", params, buffers)
        if replacement is None:
            return None
        if replacement is not module:
            owner, _, attr = name.rpartition(".")
            setattr(copied.get_submodule(owner), attr, replacement)
    return copied


def _twin_layer(
    module: nn.Module, name: str, params: Tensors, buffers: Tensors
) -> nn.Module | None:
    """The batched twin of one layer; the layer itself when it needs none (elementwise,
    or a container without tensors of its own); None when it has no twin."""
    own = [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]
    if type(module) is nn.Linear:
        return BatchedLinear(name, params)
    if type(module) is nn.BatchNorm1d and module.track_running_stats and module.momentum:
        return BatchedBatchNorm(name, module, params, buffers)
    if type(module) is nn.LayerNorm and len(module.normalized_shape) == 1:
        return BatchedLayerNorm(name, module, params)
    if isinstance(module, ELEMENTWISE) or (type(module) not in _TORCH_LAYERS and not own):
        return module
    return None


# torch's own layers (conv, pooling, RNNs, ...): none has a twin here unless listed above.
_TORCH_LAYERS = {
    cls for cls in vars(nn).values() if isinstance(cls, type) and issubclass(cls, nn.Module)
} - {nn.Module, nn.Sequential, nn.ModuleList, nn.ModuleDict}


Loss = Callable[[Tensor, Tensor], Tensor]


def loss_twin(loss: nn.Module) -> Loss | None:
    """(outputs (M, B, ...), targets (M, B, ...)) -> each member's mean loss (M,) in
    one call, or None (then vmap runs the loss)."""
    per_entry = _per_entry(loss)
    if per_entry is None:
        return None
    return lambda out, y: per_entry(out, y).reshape(y.shape[0], -1).mean(1)


def _per_entry(loss: nn.Module) -> Loss | None:
    """The loss unreduced, for losses that are the mean of it (over samples, or over
    every target entry in regression)."""
    kind = type(loss)
    if kind is CrossEntropy and loss.weight is None:
        smoothing = loss.label_smoothing
        return lambda out, y: F.cross_entropy(
            out.flatten(0, 1), y.flatten(), label_smoothing=smoothing, reduction="none"
        )
    if kind is BinaryCrossEntropy and loss.pos_weight is None:
        return lambda out, y: F.binary_cross_entropy_with_logits(
            out.squeeze(-1), y.to(out.dtype), reduction="none"
        )
    if getattr(loss, "reduction", None) != "mean":
        return None
    if kind is nn.HuberLoss:
        return partial(F.huber_loss, reduction="none", delta=loss.delta)
    plain = {nn.MSELoss: F.mse_loss, nn.L1Loss: F.l1_loss}.get(kind)
    return None if plain is None else partial(plain, reduction="none")
