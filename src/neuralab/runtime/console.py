"""What Lightning prints that a neuralab run does not need, filtered from its log records.

- never: the litlogger tip and the GPU/TPU/HPU availability lines (run_info.json in the
  run dir records the devices a run used);
- once a process: the model summary and the checkpoint restore lines of `trainer.test`
  (in a multirun every job would repeat them; .hydra/config.yaml says what each job is).
  Lightning draws a rich summary table past logging: train.py turns the summary off for
  the jobs after a multirun's first.

Filters, not levels: Lightning's warnings and its other lines (why fit stopped) stay.
"""

from __future__ import annotations

import logging
import re

# rank_zero_info logs through whichever of these the last imported Lightning part set up.
RANK_ZERO_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
)
SUMMARY_LOGGER = "lightning.pytorch.callbacks.model_summary"
NEVER = re.compile(r"💡 Tip:|(GPU|TPU|HPU) available:")
ONCE = re.compile(
    r"(Restoring states|Loaded model weights|Restored all states) from the checkpoint"
)


class LightningConsole(logging.Filter):
    def __init__(self, once_all: bool = False):
        super().__init__()
        self.once_all = once_all  # every message of the logger (the model summary) once
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if NEVER.match(message):
            return False
        once = "all" if self.once_all else (m.group(1) if (m := ONCE.match(message)) else None)
        if once is None:
            return True
        if once in self.seen:
            return False
        self.seen.add(once)
        return True


def quiet_lightning() -> None:
    """Install the filters (once: every job of a multirun calls this)."""
    for name, once_all in [*((n, False) for n in RANK_ZERO_LOGGERS), (SUMMARY_LOGGER, True)]:
        logger = logging.getLogger(name)
        if not any(isinstance(f, LightningConsole) for f in logger.filters):
            logger.addFilter(LightningConsole(once_all))
