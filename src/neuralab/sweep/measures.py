"""Derived measures of one job dir, for tables that results.json alone cannot fill.

`MEASURES` maps a name to a function of a job dir (the dir holding `.hydra/`,
`results.json`, `timing.json`, `checkpoints/` and the TensorBoard event files)
that returns a number, or None when the job cannot give one (no event file, no
checkpoint, a target never reached). Experiment configs name them in
`report.table` (conf/experiment/*.yaml); scripts/lab/experiments.py computes them.
Every function only reads files, so it works on a finished sweep, moved or not.
"""

from __future__ import annotations

import functools
import json
import math
import statistics
from collections.abc import Callable
from pathlib import Path

import yaml

from neuralab.sweep.plots import load_points

# epochs_to_target when the job's config has no `report.target`.
DEFAULT_TARGET = 0.9
FIRST_LAYER_GRAD = "grad_norm/layer00_"  # + the first Linear's name (diagnostics/norms.py)
EPOCH_END_TAG = "train/loss"  # logged once per epoch, at the epoch's last step
MAX_CLASSES = 10  # test_recall_0 .. test_recall_9

Measure = Callable[[Path], float | None]


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _metric(job_dir: Path, name: str) -> float | None:
    value = _json(Path(job_dir) / "results.json").get("metrics", {}).get(name)
    return float(value) if isinstance(value, (int, float)) else None


def _config(job_dir: Path) -> dict:
    try:
        config = yaml.safe_load((Path(job_dir) / ".hydra" / "config.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return config if isinstance(config, dict) else {}


@functools.lru_cache(maxsize=8)
def _scalars_cached(job_dir: str, _stamp: tuple) -> dict[str, list[tuple[int, float]]]:
    # Several measures of one table read the same job: read its event files once
    # (the stamp changes when they do).
    return load_points(Path(job_dir))


def scalars(job_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Scalar tag -> (step, value) pairs from every event file of the job dir."""
    files = sorted(Path(job_dir).glob("events.out.tfevents.*"))
    stamp = tuple((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    return _scalars_cached(str(job_dir), stamp) if files else {}


def epochs_to_target(job_dir: Path) -> float | None:
    """The first epoch (1-based) whose val/acc reaches `report.target` (default 0.9)."""
    target = _config(job_dir).get("report", {}).get("target", DEFAULT_TARGET)
    values = [v for _, v in scalars(job_dir).get("val/acc", [])]
    return next((float(i + 1) for i, v in enumerate(values) if v >= target), None)


def first_layer_grad_norm(job_dir: Path) -> float | None:
    """Mean gradient norm of the first Linear layer over the first epoch's logged steps.

    The first epoch shows the gradients the init gives, before training has reshaped
    the weights. Needs callbacks.diagnostics.norms (logged every `every_n_steps`).
    """
    tags = scalars(job_dir)
    layer = next((t for t in sorted(tags) if t.startswith(FIRST_LAYER_GRAD)), None)
    if layer is None:
        return None
    epoch_end = tags.get(EPOCH_END_TAG)
    last_step = epoch_end[0][0] if epoch_end else math.inf  # diverged in epoch 0: all
    values = [v for step, v in tags[layer] if step <= last_step]
    mean = statistics.fmean(values) if values else math.nan
    return mean if not math.isnan(mean) else None


def diverged(job_dir: Path) -> float | None:
    """1 if the run ended with a NaN/Inf training loss (status diverged), else 0.

    Averaged over seeds it is the fraction of seeds that diverged, so it must be
    averaged over every finished job, not only those with status ok.
    """
    status = _json(Path(job_dir) / "results.json").get("status")
    return None if status is None else float(status == "diverged")


def train_val_gap(job_dir: Path) -> float | None:
    """final_train_acc - final_val_acc: how much the net fits its train split better."""
    train, val = _metric(job_dir, "final_train_acc"), _metric(job_dir, "final_val_acc")
    return None if train is None or val is None else train - val


def sec_per_epoch(job_dir: Path) -> float | None:
    """Wall seconds of fit (train + validation, from timing.json) per epoch run."""
    train_s = _json(Path(job_dir) / "timing.json").get("train_s")
    epochs = _json(Path(job_dir) / "results.json").get("epochs")
    if not isinstance(train_s, (int, float)) or not isinstance(epochs, int) or epochs < 1:
        return None
    return train_s / epochs


def _state_dict(job_dir: Path, name: str) -> dict | None:
    import torch

    path = Path(job_dir) / "checkpoints" / name
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=True).get("state_dict")


def hidden_unit_spread(job_dir: Path) -> float | None:
    """How different the first hidden layer's units are after training (last.ckpt).

    The std across units (rows of the first weight matrix) averaged over inputs:
    0 when every hidden unit has the same weights, as all-zero init leaves them.
    """
    state = _state_dict(job_dir, "last.ckpt")
    weights = [w for k, w in (state or {}).items() if k.startswith("net.") and w.ndim == 2]
    if not weights or weights[0].shape[0] < 2:
        return None
    return float(weights[0].float().std(dim=0).mean())


@functools.lru_cache(maxsize=8)
def _test_recalls_cached(job_dir: str, _stamp: int) -> tuple[float, ...]:
    """Recall of every class on the test split, from best.ckpt (what test_acc used)."""
    import torch

    from neuralab.eval import rebuild
    from neuralab.nets.perceptron import scores_to_classes
    from neuralab.runtime.checkpoint_files import load_checkpoint

    module, datamodule = rebuild(load_checkpoint(Path(job_dir) / "checkpoints" / "best.ckpt"))
    datamodule.setup("test")
    x, y = datamodule.splits["test"]
    with torch.no_grad():
        predicted = scores_to_classes(module.net.eval()(x))
    num_classes = int(y.max()) + 1
    return tuple(
        float((predicted[y == c] == c).float().mean()) if (y == c).any() else math.nan
        for c in range(num_classes)
    )


def test_recalls(job_dir: Path) -> tuple[float, ...] | None:
    """Per-class test recall (nan for a class absent from the test split)."""
    path = Path(job_dir) / "checkpoints" / "best.ckpt"
    if not path.is_file() or _config(job_dir).get("data", {}).get("task") != "classification":
        return None
    return _test_recalls_cached(str(job_dir), path.stat().st_mtime_ns)


def test_recall_min(job_dir: Path) -> float | None:
    """The lowest per-class recall on the test split: how badly the worst class fares."""
    recalls = [r for r in test_recalls(job_dir) or () if not math.isnan(r)]
    return min(recalls) if recalls else None


def test_balanced_acc(job_dir: Path) -> float | None:
    """Mean per-class recall on the test split (accuracy with every class weighted equally)."""
    recalls = [r for r in test_recalls(job_dir) or () if not math.isnan(r)]
    return statistics.fmean(recalls) if recalls else None


def _test_recall_of(label: int, job_dir: Path) -> float | None:
    recalls = test_recalls(job_dir) or ()
    value = recalls[label] if label < len(recalls) else math.nan
    return None if math.isnan(value) else value


MEASURES: dict[str, Measure] = {
    "epochs_to_target": epochs_to_target,
    "first_layer_grad_norm": first_layer_grad_norm,
    "diverged": diverged,
    "train_val_gap": train_val_gap,
    "sec_per_epoch": sec_per_epoch,
    "hidden_unit_spread": hidden_unit_spread,
    "test_recall_min": test_recall_min,
    "test_balanced_acc": test_balanced_acc,
    **{f"test_recall_{c}": functools.partial(_test_recall_of, c) for c in range(MAX_CLASSES)},
}
