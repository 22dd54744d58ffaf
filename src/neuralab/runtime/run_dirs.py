"""Run dirs: the status a run left in them, and which one `resume=true` continues.

Choosing the dir happens while Hydra resolves `hydra.run.dir` / `hydra.sweep.dir`
(conf/hydra/default.yaml: `${resume_dir:run|sweep,<parent>,<fresh name>}`), because the
run's output dir -- checkpoints, TensorBoard events, log -- must be the old one:

- without `resume=true` (or `ckpt_path=last`): `<parent>/<fresh name>`, as always;
- with it, a single run: the most recent dir under `logs/<task>/runs/` whose
  `.hydra/overrides.yaml` equals this command's overrides, ignoring `resume` and
  `ckpt_path` (and their order);
- with it, a multirun: the most recent sweep under `logs/<task>/multiruns/` whose
  `multirun.yaml` holds the same overrides; each job then lands in its old job dir (the
  same number and override names: `resume`/`ckpt_path` are left out of dir names);
- no such dir: a fresh one, so adding resume=true to a command is always safe.

What happens inside the chosen dir is runtime/resume.py's `plan_start`.

The choice is made once and remembered, so the jobs of a multirun (whose configs carry
their own overrides) reuse the sweep's choice: in this process, and in the config's
resolver cache, which Hydra copies from the sweep's config into every job's config --
also in launcher workers (joblib, submitit), where this process's memo is empty.
This module stays light (no torch): runtime/config.py registers the resolver.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf

OK, FAILED, DIVERGED, INTERRUPTED = "ok", "failed", "diverged", "interrupted"
PRUNED = "pruned"  # stopped early by an Optuna sweep's pruner (neuralab/sweep/optuna_pruning.py)
FINISHED = (OK, DIVERGED, PRUNED)  # a resumed command leaves these runs as they are
RESULTS = "results.json"
RESUME_KEYS = frozenset({"resume", "ckpt_path"})
_chosen: dict[tuple[str, str, str], str] = {}


def read_status(run_dir: Path) -> dict | None:
    """results.json of a run dir, or None if there is none (running, or killed hard)."""
    try:
        results = json.loads((Path(run_dir) / RESULTS).read_text())
    except (OSError, ValueError):
        return None
    return results if isinstance(results, dict) else None


def resume_dir(kind: str, parent: str, fresh: str, *, _root_: DictConfig) -> str:
    """The OmegaConf resolver: `parent/fresh`, or the run dir `resume=true` continues."""
    key = (str(kind), str(parent), str(fresh))
    # OmegaConf's own cache cannot be used (a resolver given _root_ may not be cached), so
    # the choice is kept in it by hand: Hydra's load_sweep_config copies the whole cache.
    cached = OmegaConf.get_cache(_root_)["resume_dir"]
    cache_key = ",".join(key)
    if key not in _chosen and cache_key in cached:
        _chosen[key] = cached[cache_key]
    if key not in _chosen:
        found = None
        if wants_resume(_root_):
            found = latest_matching(str(kind), Path(str(parent)), _overrides(_root_))
        _chosen[key] = str(found) if found is not None else f"{parent}/{fresh}"
    cached[cache_key] = _chosen[key]
    return _chosen[key]


def wants_resume(cfg: DictConfig) -> bool:
    """resume=true, or ckpt_path=last in a config that can resume (neuralab-eval cannot)."""
    if "resume" not in cfg:
        return False
    return cfg.get("resume") is True or cfg.get("ckpt_path") == "last"


def latest_matching(kind: str, parent: Path, overrides: list[str]) -> Path | None:
    """The newest dir under `parent` (names sort by start time) made with `overrides`."""
    if not parent.is_dir():
        return None
    wanted = normalized(overrides)
    for candidate in sorted(parent.iterdir(), key=lambda p: p.name, reverse=True):
        saved = _saved_overrides(kind, candidate)
        if saved is not None and normalized(saved) == wanted:
            return candidate
    return None


def normalized(overrides: list[str]) -> list[str]:
    """The overrides that decide what a run is: without resume/ckpt_path, order-free."""
    keep = [o for o in map(str, overrides) if _key(o) not in RESUME_KEYS]
    return sorted(keep)


def _key(override: str) -> str:
    return override.partition("=")[0].lstrip("+~")


def _overrides(root: DictConfig) -> list[str]:
    node = OmegaConf.select(root, "hydra.overrides.task", default=None)
    return [str(o) for o in OmegaConf.to_container(node)] if node is not None else []


def _saved_overrides(kind: str, run_dir: Path) -> list[str] | None:
    path = run_dir / (".hydra/overrides.yaml" if kind == "run" else "multirun.yaml")
    try:
        saved = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
    if kind != "run":  # multirun.yaml is the whole sweep config
        hydra = (saved or {}).get("hydra") if isinstance(saved, dict) else None
        saved = ((hydra or {}).get("overrides") or {}).get("task")
    return saved if isinstance(saved, list) else None
