"""neuralab-eval: test a trained model, rebuilt from its run's own saved config.

    neuralab-eval ckpt_path=logs/train/runs/<time>/checkpoints/best.ckpt
    neuralab-eval run_dir=logs/train/runs/<time>

Data, model, init and loss come from the config stored inside the checkpoint,
so a run trained with any experiment or overrides evaluates without repeating
them; trainer and logger come from conf/eval.yaml (and its overrides).
"""

from __future__ import annotations

from pathlib import Path

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from neuralab.compose import build_datamodule, build_module, build_trainer
from neuralab.errors import ConfigError
from neuralab.runtime.checkpoint_files import find_checkpoint, load_checkpoint, saved_config
from neuralab.runtime.cli import log, report_config_errors, write_json
from neuralab.runtime.config import config_dir, register_resolvers
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
    output_dir = Path(HydraConfig.get().runtime.output_dir)
    print_config(cfg, output_dir, show=cfg.extras.print_config)
    path = find_checkpoint(cfg.get("ckpt_path"), cfg.get("run_dir"))
    module, datamodule = rebuild(load_checkpoint(path))
    trainer = build_trainer(cfg)
    results = trainer.test(module, datamodule=datamodule)
    metrics = {k: float(v) for k, v in (results[0] if results else {}).items()}
    write_json(
        output_dir / "results.json", {"status": "ok", "checkpoint": str(path), "metrics": metrics}
    )
    log.info("eval of %s: %s", path, metrics)
    return metrics.get("test/acc", metrics.get("test/loss"))


@hydra.main(config_path=config_dir(), config_name="eval", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    return report_config_errors(evaluate)(cfg)


if __name__ == "__main__":
    main()
