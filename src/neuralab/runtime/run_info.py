"""What a run needs to be reproduced: seed, code version, package versions, device, host.

Written to `run_info.json` when training starts (so a run killed hard still has it),
one entry per session (a resumed run adds one), and copied into results.json.
The git commit comes from the repository holding the neuralab package (a fork, an
editable install) or else the working dir; `dirty` says whether the code that ran
differs from it: a tracked file changed, or an untracked file under the package's
source dir or conf/ (a forker's new net or yaml: the commit alone would not rebuild the
run), listed under `untracked`. Other untracked files (notes, outputs) do not count.
No git, or no repository: `git` is null, nothing fails.
"""

from __future__ import annotations

import copy
import functools
import json
import platform
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import lightning as L
import torch

from neuralab.runtime.cli import write_json
from neuralab.runtime.config import config_dir

PACKAGES = ("neuralab", "torch", "lightning", "hydra-core", "omegaconf", "numpy", "torchmetrics")
RUN_INFO = "run_info.json"


def run_info(seed: int, trainer: L.Trainer, resumed_from: dict | None) -> dict:
    """This session's metadata (plain JSON values)."""
    return {
        "seed": seed,
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "argv": list(sys.argv),
        "git": recent_git_state(),
        "versions": {"python": platform.python_version(), **package_versions()},
        "device": device_info(trainer),
        "resumed_from": resumed_from,
    }


def record_session(output_dir: Path, info: dict) -> None:
    """Append this session to run_info.json: {"sessions": [first, resumed, ...]}."""
    path = output_dir / RUN_INFO
    sessions = []
    if path.is_file():
        try:
            sessions = list(json.loads(path.read_text()).get("sessions", []))
        except (OSError, ValueError, AttributeError):
            sessions = []  # an unreadable file is replaced, never fatal
    write_json(path, {"sessions": [*sessions, info]})


@functools.cache  # installed packages do not change while a sweep runs (30 ms a read)
def package_versions() -> dict[str, str | None]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def device_info(trainer: L.Trainer) -> dict:
    root = trainer.strategy.root_device
    info = {
        "accelerator": type(trainer.accelerator).__name__,
        "strategy": type(trainer.strategy).__name__,
        "root_device": str(root),
        "num_devices": trainer.num_devices,
        "num_nodes": trainer.num_nodes,
        "precision": str(trainer.precision),
        "torch_threads": torch.get_num_threads(),
    }
    if root.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(root)
    return info


# The repository as read at most this long ago: a packed sweep starts its jobs within
# seconds, and reading it costs four git processes (~10 ms) a job.
GIT_FRESH_S = 10.0
_git_read: list = []  # [(time.monotonic(), state)] of the last read


def recent_git_state() -> dict | None:
    """git_state(), read again when the last read is older than GIT_FRESH_S."""
    now = time.monotonic()
    if not _git_read or now - _git_read[0][0] > GIT_FRESH_S:
        _git_read[:] = [(now, git_state())]
    return copy.deepcopy(_git_read[0][1])  # each job's record its own


def git_state(package_dir: Path | None = None, conf: Path | None = None) -> dict | None:
    """{"commit", "dirty", "untracked", "root"} of the package's repository, else of the
    working dir. `package_dir` (src/neuralab) and `conf` default to this installation's."""
    package_dir = package_dir or Path(__file__).resolve().parent.parent
    conf = conf or Path(config_dir())
    for where in (package_dir, Path.cwd()):
        root = _git(where, "rev-parse", "--show-toplevel")
        if root:
            commit = _git(where, "rev-parse", "HEAD")
            status = _git(where, "status", "--porcelain", "--untracked-files=no")
            untracked = _untracked(Path(root), [package_dir.parent, conf])
            dirty = None if status is None else bool(status) or bool(untracked)
            return {"commit": commit, "dirty": dirty, "untracked": untracked, "root": root}
    return None


def _untracked(root: Path, dirs: list[Path]) -> list[str]:
    """Untracked (and not ignored) files under `dirs` that are inside the repository."""
    inside = [str(d.resolve()) for d in dirs if d.resolve().is_relative_to(root.resolve())]
    if not inside:
        return []
    listed = _git(root, "ls-files", "--others", "--exclude-standard", "--", *inside)
    return sorted(listed.splitlines()) if listed else []


def _git(where: Path, *args: str) -> str | None:
    # --no-optional-locks: read-only, never touches the index another git may be using.
    cmd = ["git", "--no-optional-locks", "-C", str(where), *args]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
