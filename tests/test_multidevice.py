"""Multi-device training stays correct in single runs, multiruns and launchers.

Every run here is 2 CPU processes (DDP over gloo), started as a real `neuralab-train`
process: Lightning's subprocess `ddp` re-runs sys.argv, which under pytest would re-run
pytest. `RankProbe` (neuralab/diagnostics/probe.py) writes what each rank trained with into
a dir outside the run dir, and each run is checked for:

- exactly one run dir per job, holding nothing but rank 0's files;
- the same hyperparameters (hash of the resolved config) and seed on both ranks;
- bit-identical weights at the end of fit (gradients were all-reduced);
- the same metrics on both ranks, equal to the ones results.json reports (all-reduced);
- TensorBoard event files and log lines written by no process of rank 1 (fit or test).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import FAST, Run, run_subprocess
from omegaconf import OmegaConf

from neuralab.checks import check_strategy
from neuralab.diagnostics.probe import RankProbe
from neuralab.errors import ConfigError

TRAIN = str(Path(sys.executable).parent / "neuralab-train")
TINY = ["data=iris", "trainer.max_epochs=2", "callbacks.early_stopping=null", *FAST["train"]]


def probe(out_dir: Path | str) -> list[str]:
    return [
        f"+callbacks.probe._target_={RankProbe.__module__}.{RankProbe.__name__}",
        f"+callbacks.probe.out_dir={out_dir}",
    ]


def train(tmp_path: Path, *overrides: str) -> Run:
    run = run_subprocess([TRAIN, *overrides, *TINY], cwd=tmp_path, timeout=300)
    assert run.code == 0, run.out
    return run


def reports(probe_dir: Path, stage: str) -> list[dict]:
    return [json.loads((probe_dir / f"{stage}_rank{r}.json").read_text()) for r in (0, 1)]


def event_writers(run_dir: Path) -> set[int]:
    """Process ids in the event file names: events.out.tfevents.<time>.<host>.<pid>.<n>."""
    return {int(p.name.split(".")[-2]) for p in run_dir.glob("events.out.tfevents.*")}


def assert_two_ranks_agree(run: Run, run_dir: Path, probe_dir: Path) -> None:
    results = run.results(run_dir)
    assert results["status"] == "ok" and results["epochs"] == 2
    assert results["run_info"]["device"]["num_devices"] == 2
    fit, test = reports(probe_dir, "fit"), reports(probe_dir, "test")
    assert [r["rank"] for r in fit] == [0, 1] and {r["world_size"] for r in fit} == {2}
    assert fit[0]["config_sha256"] == fit[1]["config_sha256"]
    assert fit[0]["seed"] == fit[1]["seed"] == results["run_info"]["seed"]
    assert fit[0]["params_sha256"] == fit[1]["params_sha256"]
    assert fit[0]["metrics"] == fit[1]["metrics"]
    assert fit[0]["metrics"]["val/loss"] == results["metrics"]["final_val_loss"]
    assert fit[0]["metrics"]["train/loss"] == results["metrics"]["final_train_loss"]
    assert test[0]["metrics"] == test[1]["metrics"]
    assert test[0]["metrics"]["test/loss"] == results["metrics"]["test_loss"]
    writers = event_writers(run_dir)
    assert fit[0]["pid"] in writers, writers
    assert not writers & {fit[1]["pid"], test[1]["pid"]}, "rank 1 wrote TensorBoard events"
    assert sorted(p.name for p in run_dir.iterdir() if p.is_dir()) == [".hydra", "checkpoints"]
    assert (run_dir / "train.log").read_text().count("- results: ") == 1  # rank 0's log only
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()


def sweep_jobs(run: Run, count: int) -> list[Path]:
    """The job dirs of the run's only sweep, after checking there are `count` of them."""
    sweeps = list((run.root / "logs" / "train" / "multiruns").iterdir())
    assert len(sweeps) == 1, sweeps
    jobs = run.run_dirs()
    assert len(jobs) == count and all(j.parent == sweeps[0] for j in jobs), jobs
    return jobs


def test_ddp_cpu_single_run(tmp_path):
    run = train(tmp_path, "trainer=ddp_cpu", *probe(tmp_path / "probe"))
    assert_two_ranks_agree(run, run.run_dir, tmp_path / "probe")
    assert run.results()["run_info"]["device"]["strategy"] == "DDPStrategy"


@pytest.mark.slow  # ~20 s: rank 1 is a second neuralab-train process
def test_subprocess_ddp_single_run_composes_the_same_config_on_every_rank(tmp_path):
    # Rank 1 is a new process that composes its config from the command line again.
    cpu_ddp = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]
    run = train(tmp_path, *cpu_ddp, *probe(tmp_path / "probe"))
    assert_two_ranks_agree(run, run.run_dir, tmp_path / "probe")


def test_multirun_of_ddp_cpu_jobs(tmp_path):
    run = train(tmp_path, "-m", "seed=1,2", "trainer=ddp_cpu", *probe(tmp_path / "seed${seed}"))
    for job, seed in zip(sweep_jobs(run, 2), (1, 2), strict=True):
        assert_two_ranks_agree(run, job, tmp_path / f"seed{seed}")
        assert run.results(job)["run_info"]["seed"] == seed


@pytest.mark.slow  # ~25 s: 2 worker processes, each forking 2 ranks
def test_joblib_workers_run_ddp_cpu_jobs(tmp_path):
    # Fork-based DDP inside loky worker processes.
    run = train(
        tmp_path,
        "-m",
        "seed=1,2",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "trainer=ddp_cpu",
        *probe(tmp_path / "seed${seed}"),
    )
    for job, seed in zip(sweep_jobs(run, 2), (1, 2), strict=True):
        assert_two_ranks_agree(run, job, tmp_path / f"seed{seed}")


def test_subprocess_ddp_inside_a_multirun_is_refused(run_cli):
    run = run_cli("train", "-m", "seed=1,2", "trainer=ddp", "trainer.devices=2", "debug=fast")
    assert run.code == 1, run.out  # every job failed
    for job in run.run_dirs():
        results = run.results(job)
        assert results["status"] == "failed"
        assert results["error"].startswith("trainer.strategy='ddp' is not allowed; expected ")
        assert "hydra/launcher=slurm" in results["error"]


def test_subprocess_ddp_inside_a_multirun_is_allowed_for_the_tasks_of_a_slurm_job(monkeypatch):
    ddp = OmegaConf.create({"strategy": "ddp"})
    monkeypatch.delenv("SUBMITIT_EXECUTOR", raising=False)
    with pytest.raises(ConfigError, match="hydra/launcher=slurm"):
        check_strategy(ddp, multirun=True)
    check_strategy(ddp, multirun=False)  # a single run: Lightning re-launches the command
    monkeypatch.setenv("SUBMITIT_EXECUTOR", "slurm")
    monkeypatch.setenv("SLURM_NTASKS", "4")
    check_strategy(ddp, multirun=True)  # SLURM started every rank, each runs this one job
