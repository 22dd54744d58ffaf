"""What TensorBoard shows for a finished run, read back from its event files.

The run dir is loaded as TensorBoard loads it (every event file in the dir: fit,
test and the final HParams write each add one), with nothing sampled away. The
HParams tab is read from the hparams plugin's own protos. Metrics are logged as
`val/loss` and shown as `curves/val/loss` (runtime/tags.py): `tb()` names the tag.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import train_in
from tensorboard.backend.event_processing import event_file_loader
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from neuralab.runtime.tags import tensorboard_tag as tb

EPOCHS = 3
# The run whose event files most tests read: every hparam differs from its default.
OVERRIDES = [
    "model=mlp_dropout",
    "optimizer=sgd",
    "optimizer.lr=0.05",
    "init=he_normal",
    "model.activation=tanh",
    f"trainer.max_epochs={EPOCHS}",
    "callbacks.early_stopping=null",
]
EXPECTED_HPARAMS = {
    "model": "mlp_dropout",
    "width": 128,
    "depth": 2,
    "activation": "tanh",
    "dropout": 0.5,
    "norm": "none",
    "init": "he_normal",
    "optimizer": "sgd",
    "lr": 0.05,
    "weight_decay": 0.0,
    "scheduler": "none",
    "batch_size": 64,
    "seed": 42,
}
PER_EPOCH = ["train/loss", "train/acc", "val/loss", "val/acc", "train/lr"]
ONCE = ["test/loss", "test/acc"]
# HParams metric columns (display name -> the curve whose last value they show).
HP_METRICS = {
    "best_val_acc": "curves/val/acc_best",
    "final_val_loss": "curves/val/loss",
    "test_acc": "test/acc",
}
SIZE_GUIDANCE = {
    kind: 0
    for kind in ("scalars", "tensors", "histograms", "images", "audio", "compressedHistograms")
}


def train(root: Path, *overrides: str) -> list[Path]:
    """Run neuralab-train in-process from `root`; its run dirs (one per job)."""
    train_in(root, *overrides)
    found = sorted(root.glob("logs/train/runs/*")) + sorted(root.glob("logs/train/multiruns/*/*"))
    return [p for p in found if (p / ".hydra").is_dir()]


def load(run_dir: Path) -> EventAccumulator:
    assert list(run_dir.glob("events.out.tfevents.*")), f"no event files in {run_dir}"
    events = EventAccumulator(str(run_dir), size_guidance=SIZE_GUIDANCE)
    events.Reload()
    return events


def hparams_data(events: EventAccumulator, tag: str) -> plugin_data_pb2.HParamsPluginData:
    metadata = events.SummaryMetadata(tag)
    assert metadata.plugin_data.plugin_name == "hparams"
    return plugin_data_pb2.HParamsPluginData.FromString(metadata.plugin_data.content)


def session_hparams(events: EventAccumulator) -> dict[str, object]:
    """The run's row of the HParams table: name -> number or string."""
    info = hparams_data(events, "_hparams_/session_start_info").session_start_info
    return {k: getattr(v, v.WhichOneof("kind")) for k, v in info.hparams.items()}


def results_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def events_in(path: Path) -> list:
    return list(event_file_loader.EventFileLoader(str(path)).Load())


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    (found,) = train(tmp_path_factory.mktemp("tb"), *OVERRIDES)
    return found


@pytest.fixture(scope="module")
def events(run_dir) -> EventAccumulator:
    return load(run_dir)


def test_scalars_once_per_epoch(events):
    scalars = events.Tags()["scalars"]
    for name in PER_EPOCH + ONCE:
        assert tb(name) in scalars, f"{tb(name)} not in {scalars}"
    for name in PER_EPOCH:
        steps = [e.step for e in events.Scalars(tb(name))]
        assert len(steps) == EPOCHS, (name, steps)
        assert steps == sorted(set(steps)), (name, steps)  # one point per epoch, in order
    for name in ONCE:
        assert len(events.Scalars(tb(name))) == 1, name
    assert [e.value for e in events.Scalars(tb("train/lr"))] == pytest.approx([0.05] * EPOCHS)


def test_one_epoch_tag_and_no_summary_charts(events, run_dir):
    scalars = events.Tags()["scalars"]
    assert "epoch" not in scalars  # Lightning's own: `epochs` counts them
    assert [e.value for e in events.Scalars("epochs")] == list(range(1, EPOCHS + 1))
    assert results_of(run_dir)["epochs"] == EPOCHS
    assert not [t for t in scalars if t.startswith("hp")]  # no single-point charts
    assert not (run_dir / "hparams.yaml").exists()  # nothing saved by the module: no `{}`


def test_tag_groups_as_tensorboard_sorts_them(events):
    """TensorBoard groups by the text before the first `/`, alphabetically: the
    learning curves (train and val, with the lr) first, diagnostics after."""
    tags = events.Tags()
    every = tags["scalars"] + tags["histograms"] + tags["images"]
    groups = sorted({tag.partition("/")[0] for tag in every})
    assert groups == ["curves", "diagnostics", "epochs", "test"], groups
    first = sorted(t for t in tags["scalars"] if t.startswith("curves/"))
    for name in ("train/loss", "train/acc", "val/loss", "val/acc", "train/lr"):
        assert f"curves/{name}" in first, first


def test_custom_scalars_put_train_and_val_on_one_chart(events):
    from tensorboard.plugins.custom_scalar import layout_pb2

    (event,) = events.Tensors("custom_scalars__config__")
    layout = layout_pb2.Layout.FromString(event.tensor_proto.string_val[0])
    charts = {chart.title: list(chart.multiline.tag) for c in layout.category for chart in c.chart}
    assert charts["loss"] == ["^curves/(train|val)/loss$"]
    assert charts["acc"] == ["^curves/(train|val)/acc$"]


def test_scalars_match_results(events, run_dir):
    metrics = results_of(run_dir)["metrics"]
    assert events.Scalars("test/acc")[0].value == pytest.approx(metrics["test_acc"], rel=1e-6)
    assert events.Scalars("test/loss")[0].value == pytest.approx(metrics["test_loss"], rel=1e-6)
    last_val = events.Scalars(tb("val/loss"))[-1].value
    assert last_val == pytest.approx(metrics["final_val_loss"], rel=1e-6)


def test_model_graph_logged(events, run_dir):
    assert events.Tags()["graph"] is True
    # Once: Lightning asks at the start of fit and again of test (one trace each).
    graphs = [e for f in run_dir.glob("events.out.tfevents.*") for e in events_in(f)]
    assert sum(e.HasField("graph_def") for e in graphs) == 1
    graph = events.Graph()
    assert len(graph.node) > 0
    ops = {node.op for node in graph.node}
    assert any("Linear" in op or "linear" in op or "addmm" in op for op in ops), ops


def test_graph_nests_the_nets_ops_under_the_nets_node(events):
    """The net's ops live under the net's scope (`.../MLP[net]/...`), not in a sibling
    copy beside a node holding only its weights."""
    nodes = events.Graph().node
    linear = [n.name for n in nodes if "linear" in n.op or "addmm" in n.op]
    assert linear, [(n.name, n.op) for n in nodes]
    assert all("[net]/" in name for name in linear), linear


def test_hparams_session_holds_resolved_values(events, run_dir):
    row = session_hparams(events)
    for name, value in EXPECTED_HPARAMS.items():
        assert name in row, f"{name} missing from the HParams row {sorted(row)}"
        if isinstance(value, str):
            assert row[name] == value, name
        else:
            assert row[name] == pytest.approx(value), name
    # The row is results.json's hparams, column for column.
    expected = results_of(run_dir)["hparams"]
    assert set(row) == set(expected)
    for name, value in expected.items():
        assert row[name] == (value if isinstance(value, str) else pytest.approx(float(value)))


def test_hparams_experiment_of_a_single_run(events):
    experiment = hparams_data(events, "_hparams_/experiment").experiment
    metrics = {info.display_name: info.name.tag for info in experiment.metric_infos}
    assert HP_METRICS.items() <= metrics.items(), metrics
    # The monitored metric's best first (monitor.metric: val/loss), then the test values.
    assert list(metrics)[0] == "best_val_loss"
    assert list(metrics)[1].startswith("test_"), list(metrics)
    infos = {info.name: info for info in experiment.hparam_infos}
    assert {"model", "lr", "optimizer", "seed"} <= set(infos)
    # Shown by default: what the command set, and data/model/optimizer/lr.
    shown = {name for name, info in infos.items() if info.differs}
    assert shown == {"data", "model", "optimizer", "lr", "init", "activation", "max_epochs"}


def test_hparams_metric_curves_end_at_the_results(events, run_dir):
    metrics = results_of(run_dir)["metrics"]
    scalars = events.Tags()["scalars"]
    assert "hp_metric" not in scalars  # no -1 placeholder row
    for name, tag in HP_METRICS.items():
        assert tag in scalars, tag
        assert events.Scalars(tag)[-1].value == pytest.approx(metrics[name], rel=1e-6), tag


def test_multirun_each_job_has_its_own_tensorboard_row(tmp_path):
    jobs = train(
        tmp_path,
        "-m",
        "optimizer=sgd,adam",
        "data=iris",
        "trainer.max_epochs=2",
        "callbacks.early_stopping=null",
    )
    assert [job.name.partition("_")[0] for job in jobs] == ["0", "1"]  # <num>_<overrides>
    rows = []
    for job in jobs:
        events = load(job)
        scalars = events.Tags()["scalars"]
        for name in PER_EPOCH:
            assert len(events.Scalars(tb(name))) == 2, (job.name, name)
        for name in ONCE:
            assert len(events.Scalars(tb(name))) == 1, (job.name, name)
        assert events.Tags()["graph"] is True
        metrics = results_of(job)["metrics"]
        for name, tag in HP_METRICS.items():
            assert tag in scalars, (job.name, tag)
            assert events.Scalars(tag)[-1].value == pytest.approx(metrics[name], rel=1e-6)
        # The sweep's one experiment summary is in the sweep dir, none in the jobs.
        assert "_hparams_/experiment" not in events.Tags()["tensors"]
        rows.append(session_hparams(events))
    assert [row["optimizer"] for row in rows] == ["sgd", "adam"]
    assert all(row["data"] == "iris" for row in rows)


@pytest.mark.parametrize("every_s, flushes", [(0.0, 3), (3600.0, 1)])
def test_the_event_file_is_flushed_at_most_every_flush_every_s(tmp_path, every_s, flushes):
    from neuralab.runtime.loggers import TensorBoardLogger

    logger = TensorBoardLogger(tmp_path, name="", version="", flush_every_s=every_s)
    calls = []
    logger.experiment.flush = lambda: calls.append(1)
    for step in range(3):  # what Lightning does after every log_metrics
        logger.log_metrics({"val/loss": 1.0 / (step + 1)}, step=step)
        logger.save()
    assert len(calls) == flushes
