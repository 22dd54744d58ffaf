"""The flat hyperparameters of a run: the HParams-tab columns and the rows of results
tables (the metrics beside them are runtime/summary.py's; how the HParams tab shows
them is runtime/hparams_tab.py), so a sweep
compares on the same names everywhere. Choice names (model=mlp_dropout) come
from Hydra's runtime choices; values come from the resolved config.
"""

from __future__ import annotations

from collections.abc import Mapping

# Model keys that wire a net to the run (shapes derived from the data and loss, how it
# runs), not choices about the net: never columns.
WIRING = {"_target_", "in_features", "out_features", "num_classes", "compile"}
# The nets whose columns are fixed (width, depth, ...), so that MLP and perceptron
# runs line up in one table; any other net brings its own keys as columns.
BUILTIN_NETS = {
    "neuralab.nets.MLP",
    "neuralab.nets.mlp.MLP",
    "neuralab.nets.Perceptron",
    "neuralab.nets.perceptron.Perceptron",
}


def flat_hparams(config: Mapping, choices: Mapping) -> dict[str, object]:
    model, opt, data = config["model"], config.get("optimizer", {}), config["data"]
    perceptron_rule = config["module"]["_target_"].endswith("PerceptronModule")
    trainer = config["trainer"]
    run = {
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
    head = {"data": choices.get("data", data["source"]), "model": choices.get("model", "?")}
    if model.get("_target_") in BUILTIN_NETS:
        net = _builtin_net_columns(model, perceptron_rule)
    else:  # a forker's net: its own config keys, renamed where they meet a run column
        net = {
            (k if k not in run and k not in head else f"model.{k}"): v
            for k, v in _own_columns(model).items()
        }
    if not config["module"]["_target_"].startswith("neuralab."):  # a forker's module
        net |= {f"module.{k}": v for k, v in _own_columns(config["module"]).items()}
    return {**head, **net, **run}


def _builtin_net_columns(model: Mapping, perceptron_rule: bool) -> dict[str, object]:
    """The MLP's and the perceptron's columns: the same names for both, so they compare."""
    hidden = list(model.get("hidden_sizes") or [])
    return {
        "width": max(hidden, default=0),
        "depth": len(hidden),
        "hidden_sizes": _joined(hidden),
        "activation": "step" if perceptron_rule else model.get("activation", "?"),
        "dropout": float(model.get("dropout", 0.0)),
        "norm": str(model.get("norm", "none")),
        "residual": bool(model.get("residual", False)),
    }


def _own_columns(model: Mapping) -> dict[str, object]:
    """Scalar keys as they are, lists of scalars joined ("8-16"); nested sections skipped."""
    columns: dict[str, object] = {}
    for key, value in model.items():
        if key in WIRING:
            continue
        if isinstance(value, list) and all(_is_scalar(v) for v in value):
            columns[key] = _joined(value)
        elif _is_scalar(value):
            # TensorBoard's HParams take bool, number or string: None reads "none".
            columns[key] = "none" if value is None else value
    return columns


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def _joined(values: list) -> str:
    return "-".join(map(str, values)) or "none"
