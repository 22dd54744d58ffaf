"""Lightning's TensorBoardLogger, flushing its event file at most every few seconds.

Lightning calls `logger.save()` after every `log_metrics` (twice an epoch here: train
and val), and TensorBoardLogger.save() flushes the event file and checks for
hparams.yaml through fsspec: about a millisecond each time, a sizeable share of a
~9 ms digits epoch. Flushing every `flush_every_s` seconds keeps the dashboard live;
a checkpoint write and the end of the run (finalize) always flush, so the events of
every checkpointed step are on disk: a run killed and resumed shows no gap.
"""

from __future__ import annotations

import time
from typing import Any

from lightning.pytorch.loggers import TensorBoardLogger as LightningTensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only


class TensorBoardLogger(LightningTensorBoardLogger):
    def __init__(self, *args: Any, flush_every_s: float = 5.0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.flush_every_s = flush_every_s
        self._last_flush = float("-inf")

    @rank_zero_only
    def save(self) -> None:
        now = time.monotonic()
        if now - self._last_flush >= self.flush_every_s:
            self._last_flush = now
            super().save()

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        self._last_flush = time.monotonic()
        super().save()
