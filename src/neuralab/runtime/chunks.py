"""Chunks: K batches handed to one `training_step` call, for modules that opt in.

Lightning's loop costs a few hundred microseconds per `training_step` call (hooks over
every callback, the optimization closure, progress bookkeeping), as much as a whole
optimizer step of a small MLP. With `data.steps_per_chunk=K` the in-memory loader
yields a `Chunk` of K batches to a module that declares `accepts_chunks = True`, and
the module takes their K optimizer steps in one call (`runtime/chunk_steps.py`), so
Lightning's per-call cost is paid once per K steps. Other modules get plain batches.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

from torch import Tensor

if TYPE_CHECKING:
    import lightning as L


class Chunk:
    """The K batches of one `training_step`, gathered a block of batches at a time, on
    first use, and then kept (later readers, such as the metrics, see the same tensors).

    On the CPU a single gather for all K batches writes them all out before the first
    is used; with MNIST-sized rows (100 x 128 x 784 floats: 40 MB) they leave the
    cache and come back from RAM. Blocks of about BLOCK_BYTES stay in the cache from
    gather to use (measured on 2 cores: 100 batches gathered and multiplied, 48 ms
    whole vs 37 ms in blocks; the MNIST-sized fit 2.29 vs 2.16 s, medians of 8), while
    small rows (digits: 17 KB a batch) still take one gather per chunk. On a GPU one
    gather is best.

    Not a list or Sequence on purpose: Lightning's batch transfer rebuilds those,
    reading every batch up front (the tensors are on the device already).
    """

    BLOCK_BYTES = 1 << 20  # about half the L2 cache of one core of a current server CPU

    def __init__(self, tensors: tuple[Tensor, ...], idx: Tensor, batch_size: int):
        self.tensors, self.idx, self.batch_size = tensors, idx, batch_size
        self._batches: list[tuple[Tensor, ...] | None] = [None] * math.ceil(
            idx.shape[-1] / batch_size
        )
        row_bytes = sum(t.shape[idx.ndim :].numel() * t.element_size() for t in tensors)
        batch_bytes = batch_size * (idx.numel() // max(1, idx.shape[-1])) * row_bytes
        fit = max(1, self.BLOCK_BYTES // batch_bytes) if tensors[0].device.type == "cpu" else 0
        self.block = min(fit, len(self._batches)) or len(self._batches)  # batches per gather

    def __len__(self) -> int:
        return len(self._batches)

    def __getitem__(self, i: int | slice) -> tuple[Tensor, ...] | list[tuple[Tensor, ...]]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        batch = self._batches[i]  # IndexError past the end: iteration stops there
        if batch is None:
            self._gather(range(len(self))[i] // self.block)
            batch = self._batches[i]
        return batch

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        return (self[i] for i in range(len(self)))

    def _gather(self, block: int) -> None:
        first, size = block * self.block, self.batch_size
        rows = self.idx[..., first * size : (first + self.block) * size]
        parts = [t.split(size, dim=rows.ndim - 1) for t in self.take(self.tensors, rows)]
        for offset, batch in enumerate(zip(*parts, strict=True)):
            self._batches[first + offset] = batch

    @staticmethod
    def take(tensors: tuple[Tensor, ...], rows: Tensor) -> tuple[Tensor, ...]:
        """The rows of every tensor: one batch (or a block of them)."""
        return tuple(t[rows] for t in tensors)


def batches_of(item: tuple[Tensor, ...] | Chunk) -> Chunk | list[tuple[Tensor, ...]]:
    """The batches in one loader item: a chunk's, or the item itself (a tuple, or the
    list of tensors a DataLoader collates) as the only batch."""
    return item if isinstance(item, Chunk) else [item]


def steps_per_epoch(trainer: L.Trainer) -> int | float:
    """Optimizer steps in one training epoch: the in-memory loader's batches (a chunk
    holds several), else Lightning's count of `training_step` calls (one batch each)."""
    return getattr(trainer.train_dataloader, "num_batches", None) or trainer.num_training_batches


def chunks_allowed(trainer: L.Trainer) -> bool:
    """Whether training batches may come in chunks of several optimizer steps.

    Only for modules that opt in (`accepts_chunks = True`: their training_step takes
    `batches_of(batch)`); any other module gets plain batches, as Lightning teaches.
    Not where a setting counts batches as Lightning's `training_step` calls (max_steps,
    limits, fast_dev_run, overfit_batches, mid-epoch validation, accumulation), nor with several
    processes: DDP syncs gradients once per forward of its wrapper, i.e. once per call.
    """
    per_call = (
        trainer.max_steps != -1
        or trainer.limit_train_batches != 1.0
        or trainer.fast_dev_run
        or trainer.overfit_batches
        or trainer.val_check_interval != 1.0
        or trainer.accumulate_grad_batches != 1
    )
    opted_in = getattr(trainer.lightning_module, "accepts_chunks", False)
    return opted_in and trainer.world_size == 1 and not per_call
