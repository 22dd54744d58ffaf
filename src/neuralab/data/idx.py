"""MNIST-style IDX files: read them and download them with md5 checks, without torchvision.

Only numpy and the standard library are used, so the data path does not pull in
torchvision (and its pinned torch) just to read four small binary files.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import urllib.request
from pathlib import Path
from typing import BinaryIO

import numpy as np

from neuralab.errors import ConfigError, lookup
from neuralab.runtime.atomic import sibling_temp

# The checksums and mirrors are those of torchvision.datasets.MNIST / FashionMNIST, so a
# directory torchvision filled is accepted byte for byte. The S3 mirror comes first for
# MNIST because yann.lecun.com often refuses or times out.
IDX_SETS: dict[str, dict] = {
    "mnist": {
        "mirrors": [
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ],
        "files": {
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
    },
    "fashion_mnist": {
        "mirrors": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
        "files": {
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
    },
}

# (images, labels) per split, in the order load_idx_dataset returns them.
_SPLITS = (
    ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
)

# IDX type codes; every multi-byte type is big-endian on disk.
_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

_SETTING = "data.params.data_dir"  # what the user changes when a file there is bad or missing
_TIMEOUT_S = 60  # a stalled mirror should fail over, not hang the run
_CHUNK = 1 << 20


def read_idx(path: Path) -> np.ndarray:
    """The array stored in the IDX file `path` (gzipped when its name ends in .gz)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:  # a cut-off .gz raises EOFError, a bad one OSError
        raise ConfigError(_SETTING, str(path), f"a readable IDX file ({err})") from None
    return _parse_idx(raw, path)


def _parse_idx(raw: bytes, path: Path) -> np.ndarray:
    """Check the header against the payload size, so truncation cannot pass as data."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        codes = ", ".join(f"0x{c:02X}" for c in _DTYPES)
        raise ConfigError(
            _SETTING, str(path), f"an IDX file (magic 00 00, then a type code in {codes})"
        )
    ndim, header = raw[3], 4 + 4 * raw[3]
    if len(raw) < header:
        raise ConfigError(_SETTING, str(path), f"an IDX header of {header} bytes (truncated)")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_DTYPES[raw[2]])
    expected = header + math.prod(dims) * dtype.itemsize  # Python ints: no overflow
    if len(raw) != expected:
        raise ConfigError(
            _SETTING,
            str(path),
            f"{expected} bytes for shape {dims} as its header says, not {len(raw)}"
            " (truncated or corrupt file)",
        )
    # Native byte order, so downstream numpy/torch code never sees a big-endian array.
    return np.frombuffer(raw, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def load_idx_dataset(
    name: str, root: Path, download: bool, mirrors: list[str] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`(x_train, y_train, x_test, y_test)` of dataset `name` from `root / name`.

    x is float32 (N, rows*cols) in [0, 1]; y is int64 (N,). Missing files are fetched
    from `mirrors` (default: the table's) when `download` is true.
    """
    lookup(IDX_SETS, "data.params.name", name)  # reject an unknown name before touching the disk
    folder = Path(root) / name
    arrays: list[np.ndarray] = []
    for images_file, labels_file in _SPLITS:
        images_path = _ensure_file(name, folder, images_file, download, mirrors)
        labels_path = _ensure_file(name, folder, labels_file, download, mirrors)
        arrays += _to_xy(read_idx(images_path), read_idx(labels_path), images_path, labels_path)
    x_train, y_train, x_test, y_test = arrays
    return x_train, y_train, x_test, y_test


def _to_xy(
    images: np.ndarray, labels: np.ndarray, images_path: Path, labels_path: Path
) -> list[np.ndarray]:
    """Flatten and scale images, widen labels; reject arrays that are not an image set."""
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ConfigError(
            _SETTING, str(images_path), f"uint8 images of 3 dims, not {images.dtype} {images.shape}"
        )
    if labels.ndim != 1 or len(labels) != len(images):
        raise ConfigError(
            _SETTING,
            str(labels_path),
            f"{len(images)} labels in one dimension to match the images, not shape {labels.shape}",
        )
    x = images.reshape(len(images), -1).astype(np.float32) / np.float32(255.0)
    return [x, labels.astype(np.int64)]


def _ensure_file(
    name: str, folder: Path, filename: str, download: bool, mirrors: list[str] | None
) -> Path:
    """The path of `filename` (or its unzipped twin) in `folder`, downloading it if allowed."""
    for candidate in (folder / filename, folder / filename.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    target = folder / filename
    if not download:
        raise ConfigError(
            _SETTING,
            str(target),
            "an existing file (set data.params.download=true or place the IDX files there)",
        )
    # Read the md5 and mirrors at call time so tests (and users) can patch IDX_SETS.
    md5 = IDX_SETS[name]["files"][filename]
    _download(target, md5, list(IDX_SETS[name]["mirrors"] if mirrors is None else mirrors))
    return target


def _download(target: Path, md5: str, mirrors: list[str]) -> None:
    """Fetch `target.name` from the first mirror whose bytes match `md5`, atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    for base in mirrors:
        url = base if base.endswith("/") else base + "/"
        url += target.name
        # A temp file in the same directory makes os.replace atomic, so the final name
        # only ever holds a complete, verified file.
        fd, tmp = sibling_temp(target, ".part")
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=_TIMEOUT_S) as r:
                digest = _copy_hashing(r, out)
            if digest == md5:
                os.replace(tmp, target)
                return
            failures.append(f"{url} (md5 {digest})")
        except (OSError, ValueError) as err:  # URLError is an OSError; a bad URL a ValueError
            failures.append(f"{url} ({err})")
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    tried = "; ".join(failures) or "no mirrors given"
    raise ConfigError(
        _SETTING, str(target), f"{target.name} with md5 {md5}, but no mirror gave it: {tried}"
    )


def _copy_hashing(src: BinaryIO, dst: BinaryIO) -> str:
    """Copy `src` to `dst` in chunks (no whole file in memory) and return the md5 hex."""
    digest = hashlib.md5()
    while chunk := src.read(_CHUNK):
        digest.update(chunk)
        dst.write(chunk)
    return digest.hexdigest()
