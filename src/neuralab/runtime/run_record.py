"""What neuralab records about every run, whatever its module logs.

- `train/epochs`: epochs completed, at each train epoch's end (results.json reads it:
  with fork-based DDP only logged values reach the parent process).
- `val/<m>_best`: the running best of every validation metric the module logged
  (its own `self.log` names too): the sweep objective and the HParams "best" columns.
  The max for metrics where higher is better (`metrics.higher_is_better`, or the
  monitored metric under monitor.mode=max), else the min; NaN epochs never win.
  Kept in the checkpoint, so a resumed run keeps them.
- The monitored metric must be one the module logs: checked at the first validation's
  end, naming what it does log (neuralab's own modules are checked before data loads).
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor

from neuralab.errors import ConfigError
from neuralab.metrics import best_tag, higher_is_better, split_tag
from neuralab.runtime.publish import publish, train_epoch_step

EPOCHS_TAG = "train/epochs"


class RunRecord(Callback):
    def __init__(self, monitors: dict[str, str | None], mode: str = "max"):
        self.monitors = {k: v for k, v in monitors.items() if v}  # setting -> metric
        self.mode = mode
        self.best: dict[str, Tensor] = {}
        self._checked = False

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        publish(trainer, {EPOCHS_TAG: trainer.current_epoch + 1}, step=train_epoch_step(trainer))

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        logged = trainer.callback_metrics
        self._check_monitors(logged)
        for tag, value in list(logged.items()):
            parsed = split_tag(tag)
            if parsed is None or parsed[0] != "val" or tag.endswith("_best"):
                continue
            kept = self.best.get(tag)
            value = value.detach().float()
            if kept is not None:
                pick = torch.fmax if self._maximized(tag, parsed[1]) else torch.fmin
                value = pick(kept.to(value.device), value)
            self.best[tag] = value
        if self.best:
            publish(trainer, {best_tag(k): v for k, v in self.best.items()})

    def _maximized(self, tag: str, name: str) -> bool:
        if tag in self.monitors.values():
            return self.mode == "max"
        return higher_is_better(name)

    def _check_monitors(self, logged: dict[str, Any]) -> None:
        if self._checked:
            return
        self._checked = True
        for setting, metric in self.monitors.items():
            if metric not in logged:
                names = ", ".join(sorted(k for k in logged if split_tag(k))) or "none"
                raise ConfigError(setting, metric, f"a metric the module logs: {names}")

    def state_dict(self) -> dict[str, Any]:
        return {"best": {k: float(v) for k, v in self.best.items()}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = {k: torch.tensor(v) for k, v in state_dict.get("best", {}).items()}
