"""One LightningDataModule for every data set that fits in memory.

setup() loads a source (data.source), makes seeded (stratified, for classification)
train/val/test splits, standardizes features (and regression targets) with the
train split's statistics only, and checks the shapes the config declared
(`num_features`, `num_classes`), since models interpolate them.
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from neuralab.data.loader import EpochSampler, InMemoryLoader
from neuralab.data.sources import Arrays, find_source
from neuralab.errors import ConfigError, lookup
from neuralab.losses import CLASSIFICATION, REGRESSION
from neuralab.runtime.chunks import chunks_allowed

Split = tuple[Tensor, Tensor]


class ArrayDataModule(L.LightningDataModule):
    def __init__(
        self,
        source: str,
        task: str,
        num_features: int,
        num_classes: int | None = None,
        num_targets: int | None = None,
        batch_size: int = 64,
        eval_batch_size: int = 1024,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        standardize: bool = True,
        in_memory: bool = True,
        steps_per_chunk: int = 100,
        num_workers: int = 0,
        seed: int = 0,
        params: dict | None = None,
    ):
        super().__init__()
        self.load = find_source(source)  # a name from SOURCES or a dotted path
        lookup({CLASSIFICATION: 1, REGRESSION: 1}, "data.task", task)
        for name, value in (
            ("batch_size", batch_size),
            ("eval_batch_size", eval_batch_size),
            ("steps_per_chunk", steps_per_chunk),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"data.{name}", value, "an integer >= 1")
        if not (
            0 < val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1
        ):
            raise ConfigError(
                "data.val_fraction + data.test_fraction",
                (val_fraction, test_fraction),
                "fractions in (0, 1) summing below 1",
            )
        self.task, self.num_features = task, num_features
        self.num_classes, self.num_targets = num_classes, num_targets
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.standardize, self.in_memory, self.num_workers = standardize, in_memory, num_workers
        self.steps_per_chunk = steps_per_chunk
        self.seed, self.params = seed, dict(params or {})
        self.splits: dict[str, Split] = {}

    # ----------------------------------------------------------------- setup
    def setup(self, stage: str | None = None) -> None:
        if self.splits:  # idempotent: Lightning calls it per stage, we call it once earlier
            return
        arrays = self.load(self.seed, **self.params)
        self._check_shapes(arrays)
        splits = self._split(arrays)
        if self.standardize:
            splits = _standardize(splits, targets=self.task == REGRESSION)
        self.splits = splits

    def _check_shapes(self, a: Arrays) -> None:
        if a.x.shape[1] != self.num_features:
            raise ConfigError(
                "data.num_features",
                self.num_features,
                f"{a.x.shape[1]} (the features of data.source)",
            )
        if self.task == CLASSIFICATION:
            found = int(a.y.max()) + 1
            if found != self.num_classes:
                raise ConfigError(
                    "data.num_classes", self.num_classes, f"{found} (the classes of data.source)"
                )
        elif (a.y.shape[1] if a.y.ndim > 1 else 1) != self.num_targets:
            raise ConfigError(
                "data.num_targets",
                self.num_targets,
                f"{a.y.shape[1] if a.y.ndim > 1 else 1} (the targets of data.source)",
            )

    def _split(self, a: Arrays) -> dict[str, Split]:
        x = torch.as_tensor(a.x, dtype=torch.float32)
        y = _targets(a.y, self.task)
        gen = torch.Generator().manual_seed(self.seed)
        strata = y if self.task == CLASSIFICATION else None
        if a.x_test is not None:
            train, val = _fractions_split(len(x), [self.val_fraction], strata, gen)
            test_split = (
                torch.as_tensor(a.x_test, dtype=torch.float32),
                _targets(a.y_test, self.task),
            )
            return {"train": (x[train], y[train]), "val": (x[val], y[val]), "test": test_split}
        train, val, test = _fractions_split(
            len(x), [self.val_fraction, self.test_fraction], strata, gen
        )
        return {
            name: (x[i], y[i])
            for name, i in zip(("train", "val", "test"), (train, val, test), strict=True)
        }

    @property
    def train_targets(self) -> Tensor:
        self.setup()
        return self.splits["train"][1]

    # ----------------------------------------------------------- dataloaders
    def train_dataloader(self) -> DataLoader | InMemoryLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader | InMemoryLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> DataLoader | InMemoryLoader:
        return self._loader("test", train=False)

    def predict_dataloader(self) -> DataLoader | InMemoryLoader:
        return self._loader("test", train=False)

    def _loader(self, split: str, train: bool) -> DataLoader | InMemoryLoader:
        self.setup()
        tensors = self.splits[split]
        batch_size = self.batch_size if train else self.eval_batch_size
        if not self.in_memory:
            return DataLoader(
                TensorDataset(*tensors),
                batch_size=batch_size,
                shuffle=train,
                num_workers=self.num_workers,
                persistent_workers=self.num_workers > 0,
                generator=torch.Generator().manual_seed(self.seed),
            )
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer else (0, 1)
        device = trainer.strategy.root_device if trainer else "cpu"
        sampler = EpochSampler(
            len(tensors[0]), shuffle=train, seed=self.seed, rank=rank, world_size=world, pad=train
        )
        chunk = self.steps_per_chunk if train and trainer and chunks_allowed(trainer) else 1
        return InMemoryLoader(tensors, batch_size, sampler, device=device, steps_per_chunk=chunk)


def _targets(y: np.ndarray, task: str) -> Tensor:
    if task == CLASSIFICATION:
        return torch.as_tensor(y, dtype=torch.long)
    y = torch.as_tensor(y, dtype=torch.float32)
    return y.unsqueeze(-1) if y.ndim == 1 else y  # regression targets are (N, T)


def _fractions_split(
    n: int, fractions: list[float], strata: Tensor | None, gen: torch.Generator
) -> list[Tensor]:
    """Seeded index split [rest, f1, f2, ...]; per class when `strata` is given."""
    groups = (
        [torch.arange(n)]
        if strata is None
        else [torch.nonzero(strata == c).flatten() for c in torch.unique(strata)]
    )
    parts: list[list[Tensor]] = [[] for _ in range(len(fractions) + 1)]
    per_group = zip(*(_sizes([len(g) for g in groups], f) for f in fractions), strict=True)
    for group, sizes in zip(groups, per_group, strict=True):
        group = group[torch.randperm(len(group), generator=gen)]
        start = len(group) - sum(sizes)
        parts[0].append(group[:start])
        for k, size in enumerate(sizes, 1):
            parts[k].append(group[start : start + size])
            start += size
    return [torch.cat(p).sort().values for p in parts]


def _sizes(lengths: list[int], fraction: float) -> list[int]:
    """Each class's share of a split: round(fraction x its size), then one moved where
    the classes' roundings do not add up to round(fraction x all) (the classes nearest a
    rounding tie first). So the split sizes depend on the data set's size only, not on
    how a seed's draw spread the classes: every seed's splits have one shape, and a
    packed sweep can stack them (neuralab/pack/data.py)."""
    exact = [fraction * n for n in lengths]
    sizes = [round(e) for e in exact]
    excess = sum(sizes) - round(fraction * sum(lengths))
    step = 1 if excess > 0 else -1
    # The classes rounded furthest toward the excess give back (or take) one first.
    order = sorted(range(len(sizes)), key=lambda i: step * (exact[i] - sizes[i]))
    for i in order[: abs(excess)]:
        sizes[i] -= step
    return sizes


def _standardize(splits: dict[str, Split], targets: bool) -> dict[str, Split]:
    """(v - mean_train) / std_train; constant columns keep std 1 (no division by 0)."""

    def stats(t: Tensor) -> tuple[Tensor, Tensor]:
        std = t.std(dim=0, unbiased=False)
        return t.mean(dim=0), torch.where(std > 0, std, torch.ones_like(std))

    (mx, sx) = stats(splits["train"][0])
    (my, sy) = stats(splits["train"][1]) if targets else (0.0, 1.0)
    return {
        name: ((x - mx) / sx, (y - my) / sy if targets else y) for name, (x, y) in splits.items()
    }
