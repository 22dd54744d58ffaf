"""The sweeps benchmark: one sweep run three ways, side by side.

- basic: `neuralab-train -m ... hydra/launcher=basic`, Hydra's launcher, one job after
  the other in one process;
- packed: `... hydra/launcher=packed`, which trains compatible jobs as one vectorized
  fit (each job keeps its own dir, results and logs);
- plain: the same configs as plain PyTorch loops back to back in this process
  (compute only: no start-up, no files).

Each launcher command is timed from its launch to its exit (end to end). Its start-up
runs from the launch to the first training step of any of its jobs (their
timing.json `first_step`, read on the same clock), so "after start-up" is the sweep's
own work: set-up of every job, the fits, tests and files. A launcher that fails
(packed is not there yet on every branch) is reported as not available, with the
first line of its error.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
from contenders import GPU, TRAIN, plain_loop
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from neuralab.runtime.config import config_dir

MNIST_SIZED = ["data=synthetic", "model.hidden_sizes=[256,128]"]
NO_DIAGNOSTICS = "callbacks.diagnostics=null"
# name -> (fixed overrides, swept values, epochs): seeds of the default config, seeds x
# learning rates of it, and seeds of the MNIST-sized MLP (benchmark.py's workloads).
SEEDS_16 = [str(s) for s in range(1, 17)]
SWEEPS = {
    "default_seeds": (["data=digits"], {"seed": SEEDS_16}, 20),
    "default_seeds_x_lr": (
        ["data=digits"],
        {"seed": SEEDS_16, "optimizer.lr": ["1e-3", "3e-3", "1e-2", "3e-2"]},
        20,
    ),
    "mnist_sized_seeds": (MNIST_SIZED, {"seed": SEEDS_16}, 3),
    # (a) without the diagnostics (which every job of the others writes, packed or not)
    "default_seeds_no_diagnostics": (["data=digits", NO_DIAGNOSTICS], {"seed": SEEDS_16}, 20),
}
TINY_MNIST = [*MNIST_SIZED, "data.params.n_samples=2000", "data.params.n_test=200"]
TINY_SWEEPS = {
    "default_seeds": (["data=digits"], {"seed": ["1", "2"]}, 2),
    "default_seeds_x_lr": (
        ["data=digits"],
        {"seed": ["1", "2"], "optimizer.lr": ["1e-3", "1e-2"]},
        2,
    ),
    "mnist_sized_seeds": (TINY_MNIST, {"seed": ["1", "2"]}, 2),
    "default_seeds_no_diagnostics": (["data=digits", NO_DIAGNOSTICS], {"seed": ["1", "2"]}, 2),
}
# Every job runs all its epochs, as the plain loop does.
FIXED = ["++callbacks.early_stopping=null"]


# Runs neuralab-train's console entry in a child that then writes its peak GPU memory
# (torch's allocator: what the pack's tensors need, not the CUDA context) to argv[1].
PEAK_MEMORY = """
import json, sys, torch
from neuralab.train import main
out = sys.argv.pop(1)
sys.argv[0] = "neuralab-train"
try:
    main()
finally:
    open(out, "w").write(json.dumps(torch.cuda.max_memory_allocated()))
"""


def run_launcher(
    launcher: str, overrides: list[str], sweep_dir: Path, command: list[str] | None = None
) -> dict:
    """One multirun under `launcher`: wall seconds, start-up, and the rest."""
    args = [*(command or [str(TRAIN)]), "-m", *overrides, f"hydra/launcher={launcher}"]
    args.append(f"hydra.sweep.dir={sweep_dir}")
    start = time.time()
    proc = subprocess.run(args, capture_output=True, text=True)
    wall = time.time() - start
    if proc.returncode != 0:
        return {"error": first_line(proc.stderr or proc.stdout)}
    first_steps = [json.loads(p.read_text())["first_step"] for p in sweep_dir.glob("*/timing.json")]
    if not first_steps:
        return {"error": "ran, but no job wrote timing.json: start-up unknown"}
    startup = min(first_steps) - start
    return {"wall_s": wall, "startup_s": startup, "after_startup_s": wall - startup}


def first_line(text: str) -> str:
    """An error's first line, fit for a markdown table cell."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "no output")
    return line.replace("|", "/")[:120]


def sweep_overrides(fixed: list[str], swept: dict[str, list[str]], epochs: int) -> list[str]:
    values = [f"{key}={','.join(v)}" for key, v in swept.items()]
    return [*fixed, *values, f"trainer.max_epochs={epochs}", *FIXED]


def configs(fixed: list[str], swept: dict[str, list[str]]) -> list[list[str]]:
    """The sweep's jobs as override lists, as Hydra's basic sweeper expands them."""
    keys = list(swept)
    return [
        [*fixed, *(f"{k}={v}" for k, v in zip(keys, point, strict=True))]
        for point in itertools.product(*swept.values())
    ]


def launcher_missing(name: str) -> str | None:
    """Why `hydra/launcher=<name>` cannot run, or None: asked once, so that a missing
    launcher costs no failed process (seconds of imports) per sweep."""
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        options = GlobalHydra.instance().config_loader().get_group_options("hydra/launcher")
    return None if name in options else f"no hydra/launcher={name} config"


def compare_sweep(name: str, spec: tuple, tmp: Path, packed_missing: str | None) -> dict:
    fixed, swept, epochs = spec
    jobs = configs(fixed, swept)
    overrides = sweep_overrides(fixed, swept, epochs)
    basic = run_launcher("basic", overrides, tmp / f"{name}_basic")
    if "error" in basic:  # the baseline must run: a failure here is the script's bug
        raise RuntimeError(f"{name}: the basic launcher failed: {basic['error']}")
    packed = (
        {"error": packed_missing}
        if packed_missing
        else run_launcher("packed", overrides, tmp / f"{name}_packed")
    )
    plain_s = sum(plain_loop(job, epochs)["train_s"] for job in jobs)
    report = {"jobs": len(jobs), "epochs": epochs, "swept": swept, "overrides": overrides}
    report |= {"basic": basic, "packed": packed, "plain_s": plain_s}
    if "error" not in packed:
        report["basic_over_packed"] = basic["wall_s"] / packed["wall_s"]
        report["basic_over_packed_after_startup"] = (
            basic["after_startup_s"] / packed["after_startup_s"]
        )
        report["packed_after_startup_over_plain"] = packed["after_startup_s"] / plain_s
    print(f"  sweep {name}: basic {basic}, packed {packed}, plain {plain_s:.2f} s", flush=True)
    return report


def gpu_pack(members: int, epochs: int, tmp: Path, packed_missing: str | None) -> dict | str:
    """A `members`-job seed sweep of the default MLP on the GPU: packed (members per
    second after start-up, peak GPU memory per member) against the basic launcher's
    jobs one after the other (jobs per second after start-up)."""
    if not torch.cuda.is_available():
        return "skipped: no device"
    seeds = {"seed": [str(s) for s in range(1, members + 1)]}
    overrides = sweep_overrides([*GPU, "data=digits"], seeds, epochs)
    report = {"members": members, "epochs": epochs, "device": torch.cuda.get_device_name()}
    if packed_missing:  # then the sequential jobs alone would compare with nothing
        return report | {"packed": {"error": packed_missing}}
    memory = tmp / "gpu_peak_memory.json"
    child = [sys.executable, "-c", PEAK_MEMORY, str(memory)]
    packed = run_launcher("packed", overrides, tmp / "gpu_packed", command=child)
    basic = run_launcher("basic", overrides, tmp / "gpu_basic")
    report |= {"packed": packed, "basic": basic}
    if "error" in packed or "error" in basic:
        return report
    report["packed_members_per_s"] = members / packed["after_startup_s"]
    report["basic_jobs_per_s"] = members / basic["after_startup_s"]
    report["memory_per_member_mib"] = json.loads(memory.read_text()) / members / 2**20
    return report


def run_sweeps(tiny: bool, gpu_members: int, tmp: Path) -> dict:
    """The sweeps part of the benchmark report."""
    sweeps = TINY_SWEEPS if tiny else SWEEPS
    missing = launcher_missing("packed")
    if not tiny:  # uncounted: the first process after a pause runs ~25% slower (file
        # cache, CPU clocks), and that would fall on the basic launcher, which goes first
        run_launcher("basic", sweep_overrides(*TINY_SWEEPS["default_seeds"]), tmp / "warm")
    report = {name: compare_sweep(name, spec, tmp, missing) for name, spec in sweeps.items()}
    epochs = sweeps["default_seeds"][2]
    gpu = gpu_pack(gpu_members, epochs, tmp, missing)
    return {"sweeps": report, "sweeps_gpu": gpu}
