"""Offline data sources chosen by `data.source`, returned as numpy arrays.

`data.source` is a name from SOURCES below, or the dotted path of any function with
the same signature (`source: my_project.data.my_set.load`): a forked project adds a
data set as one function and one conf/data/*.yaml, with nothing here to edit.

A source returns `Arrays(x, y)` to be split by the DataModule, or also
`(x_test, y_test)` when the set has its own test split (IDX files) or when the
test points must differ from training (clean targets vs outliers). sklearn is
imported inside each function so that other sources never pay for it.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from neuralab.errors import ConfigError


class Arrays(NamedTuple):
    x: np.ndarray  # (N, F) float
    y: np.ndarray  # (N,) int class indices, or (N,) / (N, T) float targets
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None


def _sklearn_loader(name: str) -> Callable[..., Arrays]:
    def load(seed: int, **_) -> Arrays:
        x, y = _sklearn_arrays(name)  # a fresh copy: the cached arrays are shared
        return Arrays(x.copy(), y.copy())

    load.__name__ = name
    return load


@functools.cache
def _sklearn_arrays(name: str) -> tuple[np.ndarray, np.ndarray]:
    """sklearn's bundled set `name`, read once per process (a multirun's jobs share it).

    digits, the default, is read straight from the CSV sklearn ships: importing
    sklearn.datasets costs ~0.6 s of start-up, parsing the file ~20 ms.
    """
    if name == "digits":
        spec = importlib.util.find_spec("sklearn")  # finds the package, imports nothing
        csv = Path(spec.submodule_search_locations[0]) / "datasets/data/digits.csv.gz"
        if csv.is_file():
            data = np.loadtxt(csv, delimiter=",")  # as sklearn's load_digits reads it
            return data[:, :-1], data[:, -1].astype(int)
    from sklearn import datasets

    return getattr(datasets, f"load_{name}")(return_X_y=True)


def moons(seed: int, n_samples: int = 1000, noise: float = 0.2, **_) -> Arrays:
    from sklearn.datasets import make_moons

    return Arrays(*make_moons(n_samples=n_samples, noise=noise, random_state=seed))


def circles(
    seed: int, n_samples: int = 1000, noise: float = 0.1, factor: float = 0.5, **_
) -> Arrays:
    from sklearn.datasets import make_circles

    return Arrays(*make_circles(n_samples, noise=noise, factor=factor, random_state=seed))


def imbalanced(
    seed: int,
    n_samples: int = 3000,
    n_features: int = 20,
    weights: tuple[float, ...] = (0.85, 0.1, 0.05),
    **_,
) -> Arrays:
    """Three classes in proportions `weights` (the minority classes are rare)."""
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples,
        n_features,
        n_informative=6,
        n_redundant=2,
        n_classes=len(weights),
        weights=list(weights),
        random_state=seed,
    )
    return Arrays(x, y)


def regression_outliers(
    seed: int,
    n_samples: int = 1000,
    n_test: int = 300,
    n_features: int = 10,
    outlier_fraction: float = 0.1,
    outlier_scale: float = 20.0,
    **_,
) -> Arrays:
    """Linear-plus-noise targets; a fraction of the *training* targets is corrupted.

    The test points stay clean, so test error measures how much each loss lets
    the outliers pull the fit.
    """
    from sklearn.datasets import make_regression

    x, y = make_regression(n_samples + n_test, n_features, noise=5.0, random_state=seed)
    rng = np.random.default_rng(seed)
    bad = rng.random(n_samples) < outlier_fraction
    y_train = y[:n_samples].copy()
    y_train[bad] += outlier_scale * y.std() * rng.choice([-1.0, 1.0], bad.sum())
    return Arrays(x[:n_samples], y_train, x[n_samples:], y[n_samples:])


def synthetic(
    seed: int,
    n_samples: int = 60000,
    n_features: int = 784,
    n_classes: int = 10,
    n_test: int = 10000,
    **_,
) -> Arrays:
    """MNIST-sized random data with learnable labels (a random linear teacher).

    For benchmarks: the shapes of MNIST without a download; x ~ N(0, 1),
    y = argmax(x @ W + noise) with W ~ N(0, 1), so a net can fit it.
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_samples + n_test, n_features), dtype=np.float32)
    teacher = rng.standard_normal((n_features, n_classes), dtype=np.float32)
    logits = x @ teacher + rng.standard_normal((len(x), n_classes), dtype=np.float32)
    y = logits.argmax(axis=1)
    return Arrays(x[:n_samples], y[:n_samples], x[n_samples:], y[n_samples:])


_GATES = {"xor": np.logical_xor, "and": np.logical_and, "or": np.logical_or}


def gate(seed: int, gate: str = "xor", per_corner: int = 50, jitter: float = 0.1, **_) -> Arrays:
    """The 4 corners of the unit square, labelled by a logic gate.

    Each corner is repeated with bounded uniform jitter (|noise| <= jitter per axis),
    so AND and OR stay linearly separable and XOR stays not.
    """
    rng = np.random.default_rng(seed)
    corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    labels = _GATES[gate](corners[:, 0], corners[:, 1]).astype(int)
    x = np.repeat(corners, per_corner, axis=0)
    x += rng.uniform(-jitter, jitter, size=x.shape)
    return Arrays(x, np.repeat(labels, per_corner))


def idx(
    seed: int, name: str = "mnist", data_dir: str = "data", download: bool = True, **_
) -> Arrays:
    from neuralab.data.idx import load_idx_dataset

    return Arrays(*load_idx_dataset(name, Path(data_dir), download))


SOURCES: dict[str, Callable[..., Arrays]] = {
    **{n: _sklearn_loader(n) for n in ("digits", "iris", "wine", "breast_cancer", "diabetes")},
    "moons": moons,
    "circles": circles,
    "imbalanced": imbalanced,
    "regression_outliers": regression_outliers,
    "gate": gate,
    "synthetic": synthetic,
    "idx": idx,
}


def find_source(source: str) -> Callable[..., Arrays]:
    """SOURCES[source], or the function at dotted path `source` (package.module.function)."""
    if isinstance(source, str) and "." in source:
        module, _, name = source.rpartition(".")
        try:
            load = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as err:
            raise ConfigError("data.source", source, f"a function's dotted path ({err})") from None
        if not callable(load):
            raise ConfigError("data.source", source, "a function's dotted path")
        return load
    if isinstance(source, str) and source in SOURCES:
        return SOURCES[source]
    names = ", ".join(sorted(SOURCES))
    raise ConfigError("data.source", source, f"one of: {names}; or package.module.function")
