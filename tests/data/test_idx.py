"""Offline tests for neuralab.data.idx: small IDX files written into tmp_path."""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from neuralab.data.idx import IDX_SETS, load_idx_dataset, read_idx
from neuralab.errors import ConfigError

N_TRAIN, N_TEST, SIDE = 20, 10, 28


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array as IDX: magic 00 00 08 ndim, big-endian uint32 dims, payload."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def make_arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (N_TRAIN, SIDE, SIDE), np.uint8),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, N_TRAIN, np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (N_TEST, SIDE, SIDE), np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, N_TEST, np.uint8),
    }


def write_set(folder: Path, arrays: dict[str, np.ndarray], gz: bool = True) -> dict[str, str]:
    """Write the four files into `folder`; return md5 of each written file by .gz name."""
    folder.mkdir(parents=True, exist_ok=True)
    md5s = {}
    for name, array in arrays.items():
        data = idx_bytes(array)
        if gz:
            data = gzip.compress(data, mtime=0)  # mtime=0: same bytes every run
        (folder / (name if gz else name.removesuffix(".gz"))).write_bytes(data)
        md5s[name] = hashlib.md5(data).hexdigest()
    return md5s


def assert_matches(result, arrays) -> None:
    x_train, y_train, x_test, y_test = result
    assert x_train.shape == (N_TRAIN, SIDE * SIDE) and x_test.shape == (N_TEST, SIDE * SIDE)
    assert x_train.dtype == np.float32 and x_test.dtype == np.float32
    assert y_train.shape == (N_TRAIN,) and y_test.shape == (N_TEST,)
    assert y_train.dtype == np.int64 and y_test.dtype == np.int64
    assert 0.0 <= x_train.min() and x_train.max() <= 1.0
    expected = arrays["train-images-idx3-ubyte.gz"].reshape(N_TRAIN, -1) / 255.0
    np.testing.assert_allclose(x_train, expected, rtol=1e-6)
    np.testing.assert_allclose(
        x_test, arrays["t10k-images-idx3-ubyte.gz"].reshape(N_TEST, -1) / 255.0, rtol=1e-6
    )
    np.testing.assert_array_equal(y_train, arrays["train-labels-idx1-ubyte.gz"])
    np.testing.assert_array_equal(y_test, arrays["t10k-labels-idx1-ubyte.gz"])


def test_round_trip_gz(tmp_path):
    arrays = make_arrays()
    write_set(tmp_path / "mnist", arrays)
    assert_matches(load_idx_dataset("mnist", tmp_path, download=False), arrays)


def test_raw_files_are_read(tmp_path):
    arrays = make_arrays()
    write_set(tmp_path / "fashion_mnist", arrays, gz=False)
    assert_matches(load_idx_dataset("fashion_mnist", tmp_path, download=False), arrays)


@pytest.mark.parametrize(
    "code, dtype", [(0x09, ">i1"), (0x0B, ">i2"), (0x0C, ">i4"), (0x0D, ">f4"), (0x0E, ">f8")]
)
def test_read_idx_other_dtypes(tmp_path, code, dtype):
    array = np.arange(-6, 6).reshape(3, 4).astype(dtype)
    path = tmp_path / "x.idx"
    path.write_bytes(struct.pack(">BBBB2I", 0, 0, code, 2, 3, 4) + array.tobytes())
    out = read_idx(path)
    assert out.shape == (3, 4) and out.dtype.isnative
    np.testing.assert_array_equal(out, array)


def test_truncated_file_raises(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(idx_bytes(make_arrays()["train-images-idx3-ubyte.gz"])[:-5])
    with pytest.raises(ConfigError, match="train-images-idx3-ubyte") as info:
        read_idx(path)
    assert "truncated" in str(info.value)


def test_truncated_gzip_raises(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(make_arrays()["train-images-idx3-ubyte.gz"]))[:-50])
    with pytest.raises(ConfigError, match="train-images-idx3-ubyte.gz"):
        read_idx(path)


def test_bad_magic_raises(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(b"\x01\x02\x08\x01" + struct.pack(">I", 3) + b"\x00\x01\x02")
    with pytest.raises(ConfigError, match="t10k-labels-idx1-ubyte") as info:
        read_idx(path)
    assert "magic" in str(info.value)


def test_label_count_mismatch_raises(tmp_path):
    arrays = make_arrays()
    arrays["t10k-labels-idx1-ubyte.gz"] = arrays["t10k-labels-idx1-ubyte.gz"][:-1]
    write_set(tmp_path / "mnist", arrays)
    with pytest.raises(ConfigError, match="t10k-labels-idx1-ubyte.gz"):
        load_idx_dataset("mnist", tmp_path, download=False)


def test_missing_without_download_raises(tmp_path):
    with pytest.raises(ConfigError, match=r"data\.params\.download=true") as info:
        load_idx_dataset("mnist", tmp_path, download=False)
    assert info.value.setting == "data.params.data_dir"
    assert str(tmp_path / "mnist" / "train-images-idx3-ubyte.gz") in str(info.value)


def patch_md5s(monkeypatch, md5s: dict[str, str]) -> None:
    for name, md5 in md5s.items():
        monkeypatch.setitem(IDX_SETS["mnist"]["files"], name, md5)


def test_download_from_file_mirror(tmp_path, monkeypatch):
    arrays = make_arrays()
    patch_md5s(monkeypatch, write_set(tmp_path / "mirror", arrays))
    dead = (tmp_path / "no-such-mirror").as_uri()  # the first mirror fails, the next is used
    mirrors = [dead, (tmp_path / "mirror").as_uri() + "/"]
    result = load_idx_dataset("mnist", tmp_path / "data", download=True, mirrors=mirrors)
    assert_matches(result, arrays)
    names = sorted(p.name for p in (tmp_path / "data" / "mnist").iterdir())
    assert names == sorted(arrays)  # only the final files: no temp files left behind


def test_downloaded_files_follow_the_umask(tmp_path, monkeypatch):
    arrays = make_arrays()
    patch_md5s(monkeypatch, write_set(tmp_path / "mirror", arrays))
    old = os.umask(0o022)
    try:
        load_idx_dataset("mnist", tmp_path / "data", True, [(tmp_path / "mirror").as_uri()])
    finally:
        os.umask(old)
    modes = {p.stat().st_mode & 0o777 for p in (tmp_path / "data" / "mnist").iterdir()}
    assert modes == {0o644}  # a shared data dir stays readable, as with a plain open()


def test_download_wrong_md5_leaves_nothing(tmp_path, monkeypatch):
    arrays = make_arrays()
    md5s = write_set(tmp_path / "mirror", arrays)
    md5s["train-images-idx3-ubyte.gz"] = "0" * 32
    patch_md5s(monkeypatch, md5s)
    mirror = (tmp_path / "mirror").as_uri()
    with pytest.raises(ConfigError, match="0" * 32) as info:
        load_idx_dataset("mnist", tmp_path / "data", download=True, mirrors=[mirror])
    assert "train-images-idx3-ubyte.gz" in str(info.value) and mirror in str(info.value)
    assert list((tmp_path / "data" / "mnist").iterdir()) == []


def test_unknown_name_lists_allowed(tmp_path):
    with pytest.raises(ConfigError, match="fashion_mnist") as info:
        load_idx_dataset("cifar", tmp_path, download=False)
    assert info.value.allowed == "one of: fashion_mnist, mnist"
    assert info.value.setting == "data.params.name" and info.value.value == "cifar"
