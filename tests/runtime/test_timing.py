"""timing.json (runtime/timing.py): its clock agrees with an outside one, and it times
every epoch."""

from __future__ import annotations

import json
import subprocess
import sys
import time

# process_start_time is good to +-10 ms (10 ms clock ticks, centisecond uptime, both
# truncated); /proc/stat's btime, truncated to whole seconds, put the start early by
# the boot time's fraction of a second (0.04 s to 0.9 s on the boots measured here).
RESOLUTION_S = 0.025


def test_process_start_agrees_with_an_outside_clock():
    """The child's start lies between the parent's clock just before it forked the
    child and just after the child was running (Popen returns once exec succeeded).
    A bracket, not a timing: a loaded machine widens it, it cannot break it."""
    code = "from neuralab.runtime.timing import process_start_time; print(process_start_time())"
    before = time.time()
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    after = time.time()
    out, _ = child.communicate(timeout=120)
    assert child.returncode == 0
    started = float(out.strip().splitlines()[-1])
    assert before - RESOLUTION_S <= started <= after + RESOLUTION_S, (before, started, after)


def test_timing_json_times_each_epoch(run_cli):
    run = run_cli("train", "trainer.max_epochs=2", "callbacks.early_stopping=null")
    assert run.code == 0, run.out
    timing = json.loads((run.run_dir / "timing.json").read_text())
    epochs = timing["epoch_train_s"]
    assert len(epochs) == 2 and all(s > 0 for s in epochs), epochs
    # The epochs lie inside the fit window (first step to end of training), but for
    # the first epoch's start, a moment before its first step.
    assert sum(epochs) < timing["train_s"] + 0.1, timing
