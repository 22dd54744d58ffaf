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
    logged = {**fit_metrics, **test_metrics}
    return {
        name: float(logged[tag]) for name, tag in summary_sources(fit_metrics, test_metrics).items()
    }


def summary_sources(
    fit_metrics: Mapping[str, float], test_metrics: Mapping[str, float]
) -> dict[str, str]:
    """{summary name: the logged metric whose last value it is}: best_val_acc <- val/acc_best.
    The HParams tab reads the values from those curves (runtime/hparams_tab.py)."""
    out: dict[str, str] = {}
    for key in sorted(fit_metrics):
        stage, name = split_tag(key) or ("", key)
        if stage == "val" and name.endswith("_best"):
            out[f"best_val_{name[: -len('_best')]}"] = key
        elif stage in ("train", "val") and name not in NOT_SUMMARIZED:
            out[f"final_{stage}_{name}"] = key
    for key in sorted(test_metrics):
        stage, name = split_tag(key) or ("", key)
        if stage == "test":
            out[f"test_{name}"] = key
    return out


def objective_name(monitor: str) -> str:
    """The summary key a sweeper optimizes: the best value of the monitored metric."""
    stage, name = split_tag(monitor) or ("", monitor)
    return f"best_val_{name}"
