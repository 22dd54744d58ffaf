"""Rosenblatt's perceptron: a linear unit with a step activation.

It is trained by the perceptron rule (neuralab.modules.perceptron), not by
backprop: the step has zero gradient almost everywhere. With two classes it has
one output unit (predict 1 iff w.x + b > 0); with C > 2 classes it keeps one
unit per class and predicts the arg-max (the multi-class perceptron).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Perceptron(nn.Module):
    def __init__(self, in_features: int, num_classes: int):
        super().__init__()
        self.num_classes = num_classes
        self.linear = nn.Linear(in_features, 1 if num_classes == 2 else num_classes)
        nn.init.zeros_(self.linear.weight)  # the rule is scale-free: start from 0
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: Tensor) -> Tensor:  # (B, in) -> (B, 1) or (B, C) scores
        return self.linear(x)

    @torch.no_grad()
    def predict(self, x: Tensor) -> Tensor:  # (B, in) -> (B,) class indices
        return scores_to_classes(self(x))


def scores_to_classes(scores: Tensor) -> Tensor:
    """Step activation for one unit, arg-max for several."""
    if scores.shape[-1] == 1:
        return (scores.squeeze(-1) > 0).long()
    return scores.argmax(dim=-1)
