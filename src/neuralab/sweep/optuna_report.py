"""What an Optuna sweep leaves in its sweep dir, rewritten after every batch of trials (so a
stopped search still has both):

    trials.csv         one row per trial: number, state, value, status (the job's), duration_s,
                       job_dir, then one column per searched parameter
    best_params.yaml   the best COMPLETE trial: number, value, parameters, its job dir and
                       the overrides that rerun it alone (`neuralab-train <overrides>`)

A job's number is its trial's number, so results.csv/results.md (sweep/results.py) show
each job's trial state and value next to its status, read from trials.csv.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from neuralab.runtime.run_dirs import RESUME_KEYS
from neuralab.sweep.optuna_space import SearchSpace
from neuralab.sweep.results import TRIALS_CSV, override_key, write_atomic

BEST_PARAMS = "best_params.yaml"
COLUMNS = ["number", "state", "value", "status", "duration_s", "job_dir"]


def write_reports(sweep_dir: Path, study: Any, space: SearchSpace, metric: str | None) -> None:
    """trials.csv and best_params.yaml in the sweep dir, from the study as it is now."""
    trials = [t for t in study.get_trials(deepcopy=False) if t.state.name != "WAITING"]
    write_atomic(sweep_dir / TRIALS_CSV, trials_csv(trials, space))
    summary = best_params(study, trials, space, metric)
    write_atomic(sweep_dir / BEST_PARAMS, yaml.safe_dump(summary, sort_keys=False))


def trials_csv(trials: list, space: SearchSpace) -> str:
    names = [p.name for p in space.params]
    names += sorted({n for t in trials for n in t.params} - set(names))  # from earlier spaces
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS + names, lineterminator="\n")
    writer.writeheader()
    for t in trials:
        row = {
            "number": t.number,
            "state": t.state.name,
            "value": t.value,
            "status": t.user_attrs.get("status"),
            "duration_s": None if t.duration is None else round(t.duration.total_seconds(), 3),
            "job_dir": t.user_attrs.get("job_dir"),
        }
        writer.writerow({**row, **t.params})
    return out.getvalue()


def best_params(study: Any, trials: list, space: SearchSpace, metric: str | None) -> dict:
    summary: dict[str, Any] = {
        "study": study.study_name,
        "direction": study.direction.name.lower(),
        "metric": metric,
        "trials": dict(Counter(t.state.name for t in trials)),
    }
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    if not complete:
        return {**summary, "best_trial": None}
    top = study.best_trial
    rerun = [o for o in space.overrides(top.params) if override_key(o) not in RESUME_KEYS]
    return {
        **summary,
        "best_trial": top.number,
        "best_value": top.value,
        "job_dir": top.user_attrs.get("job_dir"),
        "params": dict(top.params),
        "overrides": rerun,
    }
