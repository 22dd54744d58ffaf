"""Split sizes depend on the data set's size only: every seed's splits have one shape
(a seed sweep of data whose classes a seed draws, such as the synthetic teacher's, packs),
and each class keeps its share within one sample."""

from __future__ import annotations

import pytest

from neuralab.data import ArrayDataModule
from neuralab.data.module import _sizes

pytestmark = pytest.mark.fast


@pytest.mark.parametrize("fraction", [0.15, 0.2, 1 / 3])
@pytest.mark.parametrize("lengths", [[101, 99, 7], [5, 5, 5, 5], [1200], [33, 34, 35, 36, 37]])
def test_class_shares_add_up_to_the_whole_splits_share(lengths, fraction):
    sizes = _sizes(lengths, fraction)
    assert sum(sizes) == round(fraction * sum(lengths))
    assert all(abs(s - fraction * n) < 1 for s, n in zip(sizes, lengths, strict=True))


def synthetic(seed: int) -> ArrayDataModule:
    params = {"n_samples": 1200, "n_features": 8, "n_classes": 10, "n_test": 100}
    dm = ArrayDataModule(
        source="synthetic",
        task="classification",
        num_features=8,
        num_classes=10,
        seed=seed,
        test_fraction=0.0,
        params=params,
    )
    dm.setup()
    return dm


def test_every_seed_splits_the_synthetic_data_into_one_shape():
    shapes = {
        tuple((name, len(y)) for name, (_, y) in synthetic(seed).splits.items())
        for seed in range(1, 9)
    }
    assert shapes == {(("train", 1020), ("val", 180), ("test", 100))}
