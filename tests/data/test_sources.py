"""The sklearn-bundled sources: digits without importing sklearn, loads cached per process."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from sklearn.datasets import load_digits, load_iris

from neuralab.data.sources import SOURCES


def test_digits_read_directly_equals_sklearns_load_digits():
    x, y = load_digits(return_X_y=True)
    got = SOURCES["digits"](0)
    assert np.array_equal(got.x, x) and np.array_equal(got.y, y)
    assert got.x.dtype == x.dtype and got.y.dtype == y.dtype


def test_digits_does_not_import_sklearn():
    """sklearn.datasets costs ~0.6 s of the default run's start-up."""
    code = (
        "import sys; from neuralab.data.sources import SOURCES; SOURCES['digits'](0); "
        "print('sklearn.datasets' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_cached_arrays_are_copied_out():
    """A multirun's jobs share one read; one job changing its arrays leaves the next alone."""
    first = SOURCES["iris"](0)
    first.x[:] = 0
    again = SOURCES["iris"](0)
    assert np.array_equal(again.x, load_iris(return_X_y=True)[0])
