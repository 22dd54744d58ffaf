"""What a run prints when its output goes to a file: one line per epoch with the train
and val values and no progress-bar frames; none of Lightning's tips or device lines; in
a multirun the model summary and checkpoint lines once, and one line per finished job."""

from __future__ import annotations

import re
import sys

from conftest import run_subprocess

TRAIN = [sys.executable, "-m", "neuralab.train"]
QUICK = ["data=iris", "callbacks.early_stopping=null"]
EPOCH_LINE = re.compile(r"epoch (\d+)/(\d+)  (.*)")


def epoch_lines(out: str) -> list[re.Match]:
    return [m for line in out.splitlines() if (m := EPOCH_LINE.search(line))]


def test_a_run_to_a_file_prints_a_line_per_epoch_and_no_bar_frames(tmp_path):
    run = run_subprocess([*TRAIN, *QUICK, "trainer.max_epochs=3"], tmp_path)
    assert run.code == 0, run.out[-3000:]
    lines = epoch_lines(run.out)
    assert [(m.group(1), m.group(2)) for m in lines] == [("1", "3"), ("2", "3"), ("3", "3")]
    for m in lines:
        for name in ("train/loss", "train/acc", "val/loss", "val/acc"):
            assert re.search(rf"{name} \d\.\d{{4}}", m.group(3)), m.group(0)
    assert "\r" not in run.out and "it/s" not in run.out  # no bar frames
    assert "Tip:" not in run.out and "GPU available" not in run.out
    assert "├── data" not in run.out  # the config tree is in config_tree.log


def test_a_multirun_prints_repeats_once_and_a_line_per_job(tmp_path):
    run = run_subprocess([*TRAIN, "-m", *QUICK, "trainer.max_epochs=1", "seed=1,2"], tmp_path)
    assert run.code == 0, run.out[-3000:]
    assert len(re.findall(r"[|┃] Name ", run.out)) == 1, run.out  # the model summary
    assert run.out.count("Loaded model weights") <= 1
    for num, seed in ((0, 1), (1, 2)):
        assert re.search(rf"job {num} .*seed={seed}.*: ok, best_val_loss=\d", run.out), run.out
