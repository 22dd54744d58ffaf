"""Checkpoint files that are either complete or absent, and load without running code.

Lightning's TorchCheckpointIO writes through an fsspec transaction whose temp file lives
in the system temp dir; committing it is a `shutil.move`, which is a plain copy when /tmp
is another filesystem (tmpfs), so a kill during that copy leaves half a `last.ckpt`. Here
the temp file sits next to the target, is fsync'ed, and `os.replace` swaps it in: readers
see the old file or the new one, never a mix. Loading always uses `weights_only=True`
(Lightning's default is False): a checkpoint can never execute code.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO


class AtomicCheckpointIO(TorchCheckpointIO):
    """TorchCheckpointIO with same-dir temp file + fsync + os.replace, weights_only loads."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        if "://" in str(path):  # remote storage: its own transaction semantics apply
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        atomic_torch_save(checkpoint, Path(path))

    def load_checkpoint(
        self,
        path: str | Path,
        map_location: Callable | None = lambda storage, loc: storage,
        weights_only: bool | None = None,
    ) -> dict[str, Any]:
        # Whatever the caller asked, never unpickle arbitrary objects.
        return super().load_checkpoint(path, map_location=map_location, weights_only=True)


def atomic_torch_save(obj: Any, path: Path) -> None:
    """torch.save to `path` so that no reader (or crash) ever sees a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the name points at them
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)  # and the rename itself survives a power cut


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a dir be opened
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
