"""Finding, loading and vetting checkpoints (weights_only: no code runs on load).

Before a run continues from a checkpoint, it must fit: the same net (names and shapes
of every tensor) and, when resuming a run in place, the same training config.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from neuralab.errors import ConfigError

WRITTEN_BY_TRAIN = "a checkpoint written by neuralab-train"
CONFIG_KEY = "neuralab_config"  # the run's resolved config, in every checkpoint


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


def load_checkpoint(path: Path, setting: str = "ckpt_path") -> dict:
    """The checkpoint dict, refusing files that are not neuralab checkpoints.

    A file that is not one fails here with a ConfigError naming `setting`, the file and
    what is wrong with it: empty, text, truncated, corrupt, a zip of something else, or
    objects other than tensors and plain values (torch's own message would then suggest
    `weights_only=False`, which would run the file's code). torch.load does not check
    the CRC32 its zip format stores for each tensor, so flipped bytes inside a tensor
    would load silently as wrong weights: zipfile checks them first.
    """
    wrong = _what_is_wrong(Path(path))
    if wrong is not None:
        raise ConfigError(setting, str(path), f"{WRITTEN_BY_TRAIN} ({wrong})")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # torch's weights_only refusal of an object
        why = "it holds objects other than tensors and plain values: not written by neuralab"
        raise ConfigError(setting, str(path), f"{WRITTEN_BY_TRAIN} ({why})") from None
    except Exception as err:  # torch raises many kinds for a file that is not a checkpoint
        raise ConfigError(
            setting, str(path), f"{WRITTEN_BY_TRAIN} (loading failed: {_first_line(err)})"
        ) from None
    config = saved_config(checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(config, dict) or "state_dict" not in checkpoint:
        raise ConfigError(setting, str(path), f"{WRITTEN_BY_TRAIN} (no saved config inside)")
    return checkpoint


def saved_config(checkpoint: dict) -> dict | None:
    """The resolved config of the run that wrote `checkpoint` (train.py stamps it into
    every file; checkpoints of earlier versions kept it as a module hyperparameter)."""
    hparams = checkpoint.get("hyper_parameters")
    older = hparams.get("config") if isinstance(hparams, dict) else None
    return checkpoint.get(CONFIG_KEY, older)


# What a run learns; the rest (trainer, logger, callbacks, paths) is how it is run.
TRAINING_SECTIONS = ("data", "model", "module", "loss", "optimizer", "scheduler", "init", "seed")
RUN_ONLY = frozenset({"model.compile"})  # a run may resume with compilation switched on or off


def check_weights_fit(
    module: nn.Module, checkpoint: dict, config: Mapping, path: Path, setting: str
) -> None:
    """Every tensor of the configured module is in the checkpoint, with the same shape."""
    saved, own = checkpoint["state_dict"], module.state_dict()
    problems = [f"{k} is missing from the checkpoint" for k in sorted(own.keys() - saved.keys())]
    problems += [f"{k} is not in the configured model" for k in sorted(saved.keys() - own.keys())]
    problems += [
        f"{k} is {list(saved[k].shape)} in the checkpoint, {list(own[k].shape)} here"
        for k in sorted(own.keys() & saved.keys())
        if tuple(saved[k].shape) != tuple(own[k].shape)
    ]
    if problems:
        saved_model = saved_config(checkpoint).get("model", {})
        differ = config_differences(saved_model, config.get("model", {}))
        why = "; ".join(differ or problems[:1])
        raise ConfigError(setting, str(path), f"a checkpoint of the configured model ({why})")


def check_same_training(checkpoint: dict, config: Mapping, path: Path, setting: str) -> None:
    """Resuming in place continues the same training: its learning settings are unchanged."""
    saved = saved_config(checkpoint)
    differ = [
        d
        for section in TRAINING_SECTIONS
        for d in config_differences(saved.get(section), config.get(section), section)
        if d.partition("=")[0] not in RUN_ONLY  # model.compile: how the net runs, not what
    ]
    if differ:
        raise ConfigError(
            setting,
            str(path),
            f"a checkpoint trained with this config; it differs in {'; '.join(differ[:5])}",
        )


def config_differences(saved: object, current: object, prefix: str = "model") -> list[str]:
    """`key=<saved> in the checkpoint, <current> here` for each leaf that differs."""
    if isinstance(saved, Mapping) and isinstance(current, Mapping):
        return [
            d
            for k in sorted(set(saved) | set(current), key=str)
            for d in config_differences(saved.get(k), current.get(k), f"{prefix}.{k}")
        ]
    if saved == current:
        return []
    return [f"{prefix}={saved!r} in the checkpoint, {current!r} here"]


ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format is a zip archive


def _what_is_wrong(path: Path) -> str | None:
    """What `path` is instead of a complete torch checkpoint, or None if it may be one."""
    with open(path, "rb") as file:
        head = file.read(512)
    if not head:
        return "this file is empty"
    if not head.startswith(ZIP_MAGIC):
        return f"this is {_kind_of(head)}, not a checkpoint"
    try:
        with zipfile.ZipFile(path) as archive:
            damaged, names = archive.testzip(), archive.namelist()
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, ValueError):
        return "this file is truncated or damaged: it begins as a checkpoint, its end is missing"
    if damaged is not None:
        return f"corrupt: checksum mismatch in {damaged}"
    if not any(name.endswith("/data.pkl") for name in names):
        return "this is a zip archive of something else, not a checkpoint"
    return None


def _kind_of(head: bytes) -> str:
    if head.startswith(b"\x80"):
        return "a pickle file (torch's legacy format or other Python objects)"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "binary data of another format"
    return "a text file"


def _first_line(err: Exception) -> str:
    """`KeyError: 101` rather than a bare `101`: torch's own messages can be cryptic."""
    lines = str(err).splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}".rstrip(": ")
