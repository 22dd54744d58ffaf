"""Losses chosen by config (`loss=`), each knowing the task it fits.

Classification targets are class indices of shape (B,); regression targets are
floats of shape (B, T). Nets always emit (B, out_features): `out_features` is
derived in conf/loss/*.yaml (C for cross-entropy, 1 for binary BCE, T otherwise).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuralab.errors import ConfigError, lookup


class CrossEntropy(nn.Module):
    def __init__(self, weight: Tensor | None = None, label_smoothing: float = 0.0):
        super().__init__()
        self.register_buffer("weight", weight)
        self.label_smoothing = label_smoothing

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(logits, target, self.weight, label_smoothing=self.label_smoothing)


class BinaryCrossEntropy(nn.Module):
    """BCE on one logit per sample; class weights become pos_weight = w1 / w0."""

    def __init__(self, weight: Tensor | None = None):
        super().__init__()
        self.register_buffer("pos_weight", None if weight is None else weight[1:] / weight[0])

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(
            logits.squeeze(-1), target.to(logits.dtype), pos_weight=self.pos_weight
        )


class LogCosh(nn.Module):
    """mean(log(cosh(d))): quadratic near 0, linear for large |d| (robust to outliers).

    Written as d + softplus(-2d) - log 2 so cosh never overflows.
    """

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        d = pred - target
        return (d + F.softplus(-2.0 * d) - math.log(2.0)).mean()


CLASSIFICATION, REGRESSION = "classification", "regression"

# name -> (task it fits, factory(weight, **params))
LOSSES: dict[str, tuple[str, type]] = {
    "cross_entropy": (CLASSIFICATION, CrossEntropy),
    "bce": (CLASSIFICATION, BinaryCrossEntropy),
    "mse": (REGRESSION, lambda weight=None: nn.MSELoss()),
    "mae": (REGRESSION, lambda weight=None: nn.L1Loss()),
    "huber": (REGRESSION, lambda weight=None, delta=1.0: nn.HuberLoss(delta=delta)),
    "log_cosh": (REGRESSION, lambda weight=None: LogCosh()),
}


def balanced_weights(train_targets: Tensor, num_classes: int) -> Tensor:
    """n / (C * count_c), sklearn's 'balanced': every class contributes equally."""
    counts = torch.bincount(train_targets, minlength=num_classes).float()
    return train_targets.numel() / (num_classes * counts.clamp(min=1))


def _class_weights(
    spec: str | Sequence[float] | None, train_targets: Tensor, num_classes: int
) -> Tensor | None:
    if spec is None:
        return None
    if spec == "balanced":
        return balanced_weights(train_targets, num_classes)
    if isinstance(spec, Sequence) and not isinstance(spec, str) and len(spec) == num_classes:
        return torch.tensor([float(w) for w in spec])
    raise ConfigError("loss.class_weights", spec, f"null, 'balanced' or {num_classes} numbers")


def build_loss(
    name: str,
    task: str,
    num_classes: int | None,
    train_targets: Tensor,
    class_weights: str | Sequence[float] | None = None,
    **params,
) -> nn.Module:
    """The loss module for `name`, checked against the data set's task."""
    loss_task, factory = lookup(LOSSES, "loss", name)
    if loss_task != task:
        fitting = sorted(n for n, (t, _) in LOSSES.items() if t == task)
        raise ConfigError("loss", name, f"a {task} loss for this data set: {', '.join(fitting)}")
    if name == "bce" and num_classes != 2:
        raise ConfigError(
            "loss", name, f"cross_entropy: bce needs 2 classes, data has {num_classes}"
        )
    if task == REGRESSION:
        if class_weights is not None:
            raise ConfigError("loss.class_weights", class_weights, "null for regression")
        return factory(**params)
    return factory(_class_weights(class_weights, train_targets, num_classes), **params)
