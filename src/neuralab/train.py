"""neuralab-train: compose the config, build data/model/trainer, fit, test, summarize.

neuralab-train                                   # MLP on digits
neuralab-train model=perceptron data=xor
neuralab-train -m model=mlp,mlp_dropout optimizer=sgd,adam
"""

from __future__ import annotations

import time
from pathlib import Path

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from neuralab.checks import check_trainer
from neuralab.compose import build_datamodule, build_module, build_trainer
from neuralab.modules.base import EPOCHS_TAG
from neuralab.utils.cli import log, report_config_errors, write_json
from neuralab.utils.config import config_dir, register_resolvers, to_plain
from neuralab.utils.hparams import flat_hparams, objective_name, summary_metrics, write_hparams

register_resolvers()


def train(cfg: DictConfig) -> float | None:
    """One training run; returns the best value of the monitored metric (for sweepers)."""
    started = time.time()
    hydra_cfg = HydraConfig.get()
    check_trainer(cfg, multirun=hydra_cfg.mode == RunMode.MULTIRUN)
    L.seed_everything(cfg.seed, workers=True)
    choices = dict(hydra_cfg.runtime.choices)
    config = {**to_plain(cfg), "choices": choices}

    datamodule = build_datamodule(cfg)
    module = build_module(cfg, datamodule, config)
    trainer = build_trainer(cfg)

    if cfg.train:
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    fit_metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    test_metrics = {}
    if cfg.test:
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        results = trainer.test(module, datamodule=datamodule, ckpt_path=best or None)
        test_metrics = results[0] if results else {}

    summary = summary_metrics(fit_metrics, test_metrics)
    hparams = flat_hparams(config, choices)
    write_hparams(trainer.loggers, hparams, summary)
    output_dir = Path(hydra_cfg.runtime.output_dir)
    write_json(
        output_dir / "results.json",
        {
            "status": "ok",
            "metrics": summary,
            "hparams": hparams,
            "overrides": list(hydra_cfg.overrides.task),
            "epochs": int(fit_metrics.get(EPOCHS_TAG, 0)),
            "wall_time_s": round(time.time() - started, 3),
            "best_checkpoint": best if cfg.test else None,
        },
    )
    log.info("results: %s", summary)
    return summary.get(objective_name(cfg.monitor.metric))


@hydra.main(config_path=config_dir(), config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    return report_config_errors(train)(cfg)


if __name__ == "__main__":
    main()
