"""A real TensorBoard server over a finished 2x2 multirun, asked through its HTTP data API.

The server is `python -m tensorboard.main` on 127.0.0.1 and a free port, started
here and always stopped here. Run names are the job dir names, which read as
the overrides that vary across the sweep; the sweep dir itself (run `.`) holds the
sweep's HParams experiment summary.
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

SWEEP = [
    "model=mlp,mlp_batchnorm",
    "optimizer=sgd,adam",
    "data=iris",
    "trainer.max_epochs=2",
    "callbacks.early_stopping=null",
]
# Constant overrides (data=iris, ...) stay out of the names: results.md has them.
RUNS = [
    "0_model=mlp,optimizer=sgd",
    "1_model=mlp,optimizer=adam",
    "2_model=mlp_batchnorm,optimizer=sgd",
    "3_model=mlp_batchnorm,optimizer=adam",
]
SWEEP_RUN = "."  # the sweep dir: the experiment summary
SCALARS = ["curves/train/loss", "curves/train/acc", "curves/val/loss", "curves/val/acc", "test/acc"]
# HParams metric columns: display name -> the curve whose last value is shown.
HP_METRICS = {
    "best_val_acc": "curves/val/acc_best",
    "final_val_loss": "curves/val/loss",
    "test_acc": "test/acc",
}
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
        if sorted(get(f"{url}/data/runs")) != [SWEEP_RUN, *RUNS]:
            return False
        tags = get(f"{url}/data/plugin/scalars/tags")
    except (urllib.error.URLError, ConnectionError, ValueError):
        return False
    return all(set(HP_METRICS.values()) <= set(tags.get(run, {})) for run in RUNS)


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


def test_runs_are_named_by_their_varying_overrides(server, sweep):
    assert sorted(get(f"{server}/data/runs")) == [SWEEP_RUN, *RUNS]
    header = (sweep / "results.md").read_text()
    assert "data=iris" in header  # what every job shares is stated once


def test_scalar_tags_of_every_run(server):
    tags = get(f"{server}/data/plugin/scalars/tags")
    for run in RUNS:
        assert set(SCALARS + list(HP_METRICS.values())) <= set(tags[run]), (run, tags[run])
        assert not [t for t in tags[run] if t.startswith("hp/")]


def test_hparams_experiment_shows_the_swept_hparams_first(server):
    experiment = get(f"{server}/data/plugin/hparams/experiment", {"experimentName": ""})
    infos = experiment["hparamInfos"]
    names = [info["name"] for info in infos]
    differing = [info["name"] for info in infos if info.get("differs")]
    # Swept (model, optimizer) and what they change (lr: each optimizer's default; norm:
    # mlp_batchnorm's) come first and are the ones shown; the rest follow.
    assert differing == ["lr", "model", "norm", "optimizer"], differing
    assert names[: len(differing)] == differing, names
    assert {"activation", "init", "seed", "data"} <= set(names[len(differing) :])
    by_name = {info["name"]: info for info in infos}
    # Text hparams list their values: TensorBoard offers a filter per value.
    assert by_name["model"]["domainDiscrete"] == ["mlp", "mlp_batchnorm"]
    assert by_name["optimizer"]["domainDiscrete"] == ["adam", "sgd"]
    assert by_name["data"]["domainDiscrete"] == ["iris"]
    assert by_name["lr"]["domainInterval"] == {"minValue": 0.001, "maxValue": 0.1}
    # Metrics: the monitored metric's best (monitor.metric: val/loss), then the test values.
    metrics = [info["displayName"] for info in experiment["metricInfos"]]
    assert metrics[0] == "best_val_loss", metrics
    assert metrics[1:3] == ["test_acc", "test_loss"], metrics
    tags = {info["displayName"]: info["name"]["tag"] for info in experiment["metricInfos"]}
    assert HP_METRICS.items() <= tags.items(), tags


def test_hparams_sessions_hold_real_metric_values(server, sweep):
    request = {
        "experimentName": "",
        "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"],
        "colParams": [{"metric": {"tag": tag, "group": ""}} for tag in HP_METRICS.values()]
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
        for name, tag in HP_METRICS.items():
            assert values[tag] == pytest.approx(results["metrics"][name], rel=1e-6), tag


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
