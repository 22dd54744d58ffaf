"""The results table of a multirun: results.csv, results.md, job dir names, compare.py.

One real sweep (2 optimizers x 2 activations x 2 seeds on iris, 2 epochs) is
shared by the tests of this module; partial and broken job dirs are made by hand.
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import json
import math
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import train_in
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from neuralab.sweep.callback import SweepResults, tables_once
from neuralab.sweep.naming import MAX_OVERRIDES_CHARS, job_dirname
from neuralab.sweep.results import collect, group_by_config, write_results

REPO = Path(__file__).resolve().parent.parent
COMPARE = REPO / "scripts" / "compare.py"
GRID = ["optimizer=sgd,adam", "model.activation=relu,tanh", "seed=1,2"]
FIXED = ["data=iris", "trainer.max_epochs=2", "callbacks.early_stopping=null"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def multirun(root: Path, *overrides: str) -> Path:
    """Run `neuralab-train -m ...` in-process from `root`; the sweep dir."""
    train_in(root, "-m", *overrides)
    (sweep,) = (root / "logs" / "train" / "multiruns").iterdir()
    return sweep


def job_results(job: Path) -> dict:
    return json.loads((job / "results.json").read_text())


def job_overrides(job: Path) -> list[str]:
    return yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def grouped_rows(markdown: str) -> dict[str, list[str]]:
    """The grouped table of results.md: overrides cell -> the other cells."""
    section = markdown.split("## Mean ± std over seeds", 1)[1]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    cells = [[c.strip() for c in row.strip("|").split("|")] for row in rows]
    return {c[0].strip("`"): c[1:] for c in cells}


def load_compare():
    spec = importlib.util.spec_from_file_location("compare", COMPARE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    return multirun(tmp_path_factory.mktemp("sweep"), *GRID, *FIXED)


@pytest.fixture(scope="module")
def jobs(sweep) -> list[Path]:
    found = sorted((p for p in sweep.iterdir() if (p / ".hydra").is_dir()), key=lambda p: p.name)
    assert len(found) == 8, found
    return found


def test_job_dirs_read_as_the_overrides_that_vary(sweep, jobs):
    assert jobs[0].name == "0_model.activation=relu,optimizer=sgd,seed=1"
    swept = {o.partition("=")[0] for o in GRID}
    for num, job in enumerate(jobs):
        # What every job shares (data=iris, ...) stays out of the name: results.md has it.
        kept = [o for o in job_overrides(job) if o.partition("=")[0] in swept]
        assert job.name == f"{num}_" + ",".join(sorted(kept))
    header = (sweep / "results.md").read_text().split("| overrides |")[0]
    assert all(o in header for o in FIXED), header


def test_results_csv_has_one_row_per_job(sweep, jobs):
    rows = read_csv(sweep / "results.csv")
    assert [row["job"] for row in rows] == [str(n) for n in range(8)]
    for row, job in zip(rows, jobs, strict=True):
        results = job_results(job)
        assert row["dir"] == job.name
        assert row["overrides"] == " ".join(job_overrides(job))
        assert row["status"] == results["status"] == "ok"
        assert int(row["epochs"]) == results["epochs"] == 2
        assert float(row["wall_time_s"]) == pytest.approx(results["wall_time_s"])
        for name in ("best_val_acc", "final_val_loss", "test_acc"):
            assert float(row[name]) == pytest.approx(results["metrics"][name], rel=1e-9)
        assert set(results["metrics"]) <= set(row)
        assert (sweep / row["checkpoint"]).resolve() == Path(results["best_checkpoint"]).resolve()


def test_results_md_has_mean_and_std_over_seeds(sweep, jobs):
    markdown = (sweep / "results.md").read_text()
    assert "8 jobs: 8 ok." in markdown
    groups = grouped_rows(markdown)
    assert len(groups) == 4, groups
    header = [line for line in markdown.splitlines() if line.startswith("| overrides |")][0]
    columns = [c.strip() for c in header.strip("|").split("|")][1:]
    for config, cells in groups.items():
        seeds = [j for j in jobs if all(o in job_overrides(j) for o in config.split())]
        assert len(seeds) == 2, config
        assert cells[:2] == ["1, 2", "2/2"]
        values = [job_results(j)["metrics"]["best_val_acc"] for j in seeds]
        mean, std = statistics.fmean(values), statistics.stdev(values)
        expected = f"{mean:.4g} ± {std:.2g} (2)"
        assert cells[columns.index("best_val_acc")] == expected, (config, cells)


def test_compare_rebuilds_tables_and_plots_with_a_missing_job(sweep, tmp_path):
    copy = shutil.copytree(sweep, tmp_path / sweep.name)
    for name in ("results.csv", "results.md"):
        (copy / name).unlink()
    (victim,) = copy.glob("3_*")
    (victim / "results.json").unlink()  # as if the job had been killed hard
    proc = subprocess.run(
        [sys.executable, str(COMPARE), str(copy)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    rows = read_csv(copy / "results.csv")
    assert [row["status"] for row in rows] == ["ok"] * 3 + ["missing"] + ["ok"] * 4
    assert rows[3]["best_val_acc"] == "" and rows[3]["overrides"]
    markdown = (copy / "results.md").read_text()
    assert "8 jobs: 1 missing, 7 ok." in markdown
    assert any(cells[1] == "1/2" for cells in grouped_rows(markdown).values())
    from PIL import Image

    for name in ("curves_val_acc.png", "bars_val_acc.png"):
        png = copy / name
        assert png.read_bytes()[:8] == PNG_SIGNATURE, name
        with Image.open(png) as image:
            image.verify()
            assert image.width > 0 and image.height > 0


def test_compare_bad_input_is_one_line_and_exit_2(sweep, tmp_path, capsys):
    compare = load_compare()
    assert compare.main([str(tmp_path / "nope")]) == 2
    assert compare.main([str(tmp_path)]) == 2  # a dir with no job dirs
    assert compare.main([str(sweep), "--metric", "val/nope", "--out", str(tmp_path)]) == 2
    assert compare.main([str(sweep), str(sweep)]) == 2  # several sweeps need --out
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 4 and all(e.startswith("compare: error: ") for e in errors), errors
    assert "val/acc" in errors[2]  # names the metrics there are


# --- partial data, made by hand -------------------------------------------------------


def fake_job(sweep: Path, name: str, overrides: list[str] | None, results: str | None) -> Path:
    job = sweep / name
    (job / ".hydra").mkdir(parents=True)
    if overrides is not None:
        (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if results is not None:
        (job / "results.json").write_text(results)
    return job


def test_partial_and_broken_job_dirs_never_break_the_table(tmp_path):
    def run(status: str, acc: float, **extra) -> str:
        return json.dumps({"status": status, "metrics": {"best_val_acc": acc}, **extra})

    fake_job(tmp_path, "0_lr=1,seed=1", ["lr=1", "seed=1"], run("ok", 0.5))
    fake_job(tmp_path, "1_lr=1,seed=2", ["lr=1", "seed=2"], run("diverged", math.nan))
    fake_job(tmp_path, "2_lr=1,seed=3", ["lr=1", "seed=3"], run("failed", 0.9, error="boom\nx"))
    # resumed by `resume=true`: still the same configuration
    fake_job(tmp_path, "3_lr=1,seed=4", ["lr=1", "seed=4", "resume=true"], run("ok", 0.7))
    fake_job(tmp_path, "10_lr=2", None, json.dumps({"metrics": {"best_val_acc": "n/a"}}))
    fake_job(tmp_path, "4_lr=2,seed=1", ["lr=2", "seed=1"], "{not json")
    fake_job(tmp_path, "5_lr=2,seed=2", ["lr=2", "seed=2"], None)
    (tmp_path / "not_a_job").mkdir()

    jobs = collect(tmp_path)
    assert [j.num for j in jobs] == [0, 1, 2, 3, 4, 5, 10]  # launch order, not name order
    statuses = ["ok", "diverged", "failed", "ok", "missing", "missing", "ok"]
    assert [j.status for j in jobs] == statuses
    assert jobs[2].error == "boom\nx" and "unreadable" in jobs[4].error
    assert jobs[6].overrides == [] and jobs[6].metrics == {}
    mean, std, n = group_by_config(jobs)[0].stats("best_val_acc")  # lr=1: the ok seeds only
    assert (mean, n) == (pytest.approx(0.6), 2) and std == pytest.approx(0.1414, abs=1e-4)

    csv_path, md_path = write_results(tmp_path)
    assert len(read_csv(csv_path)) == 7
    markdown = md_path.read_text()
    assert "| 2 | `lr=1 seed=3` | failed |" in markdown and "| boom |" in markdown
    assert "| `lr=1` | 1, 2, 3, 4 | 2/4 |" in markdown
    assert "0.6 ± 0.14 (2)" in markdown


def test_job_dirname_is_safe_short_and_unique():
    assert job_dirname(0, "") == "0"
    assert job_dirname(3, "optimizer=adam,seed=2") == "3_optimizer=adam,seed=2"
    assert job_dirname(1, "data.path=/tmp/a b,~x") == "1_data.path=_tmp_a_b,_x"
    long_a, long_b = "x=" + "a" * 300, "x=" + "a" * 299 + "b"
    name_a, name_b = job_dirname(12, long_a), job_dirname(12, long_b)
    assert len(name_a) <= MAX_OVERRIDES_CHARS + 3 and name_a != name_b


def test_callback_writes_only_for_multiruns_and_never_raises(tmp_path, caplog):
    config = OmegaConf.create(
        {"hydra": {"mode": "RUN", "sweep": {"dir": str(tmp_path)}, "runtime": {"cwd": "/"}}}
    )
    fake_job(tmp_path, "0_lr=1", ["lr=1"], json.dumps({"status": "ok", "metrics": {}}))
    SweepResults().on_job_end(config, job_return=None)
    assert not (tmp_path / "results.csv").exists()
    SweepResults().on_multirun_end(config)
    assert read_csv(tmp_path / "results.csv")[0]["status"] == "ok"
    (tmp_path / "results.md").unlink()
    (tmp_path / "results.md").mkdir()  # cannot be replaced by a file
    SweepResults().on_multirun_end(config)
    assert "could not write the results table" in caplog.text


def test_compare_with_out_leaves_the_sweep_dir_alone(sweep, tmp_path):
    before = {p.name: p.stat().st_mtime_ns for p in sweep.iterdir() if p.is_file()}
    compare = load_compare()
    assert compare.main([str(sweep), "--out", str(tmp_path / "out")]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in sweep.iterdir() if p.is_file()} == before
    assert (tmp_path / "out" / "bars_val_acc.png").read_bytes()[:8] == PNG_SIGNATURE


def test_compare_bars_with_one_seed(sweep):
    """Best val and test per configuration; one seed: no error bar; the axis spans the
    values instead of starting at 0 (0.947 and 0.967 must not look equal)."""
    from neuralab.sweep.plots import bars_figure
    from neuralab.sweep.results import collect

    one_seed = [job for job in collect(sweep) if job.seed == "1"]
    (ax,) = bars_figure(one_seed, "val/acc").axes
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend == ["best_val_acc", "test_acc"]
    assert ax.containers and not any(c.has_xerr for c in ax.containers)
    values = [job.metrics[k] for job in one_seed for k in ("best_val_acc", "test_acc")]
    low, high = ax.get_xlim()
    assert 0 < low <= min(values) and max(values) <= high
    assert "one seed each" in ax.get_xlabel()
    (ax,) = bars_figure(collect(sweep), "val/acc").axes  # two seeds: mean ± std
    assert all(c.has_xerr for c in ax.containers)


def job_config(sweep: Path, num: int, overrides: list[str]) -> DictConfig:
    """What SweepResults reads of a multirun job's config."""
    hydra = {
        "mode": RunMode.MULTIRUN,
        "sweep": {"dir": str(sweep)},
        "runtime": {"cwd": "/", "output_dir": str(sweep / f"{num}_{overrides[0]}")},
        "job": {"num": num},
        "overrides": {"task": overrides},
    }
    return OmegaConf.create({"hydra": hydra, "monitor": {"metric": "val/loss"}})


@pytest.mark.parametrize("raises", [False, True])
def test_jobs_ending_together_write_the_tables_once_at_the_end(tmp_path, raises):
    """A pack's members end inside tables_once(): the table is written once, as the
    block exits, with every job in it, even when the block raises."""
    with contextlib.suppress(KeyboardInterrupt), tables_once():
        for num in range(3):
            config = job_config(tmp_path, num, [f"lr={num + 1}"])
            fake_job(tmp_path, f"{num}_lr={num + 1}", [f"lr={num + 1}"], '{"status": "ok"}')
            SweepResults().on_job_end(config, job_return=None)
            assert not (tmp_path / "results.csv").exists()
        if raises:
            raise KeyboardInterrupt
    rows = read_csv(tmp_path / "results.csv")
    assert [row["overrides"] for row in rows] == ["lr=1", "lr=2", "lr=3"]
    (tmp_path / "results.csv").unlink()
    SweepResults().on_job_end(config, job_return=None)  # outside: written at once again
    assert (tmp_path / "results.csv").is_file()
