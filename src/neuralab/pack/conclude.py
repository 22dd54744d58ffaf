"""How a pack's member ends: as its lone run would, through runtime/job.py.

Runs inside the member's own Hydra job (pack/launch.py), so results.json, its status
and the log lines are those `neuralab-train` writes for the same outcome.
"""

from __future__ import annotations

from typing import Any

from neuralab.runtime import job
from neuralab.train import attach_metrics, finish


def conclude(member: Any) -> float | None:
    return job.run_job(lambda cfg: _result(member), started=member.run.started)(member.run.cfg)


def _result(member: Any) -> float | None:
    try:
        if member.outcome is not None:
            raise attach_metrics(member.outcome, member.trainer, member.run.plan)
        best = member.best_checkpoint
        return finish(member.run, member.fit_metrics, member.test_metrics, best)
    finally:
        for logger in member.trainer.loggers:
            logger.finalize("success")
