"""Rosenblatt's perceptron rule as a LightningModule of its own (no backprop).

For each sample in turn (the online rule, applied within every batch):
    y_hat = step(w.x + b);  w += lr * (y - y_hat) * x;  b += lr * (y - y_hat)
and, with C > 2 classes, the multi-class rule
    w_y += lr * x, w_y_hat -= lr * x   when y_hat != y.
It converges on linearly separable data (AND, OR) and cycles forever on XOR.
The logged loss is the perceptron criterion: the margin by which the sample is
on the wrong side (0 when correct), which the rule descends sample by sample.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from neuralab.errors import ConfigError
from neuralab.modules.base import MetricsModule
from neuralab.nets.perceptron import Perceptron, scores_to_classes
from neuralab.runtime.chunks import batches_of


class PerceptronModule(MetricsModule):
    def __init__(self, net: Perceptron, lr: float = 1.0):
        super().__init__(net, "classification")
        if not lr > 0:
            raise ConfigError("model.lr", lr, "a positive number")
        self.save_hyperparameters(ignore=["net"], logger=False)
        self.automatic_optimization = False  # the rule updates weights itself

    def _criterion(self, scores: Tensor, y: Tensor) -> Tensor:
        if scores.shape[-1] == 1:  # binary: y in {0, 1} -> sign in {-1, +1}
            return F.relu(-(2 * y - 1) * scores.squeeze(-1)).mean()
        return (scores.max(-1).values - scores.gather(-1, y[:, None]).squeeze(-1)).mean()

    def _step(self, batch: tuple[Tensor, Tensor], stage: str) -> None:
        x, y = batch
        scores = self.net(x)
        self.metrics[stage].update(scores, y, self._criterion(scores, y))

    def training_step(
        self, batch: tuple[Tensor, Tensor] | list[tuple[Tensor, Tensor]], batch_idx: int
    ) -> None:
        for one in batches_of(batch):  # a chunk is several batches, one rule update each
            self._rule_step(one)

    def _rule_step(self, batch: tuple[Tensor, Tensor]) -> None:
        self._step(batch, "train")  # metrics of the weights this batch started with
        linear, lr = self.net.linear, self.hparams.lr
        with torch.no_grad():
            weight, bias = linear.weight.clone(), linear.bias.clone()
            for xi, yi in zip(*batch, strict=True):  # sequential, as Rosenblatt's rule is
                y_hat = scores_to_classes(F.linear(xi[None], weight, bias))[0]
                if linear.out_features == 1:
                    delta = (yi - y_hat).to(xi.dtype).reshape(1)  # (1,): 0 or +-1
                else:  # +1 on the true class, -1 on the predicted one (cancel when equal)
                    delta = (
                        F.one_hot(yi, linear.out_features) - F.one_hot(y_hat, linear.out_features)
                    ).to(xi.dtype)
                weight += lr * delta[:, None] * xi[None, :]
                bias += lr * delta
            # The rule's whole update for this batch, applied by an SGD(lr=1) step below,
            # so Lightning counts steps (checkpoints, logging) as for any other module.
            linear.weight.grad = linear.weight - weight
            linear.bias.grad = linear.bias - bias
        optimizer = self.optimizers()
        optimizer.step()
        optimizer.zero_grad()

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        # w <- w - 1 * grad, with grad = -(rule's update): exactly the rule, nothing more.
        return torch.optim.SGD(self.net.parameters(), lr=1.0)
