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
            "--no-sweeps",  # test_tiny_sweeps covers them
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


@pytest.mark.slow  # ~60 s: three 2-job basic multiruns and their plain loops
def test_tiny_sweeps_write_their_doc_section(tmp_path, monkeypatch):
    """Runs whether or not the packed launcher exists: its row has figures or says why not."""
    monkeypatch.chdir(tmp_path)
    doc = tmp_path / "PERFORMANCE.md"
    doc.write_text("<!-- sweeps:start -->\nold\n<!-- sweeps:end -->\n")
    out = tmp_path / "bench.json"
    load_benchmark().main(["--sweeps", "--tiny", "--out", str(out), "--doc", str(doc)])

    report = json.loads(out.read_text())
    assert "workloads" not in report and "multirun" not in report  # --sweeps: only them
    assert set(report["sweeps"]) == {
        "default_seeds",
        "default_seeds_x_lr",
        "mnist_sized_seeds",
        "default_seeds_no_diagnostics",
    }
    assert report["sweeps"]["default_seeds_x_lr"]["jobs"] == 4
    for sweep in report["sweeps"].values():
        basic = sweep["basic"]
        assert 0 < basic["startup_s"] < basic["wall_s"] and sweep["plain_s"] > 0
        assert "error" in sweep["packed"] or sweep["packed"]["after_startup_s"] > 0
    text = doc.read_text()
    assert "old" not in text
    for name in report["sweeps"]:
        rows = [line for line in text.splitlines() if line.startswith(f"| {name}:")]
        assert [r.split(" | ")[2].split(":")[0] for r in rows] == ["basic", "packed", "plain"]
        packed = rows[1]
        assert "packed: not available (" in packed or packed.split(" | ")[3] != "-", packed
    if not torch.cuda.is_available():
        assert "GPU: skipped: no device." in text


def test_sweeps_markdown_with_packed_figures_and_without():
    import benchmark_report as report  # scripts/lab is on sys.path (above)

    run = {"wall_s": 10.0, "startup_s": 4.0, "after_startup_s": 6.0}
    fast = {"wall_s": 5.0, "startup_s": 4.0, "after_startup_s": 1.0}
    sweep = {"jobs": 16, "epochs": 20, "swept": {"seed": list("0123456789abcdef")}}
    sweep |= {"basic": run, "packed": fast, "plain_s": 0.5, "basic_over_packed": 2.0}
    sweep |= {"basic_over_packed_after_startup": 6.0, "packed_after_startup_over_plain": 2.0}
    missing = {**sweep, "packed": {"error": "no hydra/launcher=packed config"}}
    gpu = {"members": 256, "epochs": 20, "device": "H100", "packed": fast, "basic": run}
    gpu |= {"packed_members_per_s": 256.0, "basic_jobs_per_s": 2.0, "memory_per_member_mib": 0.5}
    env = {"cpus": 2, "torch": "2", "lightning": "2"}
    text = report.sweeps_markdown(
        {"command": "c", "date": "d", "environment": env, "sweeps": {"a": sweep, "b": missing}}
        | {"sweeps_gpu": gpu}
    )
    assert "| a: seed (16) | 16 x 20 | basic | 10.0 | 4.0 | 6.0 | basic / packed: 2.00 end " in text
    assert "| a: seed (16) | 16 x 20 | packed | 5.0 | 4.0 | 1.0 | packed after start-up / " in text
    assert "| b: seed (16) | 16 x 20 | packed: not available (no hydra/launcher=packed " in text
    assert "| b: seed (16) | 16 x 20 | plain | - | - | 0.5 | compute only |" in text
    assert "256.0 members/s after start-up, against 2.00 jobs/s" in text and "128.0x" in text
