"""neuralab-train: compose the config, build data/model/trainer, fit, test, summarize.

neuralab-train                                   # MLP on digits
neuralab-train model=perceptron data=xor
neuralab-train -m model=mlp,mlp_dropout optimizer=sgd,adam
neuralab-train -m model=mlp,mlp_dropout optimizer=sgd,adam resume=true   # after a stop

How a run ends (statuses, exit codes) is runtime/job.py; which dir and checkpoint a
resumed run continues is runtime/run_dirs.py and runtime/resume.py.
"""

from __future__ import annotations

import math
import signal
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, open_dict

from neuralab.checks import check_config, check_data_dir, check_devices, check_monitors
from neuralab.compose import build_datamodule, build_module, build_trainer
from neuralab.runtime.checkpoint_files import CONFIG_KEY, check_same_training, check_weights_fit
from neuralab.runtime.cli import log, write_json
from neuralab.runtime.config import defaults_for, register_resolvers, to_plain
from neuralab.runtime.devices import machine_devices, place_job
from neuralab.runtime.divergence import Diverged, DivergenceGuard
from neuralab.runtime.entry import train_cli, train_main
from neuralab.runtime.exact_resume import ExactResume, logged_in
from neuralab.runtime.hparams import flat_hparams
from neuralab.runtime.hparams_tab import metric_tags, write_hparams
from neuralab.runtime.lightning_internals import draw_graph_once, scan_entry_points_once
from neuralab.runtime.print_config import print_config
from neuralab.runtime.resume import StartPlan, forget_outcome, last_checkpoint, plan_start
from neuralab.runtime.run_dirs import OK, RESULTS
from neuralab.runtime.run_info import record_session, run_info
from neuralab.runtime.run_record import EPOCHS_TAG, RunRecord
from neuralab.runtime.signals import GracefulStop, RunInterrupted, StopRequest
from neuralab.runtime.summary import objective_name, summary_metrics, summary_sources
from neuralab.sweep.optuna_pruning import Pruned

register_resolvers()
scan_entry_points_once()  # not once per Trainer: a sweep builds one per job


@dataclass
class Run:
    """One job between its checks and its results: what `train` fits and tests (and what
    a packed sweep drives, one Run per member: neuralab/pack/)."""

    cfg: DictConfig
    output_dir: Path
    multirun: bool
    plan: StartPlan
    started: float
    config: dict = field(default_factory=dict)
    datamodule: L.LightningDataModule | None = None
    module: L.LightningModule | None = None
    trainer: L.Trainer | None = None
    stop: StopRequest = field(default_factory=StopRequest)
    info: dict = field(default_factory=dict)

    @property
    def last(self) -> Path:
        return last_checkpoint(self.output_dir)


def train(cfg: DictConfig) -> float | None:
    """One training run; returns the best value of the monitored metric (for sweepers)."""
    run = start(cfg)
    if run.plan.finished is not None:
        return finished_objective(run)
    with run.stop.installed():
        _fit(cfg, run.trainer, run.module, run.datamodule, run.plan, run.stop, run.last)
        fit_metrics = _logged(run.trainer, run.plan)
        test_metrics, best = _test(cfg, run.trainer, run.module, run.datamodule)
    return finish(run, fit_metrics, test_metrics, best)


def start(cfg: DictConfig) -> Run:
    """Checks, data, module and trainer of one run, in this job's dir (HydraConfig's)."""
    hydra_cfg = HydraConfig.get()
    output_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    _check_settings(cfg, multirun=multirun)
    run = Run(cfg, output_dir, multirun, plan_start(cfg, output_dir), time.time())
    if run.plan.finished is not None:
        return run
    L.seed_everything(cfg.seed, workers=True)
    choices = dict(hydra_cfg.runtime.choices)
    run.config = {**to_plain(cfg), "choices": choices}
    run.datamodule = build_datamodule(cfg)
    run.module = build_module(cfg, run.datamodule, run.config)
    _check_start(run.plan, run.module, run.config)
    # After every check: a refusal is one line, not the end of a screenful. A sweep's
    # jobs differ only by their overrides (each has .hydra/config.yaml): one tree, the
    # first job's, instead of a screenful per job (~40 ms each to draw).
    if not (multirun and hydra_cfg.job.num > 0):
        print_config(cfg, output_dir, show=cfg.extras.print_config)
    if run.plan.in_place:
        _continue_tensorboard(cfg, run.plan.step, output_dir)
    guard = DivergenceGuard(cfg.divergence.check_every_n_steps, run.last)
    if multirun:  # one GPU per launcher worker (runtime/devices.py)
        place_job(cfg, Path(hydra_cfg.sweep.dir), hydra_cfg.job.num)
    if multirun and hydra_cfg.job.num > 0:  # the first job's model summary, not one per job
        with open_dict(cfg):
            cfg.trainer.enable_model_summary = False
    run.trainer = build_trainer(
        cfg,
        extra_callbacks=[ExactResume(), guard, GracefulStop(run.stop, run.last)],
        first_callbacks=[RunRecord(_monitors(cfg), cfg.monitor.mode)],
        stamp={CONFIG_KEY: run.config},
    )
    run.info = run_info(cfg.seed, run.trainer, _resumed_from(run.plan))
    forget_outcome(output_dir)  # an earlier session's `interrupted`: this one is running
    record_session(output_dir, run.info)
    return run


def finished_objective(run: Run) -> float | None:
    """A resumed run that had already ended: its objective, nothing to do."""
    log.info(
        "%s already ended (%s): nothing to resume", run.output_dir, run.plan.finished["status"]
    )
    return run.plan.finished.get("metrics", {}).get(objective_name(run.cfg.monitor.metric))


def finish(run: Run, fit_metrics: dict, test_metrics: dict, best: str | None) -> float | None:
    """results.json and the HParams row of a run that trained (and tested)."""
    cfg, hydra_cfg = run.cfg, HydraConfig.get()
    summary = summary_metrics(fit_metrics, test_metrics)
    hparams = flat_hparams(run.config, run.config["choices"])
    tags = metric_tags(summary_sources(fit_metrics, test_metrics))  # the HParams columns
    objective, overrides = objective_name(cfg.monitor.metric), list(hydra_cfg.overrides.task)
    write_hparams(
        run.trainer.loggers, hparams, tags, objective, None if run.multirun else overrides
    )
    results = {"status": OK, "metrics": summary, "hparams": hparams, "best_checkpoint": best}
    results["metric_tags"] = tags
    results["epochs"] = int(fit_metrics.get(EPOCHS_TAG, 0))
    results["overrides"] = overrides
    results["wall_time_s"] = round(time.time() - run.started, 3)
    write_json(run.output_dir / RESULTS, {**results, "run_info": run.info})
    log.info("results: %s", summary)
    return summary.get(objective_name(cfg.monitor.metric))


def _check_settings(cfg: DictConfig, multirun: bool) -> None:
    """Everything that can be refused from the config alone (and this machine's devices),
    before any data loads."""
    hydra_cfg = HydraConfig.get()
    check_config(cfg, defaults_for(cfg, hydra_cfg), list(hydra_cfg.overrides.task), multirun)
    check_devices(cfg.trainer, *machine_devices())
    check_monitors(cfg)
    check_data_dir(cfg.data)


def _monitors(cfg: DictConfig) -> dict[str, str | None]:
    """The settings that name a logged metric, and the metric each names."""
    scheduler = cfg.get("scheduler") or {}
    return {"monitor.metric": cfg.monitor.metric, "scheduler.monitor": scheduler.get("monitor")}


def _check_start(plan: StartPlan, module: L.LightningModule, config: dict) -> None:
    """A checkpoint to continue must fit the configured net (and, in place, the config)."""
    if plan.in_place:  # continuing in place: of course its checkpoints/ is not empty
        warnings.filterwarnings("ignore", message=r"Checkpoint directory .* is not empty")
    if plan.checkpoint is None:
        if plan.in_place:
            log.info("resume: no checkpoint in this run dir yet, starting from scratch")
        return
    setting = "resume" if plan.in_place else "ckpt_path"
    check_weights_fit(module, plan.checkpoint, config, plan.checkpoint_path, setting)
    if plan.in_place:
        check_same_training(plan.checkpoint, config, plan.checkpoint_path, setting)
    log.info("continuing from %s (step %d)", plan.checkpoint_path, plan.step)


def _continue_tensorboard(cfg: DictConfig, step: int, output_dir: Path) -> None:
    """Events the earlier session wrote at or after `step` are hidden (TensorBoard's
    purge_step), so the run dir reads as one run with no duplicated steps."""
    if not any(output_dir.glob("events.out.tfevents.*")):
        return
    for entry in (cfg.get("logger") or {}).values():
        if entry is not None and str(entry.get("_target_", "")).endswith("TensorBoardLogger"):
            with open_dict(entry):
                entry.purge_step = step


def _fit(
    cfg: DictConfig,
    trainer: L.Trainer,
    module: L.LightningModule,
    datamodule: L.LightningDataModule,
    plan: StartPlan,
    stop: StopRequest,
    last: Path,
) -> None:
    """trainer.fit; a signal or a divergence becomes the run's outcome (an exception)."""
    try:
        if cfg.train:
            trainer.fit(
                module, datamodule=datamodule, ckpt_path=plan.checkpoint_path, weights_only=True
            )
    except SIGTERMException:  # Lightning's own SIGTERM stop, at an epoch end (signals.py)
        stopped = RunInterrupted(stop.signum or signal.SIGTERM, trainer.global_step, _if_file(last))
        raise attach_metrics(stopped, trainer, plan) from None
    except (Diverged, RunInterrupted, Pruned) as exc:
        raise attach_metrics(exc, trainer, plan) from None
    except Exception as exc:
        if stop.signum is None:
            raise
        # Fork-based DDP re-raises the ranks' RunInterrupted as a generic error.
        stopped = RunInterrupted(stop.signum, trainer.global_step, _if_file(last))
        raise attach_metrics(stopped, trainer, plan) from exc
    if stop.signum is not None:  # after the last training batch: stop before the test
        _stop_after_fit(trainer, plan, stop.signum, last)


def _stop_after_fit(trainer: L.Trainer, plan: StartPlan, signum: int, last: Path) -> None:
    """Training is complete; ModelCheckpoint saved last.ckpt at the final epoch end.
    Without it, save one here -- unless this process did not train (global_step 0: the
    parent of fork-based DDP ranks). Resuming then only tests."""
    checkpoints = trainer.checkpoint_callback
    if not (checkpoints and checkpoints.save_last) and trainer.global_step > 0:
        trainer.save_checkpoint(last, weights_only=False)
    raise attach_metrics(RunInterrupted(signum, trainer.global_step, _if_file(last)), trainer, plan)


def _test(
    cfg: DictConfig,
    trainer: L.Trainer,
    module: L.LightningModule,
    datamodule: L.LightningDataModule,
) -> tuple[dict, str | None]:
    if not cfg.test:
        return {}, None
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    draw_graph_once(trainer)
    results = trainer.test(module, datamodule=datamodule, ckpt_path=best or None, weights_only=True)
    return (results[0] if results else {}), best or None


def _logged(trainer: L.Trainer, plan: StartPlan) -> dict[str, float]:
    """Every metric's latest value, this session's over those of the sessions before it."""
    now = {k: float(v) for k, v in trainer.callback_metrics.items()}
    return {**logged_in(plan.checkpoint), **now}


def attach_metrics(exc: Exception, trainer: L.Trainer, plan: StartPlan) -> Exception:
    """Give the outcome the metrics logged so far: results.json keeps them (runtime/job.py)."""
    fit_metrics = _logged(trainer, plan)
    summary = summary_metrics(fit_metrics, {})
    exc.results = {  # NaN is not JSON: a diverged metric is null
        "metrics": {k: v if math.isfinite(v) else None for k, v in summary.items()},
        "epochs": int(fit_metrics.get(EPOCHS_TAG, 0)),
    }
    return exc


def _if_file(path: Path) -> Path | None:
    return path if path.is_file() else None


def _resumed_from(plan: StartPlan) -> dict | None:
    if plan.checkpoint is None:
        return None
    return {"checkpoint": str(plan.checkpoint_path), "step": plan.step}


# The console script (runtime/entry.py): Hydra composes and the config-only checks run
# before this module's heavy imports; a refused command leaves nothing behind.
main = train_main


if __name__ == "__main__":  # as the console script
    train_cli()
