"""Event records written by the logging thread: none queued for TensorBoard's writer
thread, the same records in the file, in order, and a closed writer still refuses."""

from __future__ import annotations

import pytest
from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader
from tensorboard.summary.writer import event_file_writer

from neuralab.runtime import event_writes
from neuralab.runtime.loggers import TensorBoardLogger, write_scalars

pytestmark = pytest.mark.fast


def scalars(path) -> list[tuple[int, str, float]]:
    return [
        (event.step, value.tag, value.simple_value)
        for event in LegacyEventFileLoader(str(path)).Load()
        for value in event.summary.value
    ]


def test_the_logger_writes_its_records_itself_in_order(tmp_path):
    logger = TensorBoardLogger(save_dir=str(tmp_path), name="", version="")
    assert event_file_writer._AsyncWriter.write is event_writes.write_now
    writer = logger.experiment._get_file_writer().event_writer._async_writer
    for step in range(50):
        write_scalars(logger.experiment, {"a": step, "b": -step}, step=step)
    assert writer._byte_queue.qsize() == 0 and writer._byte_queue.unfinished_tasks == 0
    logger.experiment.flush()
    (path,) = tmp_path.rglob("events.out.tfevents.*")
    expected = [(s, tag, v) for s in range(50) for tag, v in (("a", s), ("b", -s))]
    assert scalars(path) == expected  # on disk at the flush, as before
    logger.finalize("success")
    with pytest.raises(OSError, match="closed"):
        writer.write(b"late")
