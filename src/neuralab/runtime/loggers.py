"""Lightning's TensorBoardLogger, cheaper per call: one event per `log_metrics`, and the
event file flushed at most every few seconds.

Lightning writes one event per value (`add_scalar`: a protobuf and a queue put, ~15 us
each); the diagnostics log 9-12 values at a time, hundreds of times an epoch on larger
data. Here a call writes one event holding all its values, which TensorBoard reads
the same way.

Lightning calls `logger.save()` after every `log_metrics` (twice an epoch here: train
and val), and TensorBoardLogger.save() flushes the event file and checks for
hparams.yaml through fsspec: about a millisecond each time, a sizeable share of a
~9 ms digits epoch. Flushing every `flush_every_s` seconds keeps the dashboard live;
a checkpoint write and the end of the run (finalize) always flush, so the events of
every checkpointed step are on disk: a run killed and resumed shows no gap.

What it shows (runtime/tags.py): scalars under the tags TensorBoard groups first
(`curves/val/loss`), Lightning's `epoch` left out (`epochs` counts them), and, with the
first validation values, a Custom Scalars layout that draws train and val of each
metric on one chart. The HParams summaries are neuralab's (runtime/hparams_tab.py):
`log_hyperparams` only keeps what a module saved, for hparams.yaml, which is written
only when there is something in it.
"""

from __future__ import annotations

import io
import os
import time
from argparse import Namespace
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lightning.pytorch.core.saving import save_hparams_to_yaml
from lightning.pytorch.loggers import TensorBoardLogger as LightningTensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only

from neuralab.runtime import event_checksums, event_writes
from neuralab.runtime.lightning_internals import tag_prefix
from neuralab.runtime.tags import CURVES, LIGHTNING_EPOCH, tensorboard_tag

if TYPE_CHECKING:
    import numpy as np
    from torch import Tensor
    from torch.utils.tensorboard import SummaryWriter


class TensorBoardLogger(LightningTensorBoardLogger):
    def __init__(self, *args: Any, flush_every_s: float = 5.0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        event_checksums.install()  # before the event file's first record
        event_writes.install()
        self.flush_every_s = flush_every_s
        self._last_flush = float("-inf")
        self._layout_written = False

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        metrics = {k: v for k, v in metrics.items() if k != LIGHTNING_EPOCH}
        scalars = {k: v for k, v in metrics.items() if not isinstance(v, Mapping)}
        if len(scalars) < len(metrics):  # add_scalars groups: Lightning's way
            super().log_metrics({k: v for k, v in metrics.items() if k not in scalars}, step)
        if scalars:
            prefix = tag_prefix(self)
            prefix = f"{prefix}{self.LOGGER_JOIN_CHAR}" if prefix else ""
            tags = {prefix + tensorboard_tag(k): v for k, v in scalars.items()}
            write_scalars(self.experiment, tags, step)
            if not self._layout_written:
                self._write_layout(list(scalars))

    def _write_layout(self, names: list[str]) -> None:
        """Train and val of each metric on one Custom Scalars chart, written once (its
        metric names are known from the first validation: `val/<name>`)."""
        metrics = sorted({n[4:] for n in names if n.startswith("val/") and "/" not in n[4:]})
        metrics = [m for m in metrics if not m.endswith("_best")]
        if not metrics:
            return
        self._layout_written = True
        charts = {m: ["Multiline", [f"^{CURVES}/(train|val)/{m}$"]] for m in metrics}
        self.experiment.add_custom_scalars({"train vs val": charts})

    @rank_zero_only
    def log_hyperparams(self, params: Any, metrics: Any = None, step: int | None = None) -> None:
        """Kept for hparams.yaml; the HParams tab is written at the end of the run
        (runtime/hparams_tab.py): one summary per run, with the sweep's in mind."""
        self.hparams.update(vars(params) if isinstance(params, Namespace) else dict(params))

    @rank_zero_only
    def save(self) -> None:
        now = time.monotonic()
        if now - self._last_flush >= self.flush_every_s:
            self._last_flush = now
            self._save()

    def _save(self) -> None:
        """Flush; hparams.yaml only when a module saved hyperparameters (not `{}`)."""
        if self.hparams:
            super().save()
        else:
            self.experiment.flush()

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        self._last_flush = time.monotonic()
        self._save()

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """Lightning's, without its unthrottled save() and its `{}` hparams.yaml."""
        if self._experiment is not None:
            self.experiment.flush()
            self.experiment.close()
        if self.hparams and status == "success":
            save_hparams_to_yaml(os.path.join(self.log_dir, self.NAME_HPARAMS_FILE), self.hparams)


def write_scalars(writer: SummaryWriter, scalars: Mapping[str, Any], step: int | None) -> None:
    """`add_scalar` for each value, as one event."""
    from tensorboard.compat.proto.summary_pb2 import Summary  # TensorBoard runs only

    _add(
        writer, [Summary.Value(tag=tag, simple_value=float(v)) for tag, v in scalars.items()], step
    )


def write_png(writer: SummaryWriter, tag: str, image: np.ndarray, step: int) -> None:
    """`add_image` for an (H, W, 3) uint8 image, PNG-encoded here rather than by Pillow:
    a 344x328 confusion matrix in ~1.15 ms and 13.4 KB, where Pillow at compress_level=1
    took ~3.2 ms for 12.9 KB (decision boundaries: 1.4 ms, 14.7 KB vs 4.8 ms, 16.2 KB).

    Pillow filters each row five ways and keeps the best; on these pictures (flat areas,
    few colours) that is two thirds of its time for little gain. Here every row is stored
    unfiltered (filter 0) in one IDAT, deflated at zlib level 2: as fast as level 1, 3-8%
    smaller; level 3 saves ~5% more for ~5% more time, filter Up (2) was no faster and
    larger. Most of the 1.15 ms is zlib's own per-byte work (all-zero rows of this size
    take ~0.7 ms). Pillow reads it back to the same pixels (tests/diagnostics/test_png.py).
    """
    import struct
    import zlib

    import numpy as np
    from tensorboard.compat.proto.summary_pb2 import Summary

    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4):
        raise TypeError(f"write_png takes (H, W, 1|2|3|4) uint8, not {image.shape} {image.dtype}")
    height, width, channels = image.shape
    rows = np.empty((height, 1 + width * channels), dtype=np.uint8)
    rows[:, 0] = 0  # each row's filter byte: None
    rows[:, 1:] = image.reshape(height, -1)
    png = io.BytesIO()
    png.write(b"\x89PNG\r\n\x1a\n")
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]  # grey, grey + alpha, RGB, RGBA
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    for kind, data in (b"IHDR", header), (b"IDAT", zlib.compress(rows, 2)), (b"IEND", b""):
        png.write(struct.pack(">I", len(data)) + kind + data)
        png.write(struct.pack(">I", zlib.crc32(data, zlib.crc32(kind))))
    encoded = Summary.Image(
        height=height, width=width, colorspace=channels, encoded_image_string=png.getvalue()
    )
    _add(writer, [Summary.Value(tag=tag, image=encoded)], step)


def write_histogram_proto(writer: SummaryWriter, tag: str, proto: Any, step: int) -> None:
    """`add_histogram` of a histogram made before (`histogram`); None writes nothing."""
    from tensorboard.compat.proto.summary_pb2 import Summary

    if proto is not None:
        _add(writer, [Summary.Value(tag=tag, histo=proto)], step)


def histogram(values: Tensor, bins: int) -> Any:
    """TensorBoard's HistogramProto of the finite values in `bins` even buckets (numpy's
    np.histogram), None if there are none.

    TensorBoard's own takes the sum of squares with numpy's `dot`, which wakes numpy's
    OpenBLAS thread pool; those threads then fight torch's for the cores for the rest
    of the run (2 cores, MNIST-sized fit: +0.16 s of 2 s, +1 s of CPU, measured with
    OPENBLAS_NUM_THREADS=1 as the control). Here every reduction is BLAS-free.
    """
    import numpy as np

    array = values.detach().flatten().cpu().double().numpy()
    array = array[np.isfinite(array)]
    if not array.size:
        return None
    counts, edges = np.histogram(array, bins=bins)
    stats = (array.min(), array.max(), array.size, array.sum(), np.square(array).sum())
    return histogram_proto(*stats, edges.tolist(), counts.tolist())


def histogram_proto(
    low: float, high: float, num: int, total: float, squares: float, edges: list, counts: list
) -> Any:
    from tensorboard.compat.proto.summary_pb2 import HistogramProto

    return HistogramProto(
        min=float(low),
        max=float(high),
        num=float(num),
        sum=float(total),
        sum_squares=float(squares),
        bucket_limit=edges,  # bucket i counts values up to bucket_limit[i]:
        bucket=[0.0, *counts],  # nothing below the first edge
    )


def _add(writer: SummaryWriter, values: list, step: int | None) -> None:
    from tensorboard.compat.proto.summary_pb2 import Summary

    write_summary(writer, Summary(value=values), step)


def write_summary(writer: SummaryWriter, summary: Any, step: int | None) -> None:
    """A ready Summary proto into the run's event file, as SummaryWriter's add_* do."""
    writer._get_file_writer().add_summary(summary, step)


def traced_graph(module: Any, example: Tensor) -> Any:
    """The graph TensorBoard's add_graph would trace, traced once: a packed sweep's
    members share their net's structure, so one trace serves all (~0.1 s each)."""
    from torch.utils.tensorboard._pytorch_graph import graph

    return graph(module, example)


def write_graph(writer: SummaryWriter, traced: Any) -> None:
    """What SummaryWriter.add_graph writes, for a graph traced before (traced_graph)."""
    writer._get_file_writer().add_graph(traced)
