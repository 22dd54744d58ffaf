"""Temp files beside their target, for writes swapped in with os.replace.

`tempfile.mkstemp` creates files readable by their owner only (0600), and os.replace
keeps that mode, so a checkpoint or a downloaded data file would end up unreadable by
the group and others that a plain `open(path, "w")` lets read it (shared data dirs,
a colleague's TensorBoard or eval on a cluster). The temp file gets the mode open()
would give: 0666 minus the process umask.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _umask() -> int:
    try:  # Linux shows it; elsewhere reading it means setting it, which races
        with open("/proc/self/status") as status:  # other threads creating files
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def sibling_temp(target: Path, suffix: str) -> tuple[int, str]:
    """(fd, name) of a new temp file in `target`'s directory, with open()'s mode."""
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=suffix)
    os.fchmod(fd, 0o666 & ~_umask())
    return fd, name
