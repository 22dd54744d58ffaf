"""Packed sweeps and their basic-launcher twins: the same `neuralab-train -m` overrides,
run once with `hydra/launcher=packed` and once with the basic launcher, compared job by
job (neuralab/pack/; issue #15's equivalence list).

Tolerances: members equal lone runs within float tolerance, not bitwise
(`(A@B)[0]` is not always `A[0]@B[0]`): weights within 1e-5 after a short fit,
results.json metrics within 1e-4.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from test_results import multirun

PACKED, BASIC = "hydra/launcher=packed", "hydra/launcher=basic"
WEIGHTS_ATOL = 1e-5
METRICS_ATOL = 1e-4
# No diagnostics unless a test compares them (tests/pack/test_diagnostics.py): they
# cost time.
QUIET = ["callbacks.diagnostics=null"]


@dataclass
class Twins:
    packed: list[Path]  # job dirs in job order
    basic: list[Path]

    @property
    def pairs(self) -> list[tuple[Path, Path]]:
        assert len(self.packed) == len(self.basic)
        return list(zip(self.packed, self.basic, strict=True))


def jobs(sweep: Path) -> list[Path]:
    """A sweep's job dirs, in job order (`<num>_<overrides>`)."""
    found = [p for p in sweep.iterdir() if (p / ".hydra").is_dir()]
    return sorted(found, key=lambda p: int(p.name.partition("_")[0]))


def packed_sweep(root: Path, *overrides: str, quiet: bool = True) -> Path:
    return multirun(root, PACKED, *(QUIET if quiet else []), *overrides)


def basic_sweep(root: Path, *overrides: str, quiet: bool = True) -> Path:
    return multirun(root, BASIC, *(QUIET if quiet else []), *overrides)


def twins(tmp_path_factory, name: str, *overrides: str, quiet: bool = True) -> Twins:
    """The sweep packed (all its jobs one pack: else the comparison proves nothing)
    and with the basic launcher; `quiet=False`: with the default diagnostics."""
    packed = jobs(packed_sweep(tmp_path_factory.mktemp(f"{name}_packed"), *overrides, quiet=quiet))
    basic = jobs(basic_sweep(tmp_path_factory.mktemp(f"{name}_basic"), *overrides, quiet=quiet))
    # A diverged job writes no timing.json, packed or alone; every other one says its pack.
    ended = [job for job in packed if results(job)["status"] != "diverged"]
    assert ended and [packed_members(job) for job in ended] == [len(packed)] * len(ended)
    assert [packed_members(job) for job in basic] == [None] * len(basic)
    return Twins(packed, basic)


def packed_members(job: Path) -> int | None:
    """How many jobs trained in this job's pack (timing.json; None: it ran alone, or
    its lone run diverged before writing timing.json)."""
    timing = job / "timing.json"
    return json.loads(timing.read_text()).get("packed_members") if timing.exists() else None


def results(job: Path) -> dict:
    return json.loads((job / "results.json").read_text())


def checkpoint(job: Path, name: str = "last") -> dict:
    return torch.load(job / "checkpoints" / f"{name}.ckpt", map_location="cpu", weights_only=True)


def weights(job: Path, name: str = "last") -> dict[str, torch.Tensor]:
    """The state_dict of a job's checkpoint: parameters and buffers (running stats)."""
    return checkpoint(job, name)["state_dict"]


def weight_diff(a: Path, b: Path, name: str = "last") -> float:
    """The largest absolute difference between two jobs' checkpointed tensors."""
    wa, wb = weights(a, name), weights(b, name)
    assert wa.keys() == wb.keys()
    return max((wa[k].double() - wb[k].double()).abs().max().item() for k in wa)


def metric_diff(a: Path, b: Path) -> float:
    """The largest absolute difference between two jobs' results.json metrics."""
    ma, mb = results(a)["metrics"], results(b)["metrics"]
    assert ma.keys() == mb.keys() and ma, (sorted(ma), sorted(mb))
    return max(abs(ma[k] - mb[k]) for k in ma)


def assert_same_training(packed: Path, basic: Path, weights_atol: float = WEIGHTS_ATOL) -> None:
    """Status, epochs, metrics and last.ckpt of a packed member and its lone twin."""
    rp, rb = results(packed), results(basic)
    assert rp["status"] == rb["status"] == "ok", (packed.name, rp["status"], rb["status"])
    assert rp["epochs"] == rb["epochs"], packed.name
    assert metric_diff(packed, basic) <= METRICS_ATOL, packed.name
    assert weight_diff(packed, basic) <= weights_atol, packed.name
