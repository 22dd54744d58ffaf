"""What each process of a run trained with, one JSON file per rank: a test instrument.

Multi-device training is correct when every rank trains with the same configuration,
ends with the same weights and logs the same (all-reduced) metrics, and only rank 0
writes into the run dir. The run dir cannot show what the other ranks did, so this
callback writes, from every rank, into a dir of its own (`out_dir`, outside the run dir):

    out_dir/fit_rank<global rank>.json    at the end of fit
        rank, world_size, pid, device, precision
        config_sha256    hash of the module's saved hyperparameters (the resolved config)
        seed
        params_sha256    hash of every trained weight at the end of fit
        metrics          trainer.callback_metrics at the end of fit, as floats
        net_output_dtype dtype of the net's output in the first training step (autocast)
        compiled         whether the net runs compiled (model.compile=true)
    out_dir/test_rank<global rank>.json   at the end of the test: rank, pid, metrics
        (fork-based DDP starts new processes for the test)

Add it to any run:
    +callbacks.probe._target_=neuralab.diagnostics.probe.RankProbe +callbacks.probe.out_dir=<dir>
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from neuralab.runtime.checkpoint_files import CONFIG_KEY


class RankProbe(Callback):
    def __init__(self, out_dir: str):
        self.out_dir = Path(out_dir)
        self.output_dtype: str | None = None
        self._hook = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._hook = pl_module.net.register_forward_hook(self._record_dtype)

    def _record_dtype(self, module: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if self.output_dtype is None and module.training:
            self.output_dtype = str(output.dtype).removeprefix("torch.")

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._hook is not None:
            self._hook.remove()
        # The run's config, as stamped into its checkpoints (runtime/checkpoint_io.py).
        config = getattr(trainer.strategy.checkpoint_io, "stamp", {}).get(CONFIG_KEY, {})
        report = {
            "rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "pid": os.getpid(),
            "device": str(pl_module.device),
            "precision": str(trainer.precision),
            "config_sha256": _sha256(json.dumps(config, sort_keys=True)),
            "seed": config.get("seed"),
            "params_sha256": _params_sha256(pl_module),
            "metrics": {k: float(v) for k, v in trainer.callback_metrics.items()},
            "net_output_dtype": self.output_dtype,
            "compiled": getattr(pl_module.net, "_compiled_call_impl", None) is not None,
        }
        self._write("fit", trainer.global_rank, report)

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        report = {"rank": trainer.global_rank, "pid": os.getpid(), "metrics": metrics}
        self._write("test", trainer.global_rank, report)

    def _write(self, stage: str, rank: int, report: dict) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / f"{stage}_rank{rank}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(report, indent=2, sort_keys=True))
        tmp.replace(path)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _params_sha256(module: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        # Raw bytes (any dtype, bfloat16 too): equal hashes mean bit-identical weights.
        digest.update(tensor.detach().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
