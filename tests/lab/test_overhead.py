"""scripts/lab/overhead.py measures every row of its ladder and renders its doc section."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts" / "lab"
sys.path.insert(0, str(SCRIPTS))  # the scripts import their sibling sections.py


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # overhead.py imports benchmark by name: share this one
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # ~20 s: one plain process and two neuralab-train processes
def test_tiny_ladder_measures_each_row_and_writes_the_doc_section(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    benchmark = load("benchmark")
    overhead = load("overhead")
    # Two rows (the bare loop and the default run) on the tiny digits workload only.
    first, last = list(overhead.LADDER)[0], list(overhead.LADDER)[-1]
    monkeypatch.setattr(overhead, "LADDER", {k: overhead.LADDER[k] for k in (first, last)})
    monkeypatch.setattr(benchmark, "TINY", {"digits_mlp": benchmark.TINY["digits_mlp"]})
    doc = tmp_path / "PERFORMANCE.md"
    doc.write_text("# x\n<!-- overhead:start -->\nold\n<!-- overhead:end -->\n")
    out = tmp_path / "overhead.json"

    overhead.main(["--tiny", "--repeats", "1", "--out", str(out), "--doc", str(doc)])

    report = json.loads(out.read_text())
    ratios = report["workloads"]["digits_mlp"]["ratios"]
    assert list(ratios) == [first, last]
    assert all(math.isfinite(r) and r > 0 for r in ratios.values())
    text = doc.read_text()
    assert "old" not in text and f"| {first} | {ratios[first]:.2f} |" in text
