"""The console scripts leave without Python's teardown (runtime/quick_exit.py), and what
a normal exit would still have done is done: exit code, threads, atexit, output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

TRAIN = str(Path(sys.executable).parent / "neuralab-train")

PROBE = """
import atexit, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from neuralab.runtime.quick_exit import quick_exit

def late():
    time.sleep(0.2)
    Path("thread.txt").write_text("joined")

def main():
    atexit.register(lambda: Path("atexit.txt").write_text("ran"))
    threading.Thread(target=late).start()
    ThreadPoolExecutor(1).submit(time.sleep, 0.1)  # never shut down: the exit stops it
    sys.stdout.write("unflushed output")
    sys.exit(CODE)

quick_exit(main)()
"""


@pytest.mark.parametrize("code, expected", [("3", 3), ("None", 0), ("'a message'", 1)])
def test_what_a_normal_exit_does_is_done(tmp_path, code, expected):
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.replace("CODE", code)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == expected, proc.stderr
    assert proc.stdout == "unflushed output"
    assert (tmp_path / "thread.txt").read_text() == "joined"
    assert (tmp_path / "atexit.txt").read_text() == "ran"
    if expected == 1:
        assert proc.stderr.strip() == "a message"


def test_the_console_script_ends_quickly_with_its_run_complete(tmp_path):
    """A whole run through `neuralab-train`: exit 0, its files complete (results.json,
    a TensorBoard event file that reads back), and its refusals keep exit code 2."""
    run = subprocess.run(
        [TRAIN, "trainer.max_epochs=1", "callbacks.diagnostics=null"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    (results,) = tmp_path.rglob("results.json")
    assert json.loads(results.read_text())["status"] == "ok"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = set()
    for events in tmp_path.rglob("events.out.tfevents.*"):
        tags |= set(EventAccumulator(str(events)).Reload().Tags()["scalars"])
    assert "curves/val/loss" in tags
    refused = subprocess.run(
        [TRAIN, "optimizer.lr=-1"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert refused.returncode == 2 and "optimizer.lr" in refused.stderr + refused.stdout
