"""Learning-rate schedules beyond torch's, and the one rule that wires them up.

Rule: a scheduler factory whose signature has a `total_steps` parameter that the
config left unset gets the trainer's estimated number of optimizer steps, so
OneCycleLR and the warm-up schedule never need the data size in the config.
"""

from __future__ import annotations

import functools
import inspect
import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler


def linear_warmup(
    optimizer: Optimizer,
    warmup_steps: int,
    total_steps: int | None = None,
    decay: str = "cosine",
    min_lr_ratio: float = 0.0,
) -> LambdaLR:
    """lr rises linearly over `warmup_steps`, then follows `decay` (cosine or constant)."""
    if decay not in ("cosine", "constant"):
        raise ValueError(f"decay must be 'cosine' or 'constant', got {decay!r}")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if decay == "constant" or not total_steps:
            return 1.0
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)


def build_scheduler(
    factory: functools.partial, optimizer: Optimizer, total_steps: int
) -> LRScheduler:
    params = inspect.signature(factory.func).parameters
    if "total_steps" in params and factory.keywords.get("total_steps") is None:
        return factory(optimizer, total_steps=int(total_steps))
    return factory(optimizer)
