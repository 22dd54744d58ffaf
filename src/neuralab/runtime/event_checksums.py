"""TensorBoard's event-file checksums, computed in C.

Each record of an event file carries a CRC-32C of its bytes. Without TensorFlow
installed, TensorBoard computes it with a pure-Python loop: about 0.3 us a byte, so
~3 ms for one 10 KB diagnostics picture, on the writer thread but holding the GIL that
training needs (a 16-member packed sweep writes ~2 MB of events: ~0.7 s). The
google-crc32c package computes the same checksum in C (~2 us for 10 KB).

`install()` points TensorBoard's record writer at it: the one access to a TensorBoard
internal (`record_writer.masked_crc32c`, a module function looked up at each write).
Readers are unchanged: the checksum is the same (tests/runtime/test_event_checksums.py
reads back, through TensorBoard's checking reader, a file written this way).
"""

from __future__ import annotations

import google_crc32c
from tensorboard.summary.writer import record_writer

_MASK = 0xFFFFFFFF
_DELTA = 0xA282EAD8  # TFRecord's mask: rotate right by 15, add this


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC-32C of `data`, as TensorBoard's own computes it."""
    crc = google_crc32c.value(bytes(data))
    return ((((crc >> 15) | (crc << 17)) & _MASK) + _DELTA) & _MASK


def install() -> None:
    """TensorBoard's record writer checksums in C from now on (idempotent)."""
    if not hasattr(record_writer, "masked_crc32c"):
        raise RuntimeError(
            "tensorboard.summary.writer.record_writer has no masked_crc32c: this "
            "TensorBoard release moved it (src/neuralab/runtime/event_checksums.py)"
        )
    record_writer.masked_crc32c = masked_crc32c
