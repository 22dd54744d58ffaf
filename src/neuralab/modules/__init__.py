"""LightningModules: the generic supervised system and the perceptron rule."""

from neuralab.modules.perceptron import PerceptronModule
from neuralab.modules.supervised import SupervisedModule

__all__ = ["PerceptronModule", "SupervisedModule"]
