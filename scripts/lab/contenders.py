"""What the benchmarks run: the plain PyTorch loop, and `neuralab-train` as a process.

benchmark.py times them on single runs and a multirun, benchmark_sweeps.py on whole
sweeps (basic and packed launchers), overhead.py part by part.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from neuralab.compose import build_datamodule, build_net
from neuralab.runtime.config import config_dir, register_resolvers

TRAIN = Path(sys.executable).parent / "neuralab-train"
# With CUDA every workload also runs on the GPU: neuralab with trainer=gpu (its splits
# live in GPU memory), the plain loop with its tensors and net moved there.
GPU = ["trainer=gpu"]


def plain_loop(overrides: list[str], epochs: int) -> dict:
    """The hand-written baseline over in-memory tensors, same parts as neuralab."""
    register_resolvers()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    torch.manual_seed(cfg.seed)
    device = torch.device("cuda" if GPU[0] in overrides else "cpu")
    dm = build_datamodule(cfg)
    x, y, xv, yv = (t.to(device) for t in (*dm.splits["train"], *dm.splits["val"]))
    net = build_net(cfg).to(device)
    optimizer = instantiate(cfg.optimizer)(net.parameters())
    bs, n = cfg.data.batch_size, len(x)
    _sync(device)
    start = time.perf_counter()
    for _ in range(epochs):
        net.train()
        perm = torch.randperm(n, device=device)
        for i in range(0, n, bs):
            idx = perm[i : i + bs]
            loss = F.cross_entropy(net(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        net.eval()
        with torch.no_grad():  # the per-epoch validation pass Lightning also runs
            F.cross_entropy(net(xv), yv)
    _sync(device)
    train_s = time.perf_counter() - start
    return {"train_s": train_s, "samples": n * epochs, "samples_per_s": n * epochs / train_s}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":  # queued kernels count: time the work, not its launch
        torch.cuda.synchronize(device)


def timed_process(args: list[str]) -> float:
    """Wall seconds of one process, from its start to its exit; raise if it failed."""
    start = time.time()
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{args[:2]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return time.time() - start
