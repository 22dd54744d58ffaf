"""A real TensorBoard server over a finished 2-job multirun, asked through its HTTP data API.

The server is `python -m tensorboard.main` on 127.0.0.1 and a free port, started
here and always stopped here. Run names are the job dir names, which read as
the jobs' overrides.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from conftest import train_in
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

SWEEP = ["optimizer=sgd,adam", "data=iris", "trainer.max_epochs=2", "callbacks.early_stopping=null"]
RUNS = [
    "0_callbacks.early_stopping=null,data=iris,optimizer=sgd,trainer.max_epochs=2",
    "1_callbacks.early_stopping=null,data=iris,optimizer=adam,trainer.max_epochs=2",
]
SCALARS = ["train/loss", "train/acc", "val/loss", "val/acc", "test/acc"]
HP_METRICS = ["hp/best_val_acc", "hp/final_val_loss", "hp/test_acc"]
STARTUP_TIMEOUT_S = 30
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def multirun(root: Path, *overrides: str) -> Path:
    """Run `neuralab-train -m ...` in-process from `root`; the sweep dir."""
    train_in(root, "-m", *overrides)
    (sweep,) = (root / "logs" / "train" / "multiruns").iterdir()
    return sweep


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, body: dict | None = None, raw: bool = False):
    """GET (or POST JSON when `body` is given); the decoded JSON answer, or the bytes."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        payload = response.read()
    return payload if raw else json.loads(payload)


def loaded(url: str) -> bool:
    """Both runs listed and their last event file (the HParams write) read."""
    try:
        if sorted(get(f"{url}/data/runs")) != RUNS:
            return False
        tags = get(f"{url}/data/plugin/scalars/tags")
    except (urllib.error.URLError, ConnectionError, ValueError):
        return False
    return all(set(HP_METRICS) <= set(tags.get(run, {})) for run in RUNS)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    return multirun(tmp_path_factory.mktemp("tb_sweep"), *SWEEP)


@pytest.fixture(scope="module")
def server(sweep, tmp_path_factory):
    """The URL of a TensorBoard serving the sweep dir; stopped after the module's tests."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("tb_server") / "tensorboard.log"
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(sweep)]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("w") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            while not loaded(url):
                assert proc.poll() is None, f"tensorboard exited: {log_path.read_text()}"
                assert time.monotonic() < deadline, f"not loaded in time: {log_path.read_text()}"
                time.sleep(0.5)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def results_of(sweep: Path, run: str) -> dict:
    return json.loads((sweep / run / "results.json").read_text())


def test_runs_are_named_by_their_overrides(server):
    assert sorted(get(f"{server}/data/runs")) == RUNS


def test_scalar_tags_of_both_runs(server):
    tags = get(f"{server}/data/plugin/scalars/tags")
    for run in RUNS:
        assert set(SCALARS + HP_METRICS) <= set(tags[run]), (run, sorted(tags[run]))


def test_hparams_experiment_lists_hparams_and_metrics(server):
    experiment = get(f"{server}/data/plugin/hparams/experiment", {"experimentName": ""})
    hparams = {info["name"] for info in experiment["hparamInfos"]}
    assert {"model", "optimizer", "lr", "activation", "init", "seed"} <= hparams, hparams
    metrics = {info["name"]["tag"] for info in experiment["metricInfos"]}
    assert set(HP_METRICS) <= metrics, metrics


def test_hparams_sessions_hold_real_metric_values(server, sweep):
    request = {
        "experimentName": "",
        "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"],
        "colParams": [{"metric": {"tag": tag, "group": ""}} for tag in HP_METRICS]
        + [{"hparam": "optimizer"}],
        "startIndex": 0,
        "sliceSize": 100,
    }
    groups = get(f"{server}/data/plugin/hparams/session_groups", request)["sessionGroups"]
    assert sorted(group["name"] for group in groups) == RUNS
    for group in groups:
        results = results_of(sweep, group["name"])
        assert group["hparams"]["optimizer"] == results["hparams"]["optimizer"]
        values = {m["name"]["tag"]: m["value"] for m in group["metricValues"]}
        for tag in HP_METRICS:
            assert values[tag] != -1, tag
            expected = results["metrics"][tag.removeprefix("hp/")]
            assert values[tag] == pytest.approx(expected, rel=1e-6), tag


def image_tags(job_dir: Path) -> set[str]:
    events = EventAccumulator(str(job_dir), size_guidance={"images": 1})
    events.Reload()
    return set(events.Tags()["images"])


def test_images_are_served(server, sweep):
    served = get(f"{server}/data/plugin/images/tags")
    assert isinstance(served, dict)
    for run in RUNS:
        logged = image_tags(sweep / run)
        assert logged <= set(served.get(run, {})), (run, logged, served)
        for tag in sorted(logged)[:1]:  # one image per run, fetched as the dashboard does
            query = urllib.parse.urlencode({"run": run, "tag": tag, "sample": 0})
            (entry, *_) = get(f"{server}/data/plugin/images/images?{query}")
            image = get(f"{server}/data/plugin/images/individualImage?{entry['query']}", raw=True)
            assert image[:8] == PNG_SIGNATURE, (run, tag)
