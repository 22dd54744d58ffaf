"""Event files written with the C checksums read back through TensorBoard's own
checking reader, and the checksum equals TensorBoard's pure-Python one."""

from __future__ import annotations

import os
import random

import pytest
from tensorboard.compat.tensorflow_stub import pywrap_tensorflow
from tensorboard.summary.writer import record_writer

from neuralab.runtime import event_checksums
from neuralab.runtime.loggers import TensorBoardLogger, write_scalars

pytestmark = pytest.mark.fast


@pytest.mark.parametrize("size", [0, 1, 8, 12, 255, 4096, 10_007])
def test_the_checksum_is_tensorboards(size):
    data = random.Random(size).randbytes(size)
    assert event_checksums.masked_crc32c(data) == pywrap_tensorflow.masked_crc32c(data)


def test_the_logger_installs_it_and_its_file_reads_back_checked(tmp_path):
    logger = TensorBoardLogger(save_dir=str(tmp_path), name="", version="")
    assert record_writer.masked_crc32c is event_checksums.masked_crc32c
    big = {f"tag{i}": float(i) for i in range(300)}  # a record of several KB
    write_scalars(logger.experiment, big, step=3)
    logger.finalize("success")
    (path,) = [p for p in tmp_path.rglob("events.out.tfevents.*")]
    reader = pywrap_tensorflow.PyRecordReader_New(os.fsencode(path))
    records = []
    while True:
        try:  # raises DataLossError on a checksum that is not TensorBoard's
            reader.GetNext()
        except pywrap_tensorflow.errors.OutOfRangeError:
            break
        records.append(reader.record())
    assert len(records) >= 2  # the file version event, then the scalars
    assert max(len(r) for r in records) > 3000
