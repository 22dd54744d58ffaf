"""neuralab-eval: test a trained model, rebuilt from its run's own saved config.

    neuralab-eval ckpt_path=logs/train/runs/<time>/checkpoints/best.ckpt
    neuralab-eval run_dir=logs/train/runs/<time>

Data, model, init, loss and seed come from the config stored inside the checkpoint,
so a run trained with any experiment or overrides evaluates without repeating
them; trainer and logger come from conf/eval.yaml (and its overrides). Overrides of
anything else (`seed=1`, `+data=moons`) are refused: they would be ignored.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from neuralab.checks import check_devices, check_eval_overrides, check_types
from neuralab.compose import build_datamodule, build_module, build_trainer
from neuralab.errors import ConfigError
from neuralab.runtime.checkpoint_files import find_checkpoint, load_checkpoint, saved_config
from neuralab.runtime.cli import log, write_json
from neuralab.runtime.config import defaults_for, register_resolvers
from neuralab.runtime.devices import machine_devices
from neuralab.runtime.entry import eval_cli, eval_main
from neuralab.runtime.print_config import print_config

register_resolvers()


def rebuild(checkpoint: dict) -> tuple[L.LightningModule, L.LightningDataModule]:
    """The trained module (with its weights) and its data, from the checkpoint alone."""
    config = saved_config(checkpoint)
    saved = OmegaConf.create(config)
    L.seed_everything(saved.seed, workers=True)  # same seed -> same splits as training
    datamodule = build_datamodule(saved)
    module = build_module(saved, datamodule, config)
    try:
        module.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as err:
        raise ConfigError(
            "ckpt_path",
            "<weights>",
            f"weights matching the saved model config ({str(err).splitlines()[0]})",
        ) from None
    return module, datamodule


def evaluate(cfg: DictConfig) -> float | None:
    hydra_cfg = HydraConfig.get()
    output_dir = Path(hydra_cfg.runtime.output_dir)
    overrides = list(hydra_cfg.overrides.task)
    check_eval_overrides(overrides)
    check_types(cfg, defaults_for(cfg, hydra_cfg), overrides)
    check_devices(cfg.trainer, *machine_devices())
    path = find_checkpoint(cfg.get("ckpt_path"), cfg.get("run_dir"))
    module, datamodule = rebuild(load_checkpoint(path))
    print_config(cfg, output_dir, show=cfg.extras.print_config)  # after every check
    trainer = build_trainer(cfg)
    results = trainer.test(module, datamodule=datamodule)
    metrics = {k: float(v) for k, v in (results[0] if results else {}).items()}
    write_json(
        output_dir / "results.json", {"status": "ok", "checkpoint": str(path), "metrics": metrics}
    )
    log.info("eval of %s: %s", path, metrics)
    return metrics.get("test/acc", metrics.get("test/loss"))


# The console script (runtime/entry.py): Hydra composes and the config-only checks run
# before this module's heavy imports; a refused command leaves nothing behind.
main = eval_main


if __name__ == "__main__":  # as the console script
    eval_cli()
