"""The flat hyperparameters of a run and the metrics that summarize it.

These are the HParams-tab columns and the rows of results tables, so a sweep
compares on the same names everywhere. Choice names (model=mlp_dropout) come
from Hydra's runtime choices; values come from the resolved config.
"""

from __future__ import annotations

from collections.abc import Mapping

from lightning.pytorch.loggers import TensorBoardLogger


def flat_hparams(config: Mapping, choices: Mapping) -> dict[str, object]:
    model, opt, data = config["model"], config.get("optimizer", {}), config["data"]
    hidden = list(model.get("hidden_sizes") or [])
    perceptron_rule = config["module"]["_target_"].endswith("PerceptronModule")
    trainer = config["trainer"]
    return {
        "data": choices.get("data", data["source"]),
        "model": choices.get("model", "?"),
        "width": max(hidden, default=0),
        "depth": len(hidden),
        "hidden_sizes": "-".join(map(str, hidden)) or "none",
        "activation": "step" if perceptron_rule else model.get("activation", "?"),
        "dropout": float(model.get("dropout", 0.0)),
        "norm": str(model.get("norm", "none")),
        "residual": bool(model.get("residual", False)),
        "init": config["init"]["scheme"],
        "optimizer": "perceptron_rule" if perceptron_rule else choices.get("optimizer", "?"),
        "lr": float(config["module"]["lr"] if perceptron_rule else opt.get("lr", 0.0)),
        "weight_decay": float(opt.get("weight_decay", 0.0)),
        "momentum": float(opt.get("momentum", 0.0)),
        "scheduler": choices.get("scheduler", "none"),
        "loss": config["loss"]["name"],
        "l1_penalty": float(config["module"].get("l1_penalty", 0.0)),
        "l2_penalty": float(config["module"].get("l2_penalty", 0.0)),
        "batch_size": int(data["batch_size"]),
        "max_epochs": int(trainer.get("max_epochs") or 0),
        "grad_clip": float(trainer.get("gradient_clip_val") or 0.0),
        "grad_clip_algorithm": str(trainer.get("gradient_clip_algorithm", "norm")),
        "seed": int(config["seed"]),
    }


def summary_metrics(
    fit_metrics: Mapping[str, float], test_metrics: Mapping[str, float]
) -> dict[str, float]:
    """best_val_<m>, final_val_<m> and test_<m> from Lightning's logged values."""
    out: dict[str, float] = {}
    for key, value in sorted(fit_metrics.items()):
        stage, _, name = key.partition("/")
        if stage == "val" and name.endswith("_best"):
            out[f"best_val_{name[: -len('_best')]}"] = float(value)
        elif stage in ("train", "val") and name not in ("lr", "epochs"):
            out[f"final_{stage}_{name}"] = float(value)
    for key, value in sorted(test_metrics.items()):
        stage, _, name = key.partition("/")
        if stage == "test":
            out[f"test_{name}"] = float(value)
    return out


def objective_name(monitor: str) -> str:
    """The summary key a sweeper optimizes: the best value of the monitored metric."""
    return f"best_val_{monitor.partition('/')[2]}"


def write_hparams(loggers: list, hparams: Mapping, metrics: Mapping[str, float]) -> None:
    """One HParams row per run: the flat hparams with real metric values."""
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(
                dict(hparams), metrics={f"hp/{k}": v for k, v in metrics.items()}
            )
            logger.experiment.flush()
