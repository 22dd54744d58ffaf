"""Finding conf/, the OmegaConf resolvers configs use, and config -> plain dict."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from neuralab.runtime.run_dirs import resume_dir
from neuralab.sweep.naming import job_dirname, run_dirname, varying_dirname


def config_dir() -> str:
    """conf/ at the repo root (editable install, a fork) or inside the installed package."""
    here = Path(__file__).resolve().parent.parent  # src/neuralab
    for candidate in (here.parent.parent / "conf", here / "conf"):
        if (candidate / "train.yaml").is_file():
            return str(candidate)
    raise FileNotFoundError(f"no conf/train.yaml next to {here}")


# conf/hydra/launcher/joblib.yaml and submitit_local.yaml carry the names of the launcher
# plugins' own configs, which Hydra then uses as their schema (so a typo in hydra.launcher.*
# is refused) and warns, on every run, that this "automatic schema matching" is deprecated.
# The presets list every key themselves: they also work once Hydra drops the matching.
warnings.filterwarnings(
    "ignore", message=r"\s*'hydra/launcher/(joblib|submitit_local)' is validated against"
)


def register_resolvers() -> None:
    """`${mul:a,b}` derives one setting from another (max_lr = 10 x lr);
    `${pid:}` keeps run dirs of processes started together apart;
    `${job_dirname:num,overrides}` names sweep job dirs after their overrides;
    `${resume_dir:run|sweep,parent,name}` is the run dir resume=true continues."""
    if not OmegaConf.has_resolver("mul"):
        OmegaConf.register_new_resolver("mul", lambda a, b: a * b)
    if not OmegaConf.has_resolver("pid"):
        # Cached like Hydra's `${now:}`: Hydra copies the sweep config's cache into every
        # job's config, so jobs run in launcher workers (joblib, submitit) keep the sweep
        # dir of the process that started the sweep instead of naming one after their own.
        OmegaConf.register_new_resolver("pid", os.getpid, use_cache=True)
    if not OmegaConf.has_resolver("job_dirname"):
        OmegaConf.register_new_resolver("job_dirname", job_dirname)
    if not OmegaConf.has_resolver("run_dirname"):
        OmegaConf.register_new_resolver("run_dirname", run_dirname)
    if not OmegaConf.has_resolver("varying_dirname"):
        OmegaConf.register_new_resolver("varying_dirname", varying_dirname)
    if not OmegaConf.has_resolver("resume_dir"):
        OmegaConf.register_new_resolver("resume_dir", resume_dir)


def to_plain(cfg: DictConfig) -> dict:
    """The resolved config as built-in types: safe inside a weights_only checkpoint."""
    return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)


def defaults_for(cfg: DictConfig, hydra_cfg: DictConfig) -> DictConfig | None:
    """The config this command composes without its value overrides (`optimizer.lr=...`),
    keeping its option choices (`optimizer=sgd`): each setting's default, whose type a
    value given on the command line must have (checks.check_types). `hydra_cfg` is the
    run's `hydra` node. None where Hydra cannot compose it again here (a launcher's
    worker process)."""
    from hydra import compose
    from hydra.core.global_hydra import GlobalHydra

    if not GlobalHydra.instance().is_initialized():
        return None
    choices = [str(o) for o in hydra_cfg.overrides.task if not _sets_a_value(cfg, str(o))]
    searchpath = [str(o) for o in hydra_cfg.overrides.hydra if "searchpath" in str(o)]
    key = (str(hydra_cfg.job.config_name), *searchpath, *choices)
    if key not in _COMPOSED:  # a sweep's jobs mostly share their choices: compose once
        try:
            _COMPOSED[key] = compose(key[0], overrides=list(key[1:]))
        except Exception:  # never refuse a run because its defaults could not be recomposed
            _COMPOSED[key] = None
    return _COMPOSED[key]


_COMPOSED: dict[tuple, DictConfig | None] = {}  # read only (checks.check_types)


def _sets_a_value(cfg: DictConfig, override: str) -> bool:
    """`key=value` of a setting (not an option of a group, which composes a whole node)."""
    key = override.partition("=")[0].lstrip("+~")
    value = OmegaConf.select(cfg, key, default=None, throw_on_resolution_failure=False)
    if "=" not in override or "/" in key or isinstance(value, DictConfig):
        return False
    return "." in key or value is not None  # `experiment=x` (a _global_ group) leaves no key
