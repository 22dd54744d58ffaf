"""Finding conf/, the OmegaConf resolvers configs use, and config -> plain dict."""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from neuralab.sweep.naming import job_dirname
from neuralab.utils.run_dirs import resume_dir


def config_dir() -> str:
    """conf/ at the repo root (editable install, a fork) or inside the installed package."""
    here = Path(__file__).resolve().parent.parent  # src/neuralab
    for candidate in (here.parent.parent / "conf", here / "conf"):
        if (candidate / "train.yaml").is_file():
            return str(candidate)
    raise FileNotFoundError(f"no conf/train.yaml next to {here}")


def register_resolvers() -> None:
    """`${mul:a,b}` derives one setting from another (max_lr = 10 x lr);
    `${pid:}` keeps run dirs of processes started together apart;
    `${job_dirname:num,overrides}` names sweep job dirs after their overrides;
    `${resume_dir:run|sweep,parent,name}` is the run dir resume=true continues."""
    if not OmegaConf.has_resolver("mul"):
        OmegaConf.register_new_resolver("mul", lambda a, b: a * b)
    if not OmegaConf.has_resolver("pid"):
        OmegaConf.register_new_resolver("pid", os.getpid)
    if not OmegaConf.has_resolver("job_dirname"):
        OmegaConf.register_new_resolver("job_dirname", job_dirname)
    if not OmegaConf.has_resolver("resume_dir"):
        OmegaConf.register_new_resolver("resume_dir", resume_dir)


def to_plain(cfg: DictConfig) -> dict:
    """The resolved config as built-in types: safe inside a weights_only checkpoint."""
    return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
