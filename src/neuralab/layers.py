"""Activations and normalization layers chosen by name.

One dict each, resolved once at the top of a net (as in timm's create_act): the
net passes the *class* to its inner blocks, so a sweep only varies a string,
`model.activation=relu,tanh`.
"""

from __future__ import annotations

from torch import nn

from neuralab.errors import lookup

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "identity": nn.Identity,
}

# Each factory takes the layer width. "none" keeps the net's shape uniform:
# every hidden block is Linear -> norm -> activation -> dropout.
NORMS: dict[str, type[nn.Module]] = {
    "none": nn.Identity,
    "batch": nn.BatchNorm1d,
    "layer": nn.LayerNorm,
}


def activation_class(name: str) -> type[nn.Module]:
    return lookup(ACTIVATIONS, "model.activation", name)


def norm_class(name: str | None) -> type[nn.Module]:
    return lookup(NORMS, "model.norm", "none" if name is None else name)


def make_norm(name: str | None, width: int) -> nn.Module:
    cls = norm_class(name)
    return cls() if cls is nn.Identity else cls(width)
