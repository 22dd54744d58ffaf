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

The loader is resumable: `state_dict()` is the epoch and the batches already
yielded in it, and after `load_state_dict()` the next pass over that epoch skips
them, so a run resumed mid-epoch trains on exactly the batches it had left.
Lightning saves and restores this state in the fit loop's checkpoint state (its
length is known, so Lightning does not prefetch: yielded == trained at a batch end).

With `steps_per_chunk=K` (and a module that opts in) an epoch yields `Chunk`s of K
batches instead (`neuralab.runtime.chunks`); K=1 yields plain batches.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from neuralab.runtime.chunks import Chunk

if TYPE_CHECKING:
    pass


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

    chunk_class = Chunk  # how rows are gathered (a pack's loader: neuralab/pack/data.py)

    def __init__(
        self,
        tensors: tuple[Tensor, ...],
        batch_size: int,
        sampler: EpochSampler,
        device: torch.device | str = "cpu",
        steps_per_chunk: int = 1,
    ):
        self.tensors = tuple(t.to(device) for t in tensors)
        self.batch_size, self.steps_per_chunk = batch_size, steps_per_chunk
        # Lightning looks up these two attributes to call set_epoch / detect shuffling.
        self.sampler, self.batch_sampler = sampler, None
        self._yielded = 0  # batches (not chunks) yielded by this pass: the resume position
        self._resume: dict[str, int] | None = None  # set by load_state_dict

    @property
    def num_batches(self) -> int:
        """Batches, i.e. optimizer steps, in one epoch of this rank."""
        return math.ceil(len(self.sampler) / self.batch_size)

    def __len__(self) -> int:  # items per epoch: chunks (Lightning's training_step calls)
        return math.ceil(self.num_batches / self.steps_per_chunk)

    def __iter__(self) -> Iterator[tuple[Tensor, ...] | list[tuple[Tensor, ...]]]:
        # A generator: this body runs at the first next(), after Lightning's set_epoch.
        skip = self._take_resume_position()
        idx = self.sampler.indices().to(self.tensors[0].device)  # one copy per epoch
        self._yielded = skip
        rows = self.batch_size * self.steps_per_chunk
        for start in range(skip * self.batch_size, idx.shape[-1], rows):
            if self.steps_per_chunk == 1:
                self._yielded += 1
                yield self.chunk_class.take(self.tensors, idx[..., start : start + rows])
                continue
            chunk = self.chunk_class(self.tensors, idx[..., start : start + rows], self.batch_size)
            self._yielded += len(chunk)
            yield chunk

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.sampler.epoch, "batches": self._yielded}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Resume `state["epoch"]` after its first `state["batches"]` batches.

        Idempotent: loading the same state twice (Lightning, then neuralab's resume
        callback) skips the batches once.
        """
        self._resume = {"epoch": int(state["epoch"]), "batches": int(state["batches"])}
        self.sampler.set_epoch(self._resume["epoch"])

    def _take_resume_position(self) -> int:
        """Batches to skip in this pass: only in the epoch the state was saved in."""
        resume, self._resume = self._resume, None
        if resume is None or resume["epoch"] != self.sampler.epoch:
            return 0
        return resume["batches"]
