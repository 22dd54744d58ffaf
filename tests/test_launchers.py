"""Launchers run a sweep's jobs in parallel processes, into one sweep dir, and a requeued
job resumes: hydra/launcher=joblib, submitit_local and slurm (conf/hydra/launcher/).

The launchers start processes, so the sweeps run `neuralab-train` as a real process.
A SLURM cluster is not needed: the slurm preset is checked down to the sbatch script it
submits, and requeueing runs for real under submitit_local, which shares its code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import joblib
import pytest
import torch
from conftest import FAST, Run, run_subprocess
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_class
from omegaconf import OmegaConf
from submitit.helpers import DelayedSubmission

from hydra_plugins.neuralab_launchers.submitit_requeue import LocalLauncher, with_resume
from neuralab.runtime.config import config_dir, register_resolvers
from neuralab.runtime.devices import claim_device, place_job, wants_own_device
from neuralab.runtime.faults import SignalAt

TRAIN = str(Path(sys.executable).parent / "neuralab-train")
TINY = ["data=xor", "callbacks.early_stopping=null", *FAST["train"]]


def sweep(tmp_path: Path, *overrides: str) -> Run:
    run = run_subprocess([TRAIN, "-m", *overrides, *TINY], cwd=tmp_path, timeout=400)
    assert run.code == 0, run.out
    return run


def only_sweep_dir(run: Run) -> Path:
    sweeps = [p for p in (run.root / "logs" / "train" / "multiruns").iterdir() if p.is_dir()]
    assert len(sweeps) == 1, f"jobs wrote into several sweep dirs: {sweeps}"
    return sweeps[0]


def assert_jobs_ok(run: Run, count: int, epochs: int) -> list[Path]:
    """`count` job dirs in the one sweep dir, each with its TensorBoard run, all in
    results.csv with status ok."""
    sweep_dir = only_sweep_dir(run)
    jobs = run.run_dirs()
    assert len(jobs) == count and all(job.parent == sweep_dir for job in jobs), jobs
    for job in jobs:
        assert list(job.glob("events.out.tfevents.*")), f"no TensorBoard events in {job}"
        results = run.results(job)
        assert results["status"] == "ok" and results["epochs"] == epochs, results
    table = (sweep_dir / "results.csv").read_text().splitlines()
    rows = [line.split(",")[0] for line in table[1:]]
    assert rows == [str(n) for n in range(count)], table
    assert all(",ok," in line for line in table[1:]), table
    return jobs


def writer_pids(job: Path) -> set[int]:
    return {int(p.name.split(".")[-2]) for p in job.glob("events.out.tfevents.*")}


# --- joblib --------------------------------------------------------------------------


@pytest.mark.slow  # ~60 s on 2 cores: two sweeps, each starting 2 worker processes
def test_joblib_runs_four_jobs_on_two_workers(tmp_path):
    args = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=1,2,3,4"]
    run = sweep(tmp_path, *args, "trainer.max_epochs=1")
    jobs = assert_jobs_ok(run, 4, epochs=1)
    sweep_dir = only_sweep_dir(run)
    parent = int(sweep_dir.name.rpartition("_")[2])  # <time>_<pid of the sweep's process>
    workers = set().union(*(writer_pids(job) for job in jobs))
    assert parent not in workers and 1 <= len(workers) <= 2, workers
    if "OMP_NUM_THREADS" not in os.environ:  # else joblib passes that on to the workers
        threads = max(joblib.cpu_count() // 2, 1)
        assert {run.results(j)["run_info"]["device"]["torch_threads"] for j in jobs} == {threads}
    # The same command with resume=true: the workers find the same sweep and its jobs done.
    again = sweep(tmp_path, *args, "trainer.max_epochs=1", "resume=true")
    assert only_sweep_dir(again) == sweep_dir
    assert again.out.count("already ended (ok): nothing to resume") == 4, again.out


# --- submitit --------------------------------------------------------------------------


@pytest.mark.slow  # ~40 s: 2 job processes, one of them started twice
def test_submitit_local_requeues_a_preempted_job_and_it_resumes(tmp_path):
    """Job 0 gets SIGUSR2 (what SLURM sends before a time limit or a preemption) after
    step 6 of 10; job 1 is the same training, never stopped."""
    marker = tmp_path / "signalled"
    fault = [
        f"+callbacks.fault._target_={SignalAt.__module__}.{SignalAt.__name__}",
        "+callbacks.fault.at_step=6,null",
        f"+callbacks.fault.marker={marker}",
        "data.steps_per_chunk=1",  # batch hooks at every step, so at step 6 (mid-epoch)
    ]
    run = sweep(tmp_path, "hydra/launcher=submitit_local", "trainer.max_epochs=2", *fault)
    stopped, reference = assert_jobs_ok(run, 2, epochs=2)
    assert marker.read_text() == "6"
    assert len(list((only_sweep_dir(run) / ".submitit").glob("*/*_log.out"))) == 2
    sessions = json.loads((stopped / "run_info.json").read_text())["sessions"]
    first, resumed = (s["resumed_from"] for s in sessions)
    assert first is None and resumed["step"] == 6
    assert Path(resumed["checkpoint"]).resolve() == (stopped / "checkpoints/last.ckpt").resolve()
    assert "resume=true" in (stopped / ".hydra" / "overrides.yaml").read_text()
    assert "last.ckpt at step 6" in (stopped / "train.log").read_text()  # saved at the signal
    assert run.results(stopped)["metrics"] == run.results(reference)["metrics"]


def test_a_requeued_submission_resumes_in_its_own_dir():
    launcher = LocalLauncher(submitit_folder="unused")
    args = (["seed=1", "ckpt_path=/a/b.ckpt", "resume=false"], "hydra.sweep.dir", 3, "id", {})
    requeued = launcher.checkpoint(*args)
    assert isinstance(requeued, DelayedSubmission) and requeued.function is launcher
    assert requeued.args == (["seed=1", "resume=true"], *args[1:])
    assert with_resume(["+x=1", "~ckpt_path"]) == ["+x=1", "resume=true"]


def test_slurm_preset_submits_one_task_per_gpu(tmp_path, monkeypatch):
    """The sbatch script the slurm preset would submit for a 4-GPU DDP job (no cluster:
    submitit's submission is stopped right before it calls sbatch)."""
    from submitit.slurm.slurm import SlurmExecutor

    class Submitted(Exception):
        pass

    def capture(executor, command):
        raise Submitted(executor._make_submission_file_text(command, "uid"))

    monkeypatch.setattr(SlurmExecutor, "affinity", classmethod(lambda cls: 1))  # "srun exists"
    monkeypatch.setattr(SlurmExecutor, "_submit_command", capture)
    monkeypatch.setenv("NEURALAB_SLURM_PARTITION", "gpu")
    monkeypatch.chdir(tmp_path)
    register_resolvers()
    overrides = ["hydra/launcher=slurm", "hydra.launcher.gpus_per_node=4", "trainer=ddp"]
    with initialize_config_dir(config_dir(), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    params = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    launcher = get_class(params.pop("_target_"))(**params)
    launcher.config = cfg
    with pytest.raises(Submitted) as submitted:
        launcher.launch([["seed=1"]], initial_job_idx=0)
    sbatch = str(submitted.value)
    expected = ["--partition=gpu", "--gpus-per-node=4", "--ntasks-per-node=4", "--nodes=1"]
    for line in [*expected, "--signal=USR2@120", "--time=240"]:
        assert f"#SBATCH {line}\n" in sbatch, sbatch
    assert f"{tmp_path}/logs/train/multiruns/" in sbatch  # submitit's files in the sweep dir


# --- one GPU per worker ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("trainer", "gpus", "expected"),
    [
        ({"accelerator": "gpu", "devices": 1}, 4, True),
        ({"accelerator": "auto", "devices": 1}, 2, True),
        ({"accelerator": "gpu", "devices": 1}, 1, False),  # nothing to choose from
        ({"accelerator": "cpu", "devices": 1}, 4, False),
        ({"accelerator": "gpu", "devices": 2}, 4, False),  # the job wants several
        ({"accelerator": "gpu", "devices": [3]}, 4, False),  # the job chose one
        ({"accelerator": "gpu", "devices": 1, "strategy": "ddp_notebook"}, 4, False),
    ],
)
def test_which_jobs_get_a_gpu_of_their_own(trainer, gpus, expected):
    assert wants_own_device(trainer, gpus) is expected


HOLD = """
import sys, time
from pathlib import Path
from neuralab.runtime.devices import claim_device
print(claim_device(Path(sys.argv[1]), int(sys.argv[2])), flush=True)
time.sleep(60)
"""


def test_each_worker_process_claims_its_own_gpu(tmp_path):
    locks = tmp_path / ".devices"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(locks), "3"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "0"  # another worker holds GPU 0
        assert claim_device(locks, 3) == 1
        assert claim_device(locks, 3) == 1  # this process keeps its GPU for later jobs
        assert claim_device(tmp_path / "other", 1) == 0
    finally:
        holder.kill()
        holder.wait()
    assert claim_device(tmp_path / "full", 0) is None


def test_place_job_sets_the_claimed_gpu_and_leaves_cpu_runs_alone(tmp_path):
    cfg = OmegaConf.create({"trainer": {"accelerator": "gpu", "devices": 1}})
    assert place_job(cfg, tmp_path, job_num=5, gpu_count=4) == 0
    assert cfg.trainer.devices == [0]
    cpu = OmegaConf.create({"trainer": {"accelerator": "cpu", "devices": 1}})
    assert place_job(cpu, tmp_path, job_num=5, gpu_count=0) is None
    assert cpu.trainer.devices == 1


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA devices")
def test_joblib_workers_train_on_different_gpus(tmp_path):
    workers = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    run = sweep(tmp_path, *workers, "seed=1,2", "trainer=gpu", "trainer.max_epochs=1")
    jobs = assert_jobs_ok(run, 2, epochs=1)
    devices = {run.results(j)["run_info"]["device"]["root_device"] for j in jobs}
    assert devices == {"cuda:0", "cuda:1"}
