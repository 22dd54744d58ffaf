"""What a run needs to be reproduced: seed, code version, package versions, device, host.

Written to `run_info.json` when training starts (so a run killed hard still has it),
one entry per session (a resumed run adds one), and copied into results.json.
The git commit comes from the repository holding the neuralab package (a fork, an
editable install) or else the working dir; `dirty` says whether tracked files differ
from it. No git, or no repository: `git` is null, nothing fails.
"""

from __future__ import annotations

import json
import platform
import socket
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import lightning as L
import torch

from neuralab.runtime.cli import write_json

PACKAGES = ("neuralab", "torch", "lightning", "hydra-core", "omegaconf", "numpy", "torchmetrics")
RUN_INFO = "run_info.json"


def run_info(seed: int, trainer: L.Trainer, resumed_from: dict | None) -> dict:
    """This session's metadata (plain JSON values)."""
    return {
        "seed": seed,
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "argv": list(sys.argv),
        "git": git_state(),
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


def git_state() -> dict | None:
    """{"commit", "dirty", "root"} of the package's repository, else of the working dir."""
    package_dir = Path(__file__).resolve().parent.parent
    for where in (package_dir, Path.cwd()):
        root = _git(where, "rev-parse", "--show-toplevel")
        if root:
            commit = _git(where, "rev-parse", "HEAD")
            status = _git(where, "status", "--porcelain", "--untracked-files=no")
            dirty = None if status is None else bool(status)
            return {"commit": commit, "dirty": dirty, "root": root}
    return None


def _git(where: Path, *args: str) -> str | None:
    # --no-optional-locks: read-only, never touches the index another git may be using.
    cmd = ["git", "--no-optional-locks", "-C", str(where), *args]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
