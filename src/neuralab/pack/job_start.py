"""A pack member's job start: Hydra's `run_job` up to the task's return, at a third of
its cost, leaving the same job dir.

A packed sweep starts every member before the pack trains, so run_job's fixed costs
are paid once per member (64 in a seed x lr sweep), and most of them are copies of the
job's config. Measured per job (digits MLP, one core): two `set_config` masked copies
of the hydra node (10 ms each), a deep copy of the whole config (19 ms) and one of the
hydra node (10 ms), and the `.hydra/` YAML files through PyYAML's pure-Python emitter
(config.yaml 14 ms, hydra.yaml 16 ms). Here instead:
- no copy of the hydra node: HydraConfig holds the job's composed config itself (its
  `hydra` node is what HydraConfig.get() returns, and `set_config`'s copy keeps that
  config as the node's parent anyway), and so does the JobReturn's `hydra_cfg` (run_job
  deep-copies it so that later jobs cannot change it: every job has its own composed
  config, and nothing changes it);
- the task's config is a pickle round trip (7 ms), which OmegaConf supports;
- the YAML text through libyaml's emitter (3 ms for hydra.yaml) when it is installed and
  the text is ASCII (the two emitters differ only in how they measure non-ASCII keys);
  otherwise OmegaConf's own.
Everything else is run_job's, in its order: the output dir, the job's log file, the
`.hydra/` files, the job's environment and the job-start callbacks around the task.
tests/pack/test_job_start.py compares the job dirs with run_job's byte for byte.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import (
    JobReturn,
    JobRuntime,
    JobStatus,
    _flush_loggers,
    configure_log,
    env_override,
)
from omegaconf import DictConfig, OmegaConf, open_dict, read_write
from omegaconf._utils import get_omega_conf_dumper


def start_job(task: Callable[[DictConfig], Any], config: DictConfig, callbacks: Any) -> JobReturn:
    """Run `task` on `config` as Hydra's run_job(task, config, "hydra.sweep.dir",
    "hydra.sweep.subdir") runs it, but for the job-end callbacks: the job goes on (in
    the pack). `JobReturn.hydra_cfg` is the job's config, whose `hydra` node is the
    job's hydra config: HydraConfig's at the job's end too."""
    instance, previous, cwd = HydraConfig.instance(), HydraConfig.instance().cfg, os.getcwd()
    OmegaConf.set_readonly(config.hydra, True)  # as set_config leaves it
    instance.cfg = config  # the job's own, for ${hydra:...} in its dir names
    try:
        return _run(task, config, callbacks)
    finally:
        instance.cfg = previous
        os.chdir(cwd)


def _run(task: Callable, config: DictConfig, callbacks: Any) -> JobReturn:
    hydra = config.hydra
    output_dir = os.path.abspath(os.path.join(str(hydra.sweep.dir), str(hydra.sweep.subdir)))
    with read_write(hydra.runtime), open_dict(hydra.runtime):
        hydra.runtime.output_dir = output_dir
    ret = JobReturn(hydra_cfg=config, cfg=_without_hydra(config))
    ret.overrides = OmegaConf.to_container(hydra.overrides.task)
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    if hydra.job.chdir:  # None: False, as in run_job at version_base >= 1.2
        os.chdir(output_dir)
    ret.working_dir = os.getcwd()
    configure_log(hydra.job_logging, hydra.verbose)
    if hydra.output_subdir is not None:
        files = Path(output_dir) / str(hydra.output_subdir)
        files.mkdir(parents=True, exist_ok=True)
        for text, name in (
            (config_yaml(ret.cfg), "config.yaml"),
            (yaml_text({"hydra": _container(hydra)}), "hydra.yaml"),
            (config_yaml(hydra.overrides.task), "overrides.yaml"),
        ):
            (files / name).write_text(text, encoding="utf-8")
    with env_override(hydra.job.env_set):
        callbacks.on_job_start(config=config, task_function=task)
        try:
            ret.return_value, ret.status = task(ret.cfg), JobStatus.COMPLETED
        except Exception as exc:
            ret.return_value, ret.status = exc, JobStatus.FAILED
    ret.task_name = JobRuntime.instance().get("name")
    _flush_loggers()
    return ret


def _without_hydra(config: DictConfig) -> DictConfig:
    task_cfg = pickle.loads(pickle.dumps(config))
    with read_write(task_cfg), open_dict(task_cfg):
        del task_cfg["hydra"]
    return task_cfg


class _LibyamlDumper(yaml.CDumper if hasattr(yaml, "CDumper") else yaml.Dumper):  # type: ignore[misc]
    """libyaml's emitter with OmegaConf's representers (its quoting of strings)."""


_LibyamlDumper.yaml_representers = {**get_omega_conf_dumper().yaml_representers}


def config_yaml(node: Any) -> str:
    """OmegaConf.to_yaml(node), the same text (see the module docstring)."""
    return yaml_text(_container(node))


def _container(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=False, enum_to_str=True)


def yaml_text(container: Any) -> str:
    """The YAML text OmegaConf writes for the node `container` was made from."""
    options = {"default_flow_style": False, "allow_unicode": True, "sort_keys": False}
    if getattr(yaml, "__with_libyaml__", False):
        text = yaml.dump(container, Dumper=_LibyamlDumper, **options)
        if text.isascii():
            return text
    return yaml.dump(container, Dumper=get_omega_conf_dumper(), **options)
