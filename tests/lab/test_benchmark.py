"""scripts/lab/benchmark.py runs end to end with tiny sizes and reports real figures."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "lab" / "benchmark.py"
sys.path.insert(0, str(SCRIPT.parent))  # benchmark.py imports its sibling sections.py


def load_benchmark():
    spec = importlib.util.spec_from_file_location("benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # ~40 s: four fresh neuralab-train/plain processes and a 2-job multirun
def test_tiny_benchmark_writes_json_and_doc_section(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    doc = tmp_path / "PERFORMANCE.md"
    doc.write_text("# x\n<!-- benchmark:start -->\nold\n<!-- benchmark:end -->\ntail\n")
    out = tmp_path / "bench.json"
    bench = load_benchmark()
    bench.main(
        [
            "--tiny",
            "--epochs",
            "1",
            "--repeats",
            "1",
            "--jobs",
            "2",
            "--out",
            str(out),
            "--doc",
            str(doc),
        ]
    )

    report = json.loads(out.read_text())
    names = {"digits_mlp", "mnist_sized_mlp"}
    if torch.cuda.is_available():
        names |= {f"{n}_gpu" for n in names}
    assert set(report["workloads"]) == names
    for w in report["workloads"].values():
        for key in (
            "plain_samples_per_s",
            "neuralab_samples_per_s",
            "ratio_median",
            "neuralab_wall_s",
            "neuralab_startup_s",
        ):
            assert math.isfinite(w[key]) and w[key] > 0, (key, w)
        run = w["runs"]["neuralab"][0]
        # neuralab trained exactly the samples the plain loop trained
        assert run["train_samples"] == w["runs"]["plain"][0]["samples"]
    multirun = report["multirun"]
    assert multirun["jobs"] == 2 and multirun["multirun_s"] > 0
    assert multirun["plain_in_process_s"] > 0 and multirun["plain_per_process_s"] > 0
    # The split adds up to the whole, every part measured (none negative).
    parts = multirun["startup_s"], multirun["fit_s"], multirun["between_fits_s"]
    assert min(parts) > 0 and sum(parts) == pytest.approx(multirun["multirun_s"])
    assert report["gpu"].startswith(("skipped", "the *_gpu workloads"))

    text = doc.read_text()
    assert "old" not in text and text.endswith("<!-- benchmark:end -->\ntail\n")
    assert "| digits_mlp | 1 |" in text and "2-job multirun" in text
    assert f"GPU: {report['gpu']}" in text


def test_with_a_gpu_every_workload_gets_a_gpu_twin(monkeypatch):
    bench = load_benchmark()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    both = bench.with_gpu({"digits_mlp": (["data=digits"], 20)})
    assert both == {
        "digits_mlp": (["data=digits"], 20),
        "digits_mlp_gpu": (["trainer=gpu", "data=digits"], 20),
    }
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench.with_gpu({"digits_mlp": (["data=digits"], 20)}) == {
        "digits_mlp": (["data=digits"], 20)
    }
