"""pack/job_start.py starts a member's job as Hydra's run_job would: the same job dir
(the .hydra/ files byte for byte), the same JobReturn, the same config and hydra config
seen by the task, and Hydra's state (HydraConfig, cwd) restored after it."""

from __future__ import annotations

import copy
import logging
import os
import shutil

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobStatus, run_job, setup_globals
from hydra.types import HydraContext, RunMode
from omegaconf import OmegaConf, open_dict

from neuralab.pack.job_start import config_yaml, start_job
from neuralab.runtime.config import config_dir, register_resolvers


class Calls:
    def __init__(self):
        self.calls: list[str] = []

    def on_job_start(self, **kwargs):
        self.calls.append("start")

    def on_job_end(self, **kwargs):
        self.calls.append("end")


@pytest.fixture
def keep_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:], root.level = handlers, level


def sweep_job(sweep_dir, num: int, overrides: list[str]):
    setup_globals()
    register_resolvers()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        config = GlobalHydra.instance().hydra.compose_config(
            "train",
            overrides=[*overrides, f"hydra.sweep.dir={sweep_dir}"],
            run_mode=RunMode.MULTIRUN,
        )
    with open_dict(config):
        config.hydra.job.num = config.hydra.job.id = num
        config.hydra.overrides.task = overrides
    return config


def launched(starter, config):
    """What a job started by `starter` leaves: files, what its task saw, its return."""
    seen = []

    def task(cfg):
        hydra = HydraConfig.get()
        seen.append((hydra.runtime.output_dir, hydra.job.num, os.getcwd(), OmegaConf.to_yaml(cfg)))
        return 0.5

    calls, before, cwd = Calls(), HydraConfig.instance().cfg, os.getcwd()
    ret = starter(task, config, calls)
    assert HydraConfig.instance().cfg is before and os.getcwd() == cwd
    out = seen[0][0]
    hydra_dir = os.path.join(out, ".hydra")
    files = {
        name: open(os.path.join(hydra_dir, name), "rb").read() for name in os.listdir(hydra_dir)
    }
    shutil.rmtree(out)
    fields = (
        ret.overrides,
        OmegaConf.to_yaml(ret.cfg),
        OmegaConf.to_yaml(ret.hydra_cfg.hydra),
        ret.working_dir,
        ret.task_name,
        ret.status,
        ret.return_value,
    )
    return files, seen, fields, calls.calls


def hydras_run_job(task, config, calls):
    context = HydraContext(config_loader=None, callbacks=calls)
    return run_job(task, config, "hydra.sweep.dir", "hydra.sweep.subdir", hydra_context=context)


@pytest.mark.parametrize(
    "overrides",
    [["seed=3", "optimizer.lr=0.01"], ["model=mlp_dropout", "init=xavier_normal", "seed=7"]],
)
def test_a_started_job_is_hydras_run_job_but_for_its_end(tmp_path, keep_logging, overrides):
    config = sweep_job(tmp_path / "sweep", 5, overrides)
    hydra_files, hydra_seen, hydra_fields, hydra_calls = launched(
        hydras_run_job, copy.deepcopy(config)
    )
    files, seen, fields, calls = launched(start_job, config)
    assert sorted(files) == ["config.yaml", "hydra.yaml", "overrides.yaml"]
    assert files == hydra_files
    assert seen == hydra_seen and seen[0][1] == 5
    assert fields == hydra_fields and fields[5] == JobStatus.COMPLETED
    assert hydra_calls == ["start", "end"] and calls == ["start"]  # its end: in the pack


@pytest.mark.parametrize(
    "value",
    ["plain", "1e-3", "yes", "", "a " * 60, "x" * 200, "line\nbreak", "${a.b}", "héllo ✓"],
)
def test_config_yaml_is_omegaconfs_to_yaml(value):
    node = OmegaConf.create({"k": value, "list": [value, {"n": value}], "é" * 100: value})
    assert config_yaml(node) == OmegaConf.to_yaml(node)
    ascii_only = OmegaConf.create({"k": value, "n": [1, 2.5, None, True]})
    assert config_yaml(ascii_only) == OmegaConf.to_yaml(ascii_only)
