"""A sweep's tables are rebuilt after every job: each job dir's files are parsed again
only when they change (sweep/results.py `parsed`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from neuralab.sweep.results import parsed, read_job


def job(tmp_path: Path, loss: float) -> Path:
    job_dir = tmp_path / "0_seed=1"
    (job_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    (job_dir / ".hydra" / "overrides.yaml").write_text("- seed=1\n")
    tmp = job_dir / "results.json.tmp"  # as run dirs write it: a new file renamed
    tmp.write_text(json.dumps({"status": "ok", "metrics": {"test_loss": loss}}))
    os.replace(tmp, job_dir / "results.json")
    return job_dir


def test_a_rewritten_results_file_is_read_again_and_an_unchanged_one_is_not(tmp_path):
    job_dir = job(tmp_path, 0.25)
    assert read_job(job_dir, tmp_path).metrics == {"test_loss": 0.25}
    first = parsed.entries[job_dir / "results.json"]
    assert read_job(job_dir, tmp_path).overrides == ["seed=1"]
    assert parsed.entries[job_dir / "results.json"] is first  # not parsed again
    job(tmp_path, 0.5)  # same size, new content
    assert read_job(job_dir, tmp_path).metrics == {"test_loss": 0.5}
