"""What Lightning does not restore by itself, so a resumed run continues bit for bit.

Lightning's checkpoint holds weights, optimizer, schedulers, loop counters and callback
states, but not the global random generators (dropout draws from torch's), and it only
restores the train loader's position (`InMemoryLoader.state_dict`) when the loader is
built after the restore. A module whose `configure_optimizers` asks for
`trainer.estimated_stepping_batches` (every per-step schedule) builds it earlier, and
Lightning 2.6 then silently drops the position (Lightning issue #20550).

This callback saves both in its own checkpoint entry and applies them in
`on_train_start`: after every restore, before the first resumed batch is drawn (the
loader's generator has not started yet) and before the first random draw.
RNG states are stored as tensors and plain ints, so the file loads with weights_only.

It also keeps the metrics logged so far (`trainer.callback_metrics`, as floats): a run
resumed from the checkpoint of a finished fit logs nothing new, yet its summary needs
the last epoch's values (`logged_in`; train.py merges them under the new ones).
"""

from __future__ import annotations

import random
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback


class ExactResume(Callback):
    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None
        self._trainer: L.Trainer | None = None  # state_dict() gets no trainer argument

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._trainer = trainer

    def state_dict(self) -> dict[str, Any]:
        """Called by Lightning while it writes a checkpoint: the states at that moment."""
        logged = self._trainer.callback_metrics if self._trainer is not None else {}
        return {
            "rng": collect_rng_states(),
            "train_loader": self._loader_state(),
            "callback_metrics": {k: float(v) for k, v in logged.items()},
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending = state_dict  # applied at on_train_start, once the trainer is set up

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._pending is None:
            return
        pending, self._pending = self._pending, None
        loader, position = trainer.train_dataloader, pending.get("train_loader")
        if position is not None and hasattr(loader, "load_state_dict"):
            loader.load_state_dict(position)
        set_rng_states(pending["rng"])

    def _loader_state(self) -> dict | None:
        loader = self._trainer.train_dataloader if self._trainer is not None else None
        return loader.state_dict() if hasattr(loader, "state_dict") else None


def logged_in(checkpoint: dict | None) -> dict[str, float]:
    """The metrics logged before `checkpoint` was saved (read from the file itself, so
    this works in the process that launched fork-based DDP ranks too)."""
    states = (checkpoint or {}).get("callbacks") or {}
    return dict((states.get(ExactResume.__qualname__) or {}).get("callback_metrics", {}))


def collect_rng_states() -> dict[str, Any]:
    """torch (CPU and CUDA), numpy and Python generators, as tensors and plain values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        # One tensor, not 625 ints: torch.save handles each object of a checkpoint in
        # Python (~2 us each), and these were a third of a small net's checkpoint. Made
        # through numpy: torch.tensor(625 ints) takes 220 us, this 27.
        "python": {
            "version": version,
            "state": torch.from_numpy(np.array(internal, dtype=np.int64)),
            "gauss": gauss,
        },
    }


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    n = states["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    p = states["python"]
    state = p["state"]  # a list in checkpoints of neuralab before 2026-12-07
    state = state.tolist() if isinstance(state, torch.Tensor) else state
    random.setstate((p["version"], tuple(state), p["gauss"]))
