"""The metrics of neuralab's own modules, by name, and the names of logged metrics.

To add a metric, add one entry to METRICS: a per-sample statistic (B,) from the
outputs and targets, the function that turns its epoch mean into the value (e.g.
sqrt for an RMSE), and whether higher is better. It is then logged as
`<stage>/<name>` (with `val/<name>_best`), can be named in `monitor.metric`, reaches
results.json, HParams and the sweep tables, and is reduced over DDP ranks with the
rest (each metric is a sum over samples, so summing the ranks' sums is exact).

Why sums and not `self.log` per step: `self.log` costs ~0.5 ms a call on CPU and, on
a GPU, a host sync. Here each step adds to one device tensor (no sync); at epoch end
the sums are all-reduced once and turned into means. A module of your own can log
with `self.log` / torchmetrics instead: everything downstream reads the logged names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from neuralab.losses import CLASSIFICATION, REGRESSION
from neuralab.nets.perceptron import scores_to_classes

STAGES = ("train", "val", "test")


@dataclass(frozen=True)
class Metric:
    per_sample: Callable[[Tensor, Tensor], Tensor]  # (outputs, targets) -> (B,)
    finish: Callable[[Tensor], Tensor] = lambda mean: mean  # epoch mean -> the value
    higher_is_better: bool = False


def _correct(outputs: Tensor, targets: Tensor) -> Tensor:  # (B, K) scores, (B,) classes
    return (scores_to_classes(outputs) == targets).float()


def _abs_error(outputs: Tensor, targets: Tensor) -> Tensor:  # (B, T) each -> (B,)
    return (outputs - targets).float().abs().mean(-1)


def _squared_error(outputs: Tensor, targets: Tensor) -> Tensor:
    return (outputs - targets).float().pow(2).mean(-1)


# Besides these, every module logs its loss (`<stage>/loss`, minimized).
METRICS: dict[str, dict[str, Metric]] = {
    CLASSIFICATION: {"acc": Metric(_correct, higher_is_better=True)},
    REGRESSION: {"mae": Metric(_abs_error), "rmse": Metric(_squared_error, torch.sqrt)},
}

# Metrics a module logs itself (self.log, torchmetrics) that are maximized; every
# other name is minimized unless it is the monitored metric (monitor.mode decides).
HIGHER_IS_BETTER = {"acc", "accuracy", "f1", "auroc", "auc", "precision", "recall", "r2", "iou"}


def split_tag(tag: str) -> tuple[str, str] | None:
    """("val", "acc") from `val/acc` or Lightning's other habit `val_acc`; None if the
    name has no stage prefix."""
    for sep in ("/", "_"):
        stage, found, name = tag.partition(sep)
        if found and stage in STAGES and name:
            return stage, name
    return None


def best_tag(tag: str) -> str:
    """The running best of a validation metric: val/acc -> val/acc_best."""
    return f"{tag}_best"


def higher_is_better(name: str) -> bool:
    own = [m for metrics in METRICS.values() for n, m in metrics.items() if n == name]
    return own[0].higher_is_better if own else name.lower() in HIGHER_IS_BETTER


def metric_names(task: str) -> list[str]:
    return ["loss", *METRICS[task]]


class EpochMetrics:
    """The sums of one stage's epoch on the device: [loss * n, n, one per metric]."""

    def __init__(self, task: str):
        self.metrics = METRICS[task]
        self.sums: Tensor | None = None

    def reset(self) -> None:
        self.sums = None

    def update(self, outputs: Tensor, targets: Tensor, loss: Tensor) -> None:
        """outputs (B, K) scores or predictions, targets (B,) classes or (B, T) values;
        loss the batch's mean loss."""
        outputs, loss = outputs.detach(), loss.detach().float()
        n = targets.shape[0]
        stats = [m.per_sample(outputs, targets).sum() for m in self.metrics.values()]
        batch = torch.stack([loss * n, loss.new_full((), n), *stats])
        self.sums = batch if self.sums is None else self.sums + batch

    def update_chunk(
        self, outputs: list[Tensor], targets: list[Tensor], losses: list[Tensor]
    ) -> None:
        """`update` for the batches of one chunk at once: a handful of device ops per
        chunk instead of per step (the losses are batch means, weighted here by size)."""
        if len(outputs) == 1:
            self.update(outputs[0], targets[0], losses[0])
            return
        counts = losses[0].new_tensor([len(t) for t in targets], dtype=torch.float32)
        mean = (torch.stack(losses).float() * counts).sum() / counts.sum()
        self.update(torch.cat(outputs), torch.cat(targets), mean)

    def compute(self, reduce_sum: Callable[[Tensor], Tensor]) -> dict[str, Tensor]:
        """Means over every sample seen this epoch (on every rank), by name."""
        if self.sums is None:
            return {}
        sums = reduce_sum(self.sums)
        means = sums / sums[1].clamp(min=1)
        out = {"loss": means[0]}
        for (name, metric), mean in zip(self.metrics.items(), means[2:], strict=True):
            out[name] = metric.finish(mean)
        return out
