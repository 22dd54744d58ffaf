"""A pack's data: every member's own splits, side by side, in each member's own order.

A member's split, standardization and epoch order depend on its seed, as in its
lone run; the pack stacks the members' split tensors along a first dimension
(M, N, ...) and each epoch gathers member m's batch from its own rows with its own
permutation (`EpochSampler` seeded with the member's data seed). A batch is then
(M, B, ...): row m is exactly the batch member m's lone run trains on at that step.
The splits must have equal sizes (they do for one data set and fractions).
"""

from __future__ import annotations

import torch
from torch import Tensor

from neuralab.data.loader import EpochSampler, InMemoryLoader
from neuralab.data.module import ArrayDataModule
from neuralab.runtime.chunks import Chunk


class PackChunk(Chunk):
    """A chunk whose rows are (M, R) indices: member m's rows of its own tensors."""

    @staticmethod
    def take(tensors: tuple[Tensor, ...], rows: Tensor) -> tuple[Tensor, ...]:
        # t[members, rows], as one index_select over (M * N, ...): half the time on CPU.
        members = torch.arange(rows.shape[0], device=rows.device).unsqueeze(1)
        return tuple(
            t.flatten(0, 1)
            .index_select(0, (rows + members * t.shape[1]).flatten())
            .view(*rows.shape, *t.shape[2:])
            for t in tensors
        )


class PackSampler:
    """The members' samplers as one: `indices()` is (M, N), one row per member."""

    def __init__(self, samplers: list[EpochSampler]):
        self.samplers = samplers
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        for sampler in self.samplers:
            sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.samplers[0])

    def indices(self) -> Tensor:
        return torch.stack([s.indices() for s in self.samplers])


class PackLoader(InMemoryLoader):
    chunk_class = PackChunk


def unequal_splits(datamodules: list[ArrayDataModule]) -> str | None:
    """Why these members' data cannot be stacked (None: it can)."""
    first = datamodules[0]
    for index, dm in enumerate(datamodules[1:], 1):
        for split, (x, y) in dm.splits.items():
            x0, y0 = first.splits[split]
            if x.shape != x0.shape or y.shape != y0.shape or x.dtype != x0.dtype:
                return f"member {index}'s {split} split has another shape than member 0's"
        if not dm.in_memory:
            return "data.in_memory=false"
    return None


def pack_loader(
    datamodules: list[ArrayDataModule], split: str, device: torch.device, chunk: int
) -> PackLoader:
    """The members' `split` as one loader (train: shuffled per member, in chunks)."""
    train = split == "train"
    first = datamodules[0]
    tensors = tuple(
        torch.stack([dm.splits[split][i] for dm in datamodules])
        for i in range(len(first.splits[split]))
    )
    sampler = PackSampler(
        [EpochSampler(tensors[0].shape[1], train, dm.seed, pad=train) for dm in datamodules]
    )
    size = first.batch_size if train else first.eval_batch_size
    return PackLoader(tensors, size, sampler, device=device, steps_per_chunk=chunk if train else 1)
