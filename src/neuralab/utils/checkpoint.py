"""Finding and loading checkpoints safely (weights_only: no code runs on load)."""

from __future__ import annotations

from pathlib import Path

import torch

from neuralab.errors import ConfigError

WRITTEN_BY_TRAIN = "a checkpoint written by neuralab-train"


def find_checkpoint(ckpt_path: str | None, run_dir: str | None) -> Path:
    """`ckpt_path` itself, or the run dir's checkpoints/best.ckpt (else last.ckpt)."""
    if (ckpt_path is None) == (run_dir is None):
        raise ConfigError(
            "ckpt_path / run_dir",
            (ckpt_path, run_dir),
            "exactly one of them: a .ckpt file or a run dir",
        )
    if ckpt_path is not None:
        path = Path(ckpt_path)
        if not path.is_file():
            raise ConfigError("ckpt_path", ckpt_path, "an existing checkpoint file")
        return path
    candidates = [Path(run_dir) / "checkpoints" / name for name in ("best.ckpt", "last.ckpt")]
    for path in candidates:
        if path.is_file():
            return path
    raise ConfigError("run_dir", run_dir, "a run dir holding checkpoints/best.ckpt or last.ckpt")


def load_checkpoint(path: Path) -> dict:
    """The checkpoint dict, refusing files that are not neuralab checkpoints."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many kinds for a file that is not a checkpoint
        raise ConfigError(
            "ckpt_path", str(path), f"{WRITTEN_BY_TRAIN} (loading failed: {_first_line(err)})"
        ) from None
    hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    config = hparams.get("config") if isinstance(hparams, dict) else None
    if not isinstance(config, dict) or "state_dict" not in checkpoint:
        raise ConfigError("ckpt_path", str(path), f"{WRITTEN_BY_TRAIN} (no saved config inside)")
    return checkpoint


def _first_line(err: Exception) -> str:
    """`KeyError: 101` rather than a bare `101`: torch's own messages can be cryptic."""
    lines = str(err).splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}".rstrip(": ")
