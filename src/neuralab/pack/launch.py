"""hydra/launcher=packed: a sweep's compatible jobs trained as one fit per pack.

Every job keeps what the basic launcher gives it: its job dir with `.hydra/`, its log,
TensorBoard run, checkpoints and results.json, the sweep callbacks' per-job calls (the
results tables), in job order. How, per pack (pack/plan.py says which jobs share one):

1. start: each job runs `train.start` as Hydra's `run_job` runs a task (its dir,
   config files and log; the job's checks, data, module and trainer: pack/job_start.py),
   with the job-end callbacks held back: the job has not ended yet.
2. fit: the started jobs train as one pack (pack/fit.py), each job dir locked.
3. end: each job ends as `run_job` ends it (its config current, its log file): its
   results.json is written the way `neuralab-train` writes it (runtime/job.py: ok,
   diverged, failed, interrupted), then the job-end callbacks run.
A job that cannot join (its checks failed, it had already finished, or the pack
refuses it with a reason, logged) runs as the basic launcher runs it.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus, configure_log, run_job
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

from neuralab.pack.job_start import start_job
from neuralab.pack.plan import group, pack_key
from neuralab.runtime import job
from neuralab.runtime.run_lock import holding
from neuralab.sweep.callback import tables_once

log = logging.getLogger("neuralab")


class _HeldBack:
    """Hydra's callbacks with `on_job_end` held back (the job goes on in the pack)."""

    def __init__(self, callbacks: Any):
        self.callbacks = callbacks

    def on_job_start(self, **kwargs: Any) -> None:
        self.callbacks.on_job_start(**kwargs)

    def on_job_end(self, **kwargs: Any) -> None:
        pass


class PackedLaunch:
    def __init__(
        self,
        hydra_context: HydraContext,
        task_function: TaskFunction,
        config: DictConfig,
        max_members: int,
        compose: Callable[[DictConfig, list[str]], DictConfig] | None = None,
    ):
        self.context, self.task_function, self.config = hydra_context, task_function, config
        self.max_members = max_members
        self.compose = compose or hydra_context.config_loader.load_sweep_config
        self.starting = HydraContext(
            hydra_context.config_loader, _HeldBack(hydra_context.callbacks)
        )

    def launch(self, job_overrides: Sequence[Sequence[str]], first: int) -> list[JobReturn]:
        configs = [self._job_config(first + i, o) for i, o in enumerate(job_overrides)]
        keys = [
            pack_key(list(o), _scheduler(c)) for o, c in zip(job_overrides, configs, strict=True)
        ]
        returns: dict[int, JobReturn] = {}
        for pack in group(keys, self.max_members):
            if len(pack) == 1:
                returns[pack[0]] = self._alone(configs[pack[0]])
            else:
                returns.update(self._pack({i: configs[i] for i in pack}))
        return [returns[i] for i in range(len(configs))]

    def _job_config(self, number: int, overrides: Sequence[str]) -> DictConfig:
        config = self.compose(self.config, list(overrides))
        with open_dict(config):
            config.hydra.job.id = number
            config.hydra.job.num = number
        return config

    def _alone(self, config: DictConfig) -> JobReturn:
        """As the basic launcher runs a job."""
        ret = run_job(self.task_function, config, *_DIRS, hydra_context=self.context)
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        return ret

    def _pack(self, configs: dict[int, DictConfig]) -> dict[int, JobReturn]:
        from neuralab.pack.fit import fit_pack, why_not
        from neuralab.train import Run, finished_objective, start

        started: dict[int, Any] = {}
        returns: dict[int, JobReturn] = {}
        for index, config in configs.items():
            ret = start_job(job.run_job(start), config, self.starting.callbacks)
            run = ret.return_value
            if isinstance(run, Run) and run.plan.finished is None:
                started[index] = run
                continue
            if isinstance(run, Run):  # resumed, and it had already ended
                ret.return_value = finished_objective(run)
            # Ended here (refused, failed, done before): its job-end calls were held back.
            self.context.callbacks.on_job_end(config=config, job_return=ret)
            returns[index] = ret
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        reason = why_not(list(started.values())) if len(started) > 1 else "one job"
        if reason is not None:
            if len(started) > 1:
                log.info("jobs %s run one at a time: %s", sorted(started), reason)
            return {**returns, **{i: self._alone(configs[i]) for i in started}}
        # Members with one optimizer setting take adjacent rows of the stacked tensors:
        # each setting's optimizer then steps one contiguous block (pack/stacked_step.py).
        order = sorted(started, key=lambda i: _step_group(configs[i]))
        with contextlib.ExitStack() as locks:
            for run in started.values():
                locks.enter_context(holding(run.output_dir))
            members = dict(zip(order, fit_pack([started[i] for i in order]), strict=True))
        exit_code = None
        with tables_once():  # the members end together: one rebuild of the tables
            try:
                for index in started:  # job order: the sweep's results tables follow it
                    try:
                        returns[index] = self._end(configs[index], members[index])
                    except SystemExit as stop:  # interrupted: every member records it
                        exit_code = stop.code
            finally:  # the sweep's logging again (each member's end set its job's)
                configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        if exit_code is not None:
            raise SystemExit(exit_code)
        return returns

    def _end(self, config: DictConfig, member: Any) -> JobReturn:
        """The job's end as Hydra's run_job ends it (its hydra config current, its log
        file, the job-end callbacks), without run_job's set-up: done when it started
        (HydraConfig holds the job's config then too: pack/job_start.py)."""
        from neuralab.pack.conclude import conclude

        ret = JobReturn(list(config.hydra.overrides.task), member.run.cfg, config, os.getcwd())
        ret.task_name = str(config.hydra.job.name)
        previous = HydraConfig.instance().cfg
        HydraConfig.instance().cfg = config
        configure_log(config.hydra.job_logging, config.hydra.verbose)
        try:
            try:
                ret.return_value, ret.status = conclude(member), JobStatus.COMPLETED
            except Exception as exc:  # as run_job: the sweeper sees a failed job
                ret.return_value, ret.status = exc, JobStatus.FAILED
            self.context.callbacks.on_job_end(config=config, job_return=ret)
        finally:
            HydraConfig.instance().cfg = previous
        return ret


_DIRS = ("hydra.sweep.dir", "hydra.sweep.subdir")


def _step_group(config: DictConfig) -> str:
    """The job's optimizer and schedule settings, as text to sort by."""
    return repr([_container(config.get(key)) for key in ("optimizer", "scheduler")])


def _container(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=False) if isinstance(node, DictConfig) else node


def _scheduler(config: DictConfig) -> Any:
    return _container(config.get("scheduler")) or None
