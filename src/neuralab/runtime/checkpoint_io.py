"""Checkpoint files that are either complete or absent, and load without running code.

Lightning's TorchCheckpointIO writes through an fsspec transaction whose temp file lives
in the system temp dir; committing it is a `shutil.move`, which is a plain copy when /tmp
is another filesystem (tmpfs), so a kill during that copy leaves half a `last.ckpt`. Here
the temp file sits next to the target and `os.replace` swaps it in: readers (and a run
killed mid-save) see the old file or the new one, never a mix. With `fsync=True` the bytes
and the rename also survive an OS crash or power cut; that costs milliseconds a save
(more on a busy or network disk), so it is a setting (`checkpoint_fsync`), off by default.
Loading always uses `weights_only=True` (Lightning's default is False): a checkpoint can
never execute code.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from neuralab.runtime.atomic import sibling_temp


class CheckpointWriteFailed(OSError):
    """The machine could not write a checkpoint (disk full, I/O error, quota): the file
    it would have replaced is intact, so `resume=true` continues from it later."""

    def __init__(self, path: Path, err: OSError):
        kept = f"the previous {path.name} is intact" if path.is_file() else "nothing was written"
        why = f"{err.strerror} (errno {err.errno})" if err.strerror else str(err)
        super().__init__(f"writing checkpoint {path} failed: {why}; {kept}")
        self.path = path


class AtomicCheckpointIO(TorchCheckpointIO):
    """TorchCheckpointIO with same-dir temp file + os.replace, weights_only loads.

    `stamp` entries go into every checkpoint written (train.py: the run's config, from
    which eval and resume rebuild data and model, whatever the module saves itself).
    """

    def __init__(self, fsync: bool = False, stamp: dict[str, Any] | None = None):
        super().__init__()
        self.fsync, self.stamp = fsync, dict(stamp or {})

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        checkpoint = {**checkpoint, **self.stamp}
        if "://" in str(path):  # remote storage: its own transaction semantics apply
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        try:
            atomic_torch_save(checkpoint, Path(path), self.fsync)
        except OSError as err:
            raise CheckpointWriteFailed(Path(path), err) from err

    def load_checkpoint(
        self,
        path: str | Path,
        map_location: Callable | None = lambda storage, loc: storage,
        weights_only: bool | None = None,
    ) -> dict[str, Any]:
        # Whatever the caller asked, never unpickle arbitrary objects.
        return super().load_checkpoint(path, map_location=map_location, weights_only=True)


def atomic_torch_save(obj: Any, path: Path, fsync: bool = False) -> None:
    """torch.save to `path` so that no reader (or crash) ever sees a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = sibling_temp(path, ".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            if fsync:
                f.flush()
                os.fsync(f.fileno())  # the bytes are on disk before the name points at them
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if fsync:
        _fsync_dir(path.parent)  # and the rename itself survives a power cut


def atomic_link(source: Path, path: Path, fsync: bool = False) -> None:
    """`path` becomes a second name of `source`'s bytes (a hard link, swapped in
    atomically), or an atomic copy where the filesystem has no hard links.

    Safe because checkpoint files are never rewritten in place: every save replaces
    the name with a new file, so the two names part ways at the next save of either.
    """
    tmp = path.parent / f".{path.name}.link.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    try:
        os.link(source, tmp)
    except OSError:
        atomic_torch_save(torch.load(source, weights_only=True, map_location="cpu"), path, fsync)
        return
    os.replace(tmp, path)
    if fsync:
        _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a dir be opened
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
