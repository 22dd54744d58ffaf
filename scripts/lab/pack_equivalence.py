"""How far a packed job is from its lone run: the figures of issue #15's equivalence list.

    python scripts/lab/pack_equivalence.py [--out logs/benchmark/equivalence.json]
        [--doc docs/SWEEPS.md]   # its table between the equivalence markers

Each sweep runs twice through `neuralab-train -m`, with `hydra/launcher=packed` and
with `hydra/launcher=basic` (each job alone), and every job is compared with its twin:
the largest absolute difference of any weight or buffer in last.ckpt and best.ckpt,
and of any metric in results.json. The last row puts seeds 1-3 in a pack of 8 beside
the same seeds in a pack of 3: a member's result must not depend on its pack mates.
tests/pack asserts the tolerances (weights 1e-5, metrics 1e-4); this prints the
figures. Diagnostics and early stopping are off: every job runs all its epochs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import torch
from contenders import TRAIN
from sections import replace_section

FIXED = ["data=digits", "callbacks.diagnostics=null", "++callbacks.early_stopping=null"]
# name -> overrides of one sweep (every job of it one pack)
SWEEPS = {
    "seeds 1-3, 1 epoch": ["seed=1,2,3", "trainer.max_epochs=1"],
    "seeds 1-3, 5 epochs": ["seed=1,2,3", "trainer.max_epochs=5"],
    "seed x lr (2 x 2), 3 epochs": ["seed=1,2", "optimizer.lr=1e-3,1e-2", "trainer.max_epochs=3"],
    "BatchNorm, SGD, 2 epochs": [
        "seed=1,2,3",
        "model=mlp_batchnorm",
        "optimizer=sgd",
        "trainer.max_epochs=2",
    ],
}
PACK_OF_8 = ["seed=1,2,3,4,5,6,7,8", "trainer.max_epochs=5"]


def sweep(root: Path, launcher: str, overrides: list[str]) -> list[Path]:
    """The sweep's job dirs, in job order."""
    args = [str(TRAIN), "-m", *FIXED, *overrides, f"hydra/launcher={launcher}"]
    subprocess.run([*args, f"hydra.sweep.dir={root}"], check=True, capture_output=True)
    found = [p for p in root.iterdir() if (p / ".hydra").is_dir()]
    return sorted(found, key=lambda p: int(p.name.partition("_")[0]))


def weights(job: Path, name: str) -> dict[str, torch.Tensor]:
    path = job / "checkpoints" / f"{name}.ckpt"
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def metrics(job: Path) -> dict[str, float]:
    found = json.loads((job / "results.json").read_text())["metrics"]
    return {k: float(v) for k, v in found.items() if isinstance(v, int | float)}


def largest(a: dict, b: dict) -> float:
    """The largest absolute difference between entries of the same key (tensors or floats)."""
    assert a.keys() == b.keys(), "the twins differ in what they hold"
    return max((float(torch.as_tensor(a[k] - b[k]).abs().max()) for k in a), default=0.0)


def compare(packed: list[Path], alone: list[Path]) -> dict[str, float]:
    """Largest differences over every job pair."""
    assert len(packed) == len(alone)
    out = {"weights": 0.0, "metrics": 0.0}
    for p, a in zip(packed, alone, strict=True):
        for name in ("last", "best"):
            out["weights"] = max(out["weights"], largest(weights(p, name), weights(a, name)))
        out["metrics"] = max(out["metrics"], largest(metrics(p), metrics(a)))
    return out


def run(tmp: Path) -> dict[str, dict[str, float]]:
    report, packs = {}, {}
    for name, overrides in SWEEPS.items():
        packs[name] = sweep(tmp / f"{len(report)}_packed", "packed", overrides)
        alone = sweep(tmp / f"{len(report)}_basic", "basic", overrides)
        report[name] = compare(packs[name], alone)
        print(f"  {name}: {report[name]}", flush=True)
    eight = sweep(tmp / "pack_of_8", "packed", PACK_OF_8)
    three = packs["seeds 1-3, 5 epochs"]  # the pack of 3 above (PACK_OF_8's epochs)
    report["seeds 1-3: pack of 8 vs pack of 3, 5 epochs"] = compare(eight[:3], three)
    return report


def table(report: dict[str, dict[str, float]]) -> str:
    rows = [
        "| sweep (digits MLP, Adam unless named) | weights: max abs diff | metrics: max abs diff |",
        "| --- | --- | --- |",
    ]
    rows += [f"| {name} | {r['weights']:.1e} | {r['metrics']:.1e} |" for name, r in report.items()]
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON")
    parser.add_argument("--doc", type=Path, default=None, help="render the table into this doc")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = run(Path(tmp))
    command = "python scripts/lab/pack_equivalence.py" + (f" --doc {args.doc}" if args.doc else "")
    text = f"Measured by `{command}` (torch {torch.__version__}, CPU):\n\n{table(report)}"
    print(f"\n{text}")
    if args.doc:
        replace_section(args.doc, "equivalence", text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
