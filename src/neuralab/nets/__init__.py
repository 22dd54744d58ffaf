"""Plain nn.Modules: no Lightning in here, so they can be used anywhere."""

from neuralab.nets.mlp import MLP
from neuralab.nets.perceptron import Perceptron

__all__ = ["MLP", "Perceptron"]
