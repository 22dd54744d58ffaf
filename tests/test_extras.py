"""Debug presets that leave something to look at (debug=profile, debug=anomaly) and the
config tree printed at start (extras.print_config), all through the real CLI."""

from __future__ import annotations

import io

import pytest
import yaml
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import OmegaConf
from rich.console import Console

from neuralab.runtime.print_config import CONFIG_TREE, config_tree, print_config

POISON = (  # NaN weights just before step 2 (the fault debug=diverge uses)
    "+callbacks.poison_weights._target_=neuralab.runtime.faults.PoisonWeights",
    "+callbacks.poison_weights.at_step=2",
)


def _render(cfg) -> str:
    out = io.StringIO()
    Console(file=out, width=120, no_color=True).print(config_tree(cfg))
    return out.getvalue()


def test_profile_writes_reports_into_the_run_dir_and_prints_the_tree(run_cli):
    run = run_cli(
        "train", "debug=profile", "trainer.limit_train_batches=5", "extras.print_config=true"
    )
    assert run.code == 0, run.out[-3000:]
    for stage in ("fit", "test"):
        report = (run.run_dir / f"{stage}-profile.txt").read_text()
        assert f"{stage.upper()} Profiler Report" in report
        assert "Mean duration" in report
    assert "run_training_batch" in (run.run_dir / "fit-profile.txt").read_text()

    # extras.print_config=true: the tree on stdout and in the run dir
    saved = (run.run_dir / CONFIG_TREE).read_text()
    for text in (run.out, saved):
        assert "config" in text and "├── data" in text
        assert "SimpleProfiler" in text  # the composed config, the preset included
    order = [saved.index(f"── {group}\n") for group in ("data", "model", "optimizer", "trainer")]
    assert order == sorted(order)
    assert "seed: 42" in saved


# anomaly mode also warns with the forward traceback: expected here
@pytest.mark.filterwarnings("ignore:Error detected in")
def test_anomaly_mode_names_the_backward_op_that_made_a_nan(run_cli):
    """Without anomaly mode this run ends `diverged` (exit 3); with it autograd stops at
    the first NaN gradient and names the operation (exit 1, status failed)."""
    run = run_cli("train", "debug=anomaly", *POISON, "extras.print_config=false")
    saved = yaml.safe_load((run.run_dir / ".hydra" / "config.yaml").read_text())
    assert saved["trainer"]["detect_anomaly"] is True
    assert run.code == 1, run.out[-3000:]
    results = run.results()
    assert results["status"] == "failed", results
    assert "returned nan values" in results["error"]


def test_the_tree_is_saved_but_not_printed_by_default(run_cli):
    run = run_cli("train", "debug=fast")
    assert run.code == 0, run.out[-3000:]
    assert "├── data" not in run.out
    assert "├── data" in (run.run_dir / CONFIG_TREE).read_text()


def test_tree_shows_what_cannot_be_resolved_instead_of_failing():
    cfg = OmegaConf.create(
        {
            "seed": 7,
            "trainer": {"max_epochs": 3, "root": "${nosuch.key}"},
            "model": {"width": "???", "depth": "${trainer.max_epochs}", "sizes": [1, 2]},
        }
    )
    text = _render(cfg)
    assert "width: ???" in text
    assert "root: ${nosuch.key}" in text  # shown as written
    assert "depth: 3" in text  # resolved where it can be
    assert text.index("── model") < text.index("── trainer")  # groups in ORDER, not as given
    assert "seed: 7" in text


def test_only_rank_zero_prints(tmp_path, capsys, monkeypatch):
    cfg = OmegaConf.create({"model": {"width": 4}})
    monkeypatch.setattr(rank_zero_only, "rank", 1)
    print_config(cfg, tmp_path)
    assert capsys.readouterr().out == ""
    assert not (tmp_path / CONFIG_TREE).exists()
    monkeypatch.setattr(rank_zero_only, "rank", 0)
    print_config(cfg, tmp_path)
    assert "width: 4" in capsys.readouterr().out
    assert "width: 4" in (tmp_path / CONFIG_TREE).read_text()


def test_a_multirun_prints_the_tree_for_its_first_job_only(run_cli):
    run = run_cli(
        "train", "-m", "data=iris", "trainer.max_epochs=1", "seed=1,2,3", "extras.print_config=true"
    )
    assert run.code == 0, run.out[-3000:]
    assert len(run.run_dirs()) == 3
    trees = [d.name for d in run.run_dirs() if (d / CONFIG_TREE).is_file()]
    assert len(trees) == 1 and trees[0].startswith("0_")
    assert run.out.count("checkpoint_fsync") == 1  # a key of the tree, printed once
