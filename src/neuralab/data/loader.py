"""The in-memory data path: whole splits as tensors, batches by slicing.

For data that fits in memory a DataLoader is pure overhead: a Python
`__getitem__` per sample plus a collate per batch. Here each split is a tuple
of tensors living on the training device; an epoch is one index permutation
(seeded by seed + epoch, so runs and resumes see the same order) and a batch is
one gather `t[idx[i:i + B]]`. No host copy or sync happens per step.

Under DDP each rank takes every world_size-th index of the permutation. For
training the permutation is padded by wrapping (as DistributedSampler does) so
every rank runs the same number of steps; evaluation shards are disjoint and
unpadded so summed metrics count each sample once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor


class EpochSampler:
    """The indices one rank visits in one epoch. Lightning calls `set_epoch`."""

    def __init__(
        self,
        size: int,
        shuffle: bool,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        pad: bool = False,
    ):
        self.size, self.shuffle, self.seed = size, shuffle, seed
        self.rank, self.world_size, self.pad = rank, world_size, pad
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        if self.pad:
            return math.ceil(self.size / self.world_size)
        return len(range(self.rank, self.size, self.world_size))

    def indices(self) -> Tensor:  # (len(self),) int64 on CPU
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.size, generator=gen)
        else:
            order = torch.arange(self.size)
        if self.pad:
            total = len(self) * self.world_size
            order = order.repeat(math.ceil(total / self.size))[:total]
        return order[self.rank :: self.world_size]


class InMemoryLoader:
    """Iterable of batches sliced from tensors that stay on `device`."""

    def __init__(
        self,
        tensors: tuple[Tensor, ...],
        batch_size: int,
        sampler: EpochSampler,
        device: torch.device | str = "cpu",
    ):
        self.tensors = tuple(t.to(device) for t in tensors)
        self.batch_size = batch_size
        # Lightning looks up these two attributes to call set_epoch / detect shuffling.
        self.sampler, self.batch_sampler = sampler, None

    def __len__(self) -> int:
        return math.ceil(len(self.sampler) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        idx = self.sampler.indices().to(self.tensors[0].device)  # one copy per epoch
        for start in range(0, len(idx), self.batch_size):
            batch_idx = idx[start : start + self.batch_size]
            yield tuple(t[batch_idx] for t in self.tensors)
