"""TensorBoard event records written by the thread that logs them.

TensorBoard's event file writer hands each record through a queue to a writer thread
of its own, woken once per record. Every run has one (so does every packed member: 16
threads in a 16-job pack), and each wake-up takes the GIL from training for the
queue's locks and the write. A/B on the 16-job seed sweep (packed, 2 CPU cores,
alternating runs): 4.29 s after start-up with the threads, 4.06 s without.

`install()` makes the writer's `write` write the record at once, under the writer's
own lock, into the file's buffer: the work the thread did, without the hand-off.
Flushing is unchanged (TensorBoardLogger flushes every `flush_every_s` and at each
checkpoint; `close` flushes), and so are the records (tests/runtime/test_event_writes.py).
The thread stays, idle: it would only flush what it wrote, and it stops at `close`.
The one access to a TensorBoard internal: `event_file_writer._AsyncWriter`.
"""

from __future__ import annotations

from typing import Any

from tensorboard.summary.writer import event_file_writer


def write_now(writer: Any, bytestring: bytes) -> None:
    """`_AsyncWriter.write`, the record written here instead of queued."""
    with writer._lock:
        if writer._closed:
            raise OSError("Writer is closed")  # as TensorBoard's own write says
        writer._writer.write(bytestring)


def install() -> None:
    """Event records are written by the caller from now on (idempotent)."""
    cls = getattr(event_file_writer, "_AsyncWriter", None)
    if cls is None or not hasattr(cls, "write"):
        raise RuntimeError(
            "tensorboard.summary.writer.event_file_writer has no _AsyncWriter.write: "
            "this TensorBoard release moved it (src/neuralab/runtime/event_writes.py)"
        )
    cls.write = write_now
