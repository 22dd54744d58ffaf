"""The HParams tab: each run's row, and the experiment summary that sets its columns.

TensorBoard's HParams tab takes its columns from one experiment summary, the first it
finds; Lightning's `log_hyperparams` writes one per run, and TensorBoard, told nothing
about what differs, opens on the first five hparams alphabetically. neuralab writes:

- per run, at its end: the session (its flat hparams, runtime/hparams.py) and status.
  The metric columns point at the run's own curves, whose last value is the summary
  value (`curves/val/acc_best` ends at best_val_acc; `test/acc` is test_acc): no
  single-point `hp/*` charts beside them;
- a single run: an experiment summary in its own dir, with the hparams its command
  set (and data, model, optimizer, lr) marked as the ones to show;
- a sweep: one summary in the sweep dir, rewritten after every job from the jobs'
  results.json (sweep/callback.py); its jobs write none. The hparams that vary across
  the jobs are marked as differing (TensorBoard lists and shows those first), text
  hparams carry the values the jobs took (a filter checkbox each), numbers their range.

Metrics come in the order a reader wants them: the monitored metric's best value, the
test values, then the other best, final val and final train values.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only

from neuralab.runtime.loggers import write_summary
from neuralab.runtime.tags import tensorboard_tag

if TYPE_CHECKING:  # TensorBoard's protos, imported where they are built
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.hparams.api_pb2 import HParamInfo

SWEEP_EVENTS = "events.out.tfevents.sweep_hparams"  # TensorBoard reads any *tfevents* file
HEADLINE = ("data", "model", "optimizer", "lr")  # shown for a single run
METRIC_ORDER = ("test_", "best_val_", "final_val_", "final_train_")


def metric_order(names: Iterable[str], objective: str | None) -> list[str]:
    """The objective (best_val_<monitored>) first, then by METRIC_ORDER, then by name."""

    def rank(name: str) -> tuple[int, str]:
        if name == objective:
            return (-1, name)
        prefix = next((i for i, p in enumerate(METRIC_ORDER) if name.startswith(p)), None)
        return (len(METRIC_ORDER) if prefix is None else prefix, name)

    return sorted(set(names), key=rank)


def metric_tags(sources: Mapping[str, str]) -> dict[str, str]:
    """{summary name: TensorBoard tag of the curve it is the last value of}."""
    return {name: tensorboard_tag(logged) for name, logged in sources.items()}


def _metric_infos(tags: Mapping[str, str], objective: str | None) -> list:
    from tensorboard.plugins.hparams import api_pb2

    return [
        api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tags[name]), display_name=name)
        for name in metric_order(tags, objective)
    ]


def _hparam_info(name: str, values: list, differs: bool, domain: bool) -> HParamInfo:
    """One column: its type from the values; with `domain`, the values (text, bool) or
    their range (numbers) the jobs took."""
    from tensorboard.plugins.hparams import api_pb2

    info = api_pb2.HParamInfo(name=name, differs=differs)
    if all(isinstance(v, bool) for v in values):
        info.type = api_pb2.DATA_TYPE_BOOL
        if domain:
            info.domain_discrete.extend(sorted(set(values)))
    elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        info.type = api_pb2.DATA_TYPE_FLOAT64
        if domain:
            info.domain_interval.min_value = float(min(values))
            info.domain_interval.max_value = float(max(values))
    else:
        info.type = api_pb2.DATA_TYPE_STRING
        if domain:
            info.domain_discrete.extend(sorted({str(v) for v in values}))
    return info


def sweep_experiment(
    jobs: list[tuple[Mapping, Mapping[str, str]]], objective: str | None
) -> Summary:
    """The summary of a sweep from its jobs' (hparams, metric tags): varying hparams
    first (in the jobs' column order), then the constant ones."""
    values: dict[str, list] = {}
    tags: dict[str, str] = {}
    for hparams, job_tags in jobs:
        for name, value in hparams.items():
            values.setdefault(name, []).append(value)
        tags.update(job_tags)
    varying = [n for n, vs in values.items() if len({repr(v) for v in vs}) > 1]
    names = varying + [n for n in values if n not in varying]
    infos = [_hparam_info(n, values[n], n in varying, domain=True) for n in names]
    return _experiment(infos, _metric_infos(tags, objective))


def run_experiment(
    hparams: Mapping, tags: Mapping[str, str], objective: str | None, overrides: list[str]
) -> Summary:
    """The summary of a single run: what its command set, and the headline, shown.
    No value domains: other single runs under the same --logdir must not be filtered out."""
    shown = set(HEADLINE) | {c for o in overrides for c in _columns_of(o, hparams)}
    names = [n for n in hparams if n in shown] + [n for n in hparams if n not in shown]
    infos = [_hparam_info(n, [hparams[n]], n in shown, domain=False) for n in names]
    return _experiment(infos, _metric_infos(tags, objective))


# TensorBoard's own helpers (tensorboard.plugins.hparams.summary) need TensorFlow: the
# same protos, built here as torch's SummaryWriter builds its own.
def _summary(tag: str, **plugin_data: object) -> Summary:
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.compat.proto.tensor_pb2 import TensorProto
    from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
    from tensorboard.plugins.hparams import metadata, plugin_data_pb2

    meta = metadata.create_summary_metadata(plugin_data_pb2.HParamsPluginData(**plugin_data))
    empty = TensorProto(dtype="DT_FLOAT", float_val=[0.0], tensor_shape=TensorShapeProto())
    return Summary(value=[Summary.Value(tag=tag, metadata=meta, tensor=empty)])


def _experiment(hparam_infos: list, metric_infos: list) -> Summary:
    from tensorboard.plugins.hparams import api_pb2, metadata

    experiment = api_pb2.Experiment(
        time_created_secs=time.time(), hparam_infos=hparam_infos, metric_infos=metric_infos
    )
    return _summary(metadata.EXPERIMENT_TAG, experiment=experiment)


def _session(hparams: Mapping) -> tuple[Summary, Summary]:
    """The run's row (session start) and its status (session end), as two summaries."""
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    start = plugin_data_pb2.SessionStartInfo(start_time_secs=time.time())
    for name, value in hparams.items():
        if isinstance(value, bool):
            start.hparams[name].bool_value = value
        elif isinstance(value, int | float):
            start.hparams[name].number_value = value
        else:
            start.hparams[name].string_value = str(value)
    end = plugin_data_pb2.SessionEndInfo(status=api_pb2.STATUS_SUCCESS, end_time_secs=time.time())
    return (
        _summary(metadata.SESSION_START_INFO_TAG, session_start_info=start),
        _summary(metadata.SESSION_END_INFO_TAG, session_end_info=end),
    )


def _columns_of(override: str, hparams: Mapping) -> set[str]:
    """The columns an override sets: `optimizer=sgd` -> optimizer, `optimizer.lr=..` ->
    lr, `model.width=..` -> width or model.width (a forker's net)."""
    key = override.partition("=")[0].lstrip("+~")
    last = key.rpartition(".")[2]
    return {c for c in (key, last, f"model.{last}", f"module.{last}") if c in hparams}


@rank_zero_only  # other ranks' loggers write nothing (their experiment is a dummy)
def write_hparams(
    loggers: list,
    hparams: Mapping,
    tags: Mapping[str, str],
    objective: str | None,
    overrides: list[str] | None,
) -> None:
    """The run's HParams row; for a single run (`overrides`: its command's), also the
    experiment summary (a sweep's is written for all its jobs: sweep/callback.py)."""
    experiment = None
    if overrides is not None:
        experiment = run_experiment(hparams, tags, objective, overrides)
    for logger in loggers:
        if not isinstance(logger, TensorBoardLogger):
            continue
        writer = logger.experiment
        for summary in ([experiment] if experiment is not None else []) + [*_session(hparams)]:
            write_summary(writer, summary, 0)
        writer.flush()


def write_sweep(sweep_dir: Path, experiment: object) -> Path:
    """The sweep's summary as its own event file, replaced whole (TensorBoard keeps the
    first summary of a tag it reads, so appending a newer one would not count)."""
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.summary.writer.record_writer import RecordWriter

    path = Path(sweep_dir) / SWEEP_EVENTS
    tmp = path.with_name(".sweep_hparams.tmp")  # no "tfevents": never read half-written
    now = time.time()
    with open(tmp, "wb") as file:
        records = RecordWriter(file)
        records.write(Event(wall_time=now, file_version="brain.Event:2").SerializeToString())
        records.write(Event(wall_time=now, step=0, summary=experiment).SerializeToString())
        records.flush()
    tmp.replace(path)
    return path
