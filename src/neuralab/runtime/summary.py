"""The metrics that summarize a run: results.json, HParams and the sweep tables.

Read from what the module logged (Lightning's callback_metrics), whatever logged it:
neuralab's own sums or a module's `self.log`, as `val/acc` or `val_acc`.
"""

from __future__ import annotations

from collections.abc import Mapping

from neuralab.metrics import split_tag

NOT_SUMMARIZED = {"lr", "epochs"}  # schedule and progress, not results


def summary_metrics(
    fit_metrics: Mapping[str, float], test_metrics: Mapping[str, float]
) -> dict[str, float]:
    """best_val_<m>, final_<stage>_<m> and test_<m> from the logged values."""
    out: dict[str, float] = {}
    for key, value in sorted(fit_metrics.items()):
        stage, name = split_tag(key) or ("", key)
        if stage == "val" and name.endswith("_best"):
            out[f"best_val_{name[: -len('_best')]}"] = float(value)
        elif stage in ("train", "val") and name not in NOT_SUMMARIZED:
            out[f"final_{stage}_{name}"] = float(value)
    for key, value in sorted(test_metrics.items()):
        stage, name = split_tag(key) or ("", key)
        if stage == "test":
            out[f"test_{name}"] = float(value)
    return out


def objective_name(monitor: str) -> str:
    """The summary key a sweeper optimizes: the best value of the monitored metric."""
    stage, name = split_tag(monitor) or ("", monitor)
    return f"best_val_{name}"
