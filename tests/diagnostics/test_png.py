"""write_png's own PNG encoder, read back as TensorBoard stores it and as Pillow decodes it."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.tensorboard import SummaryWriter

from neuralab.diagnostics.images import confusion_matrix_image
from neuralab.runtime.loggers import write_png


def chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """(kind, data) of every chunk, each CRC checked: the file must end with IEND."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    out, at = [], 8
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        kind, data = png[at + 4 : at + 8], png[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", png[at + 8 + length : at + 12 + length])
        assert crc == zlib.crc32(kind + data), kind
        out.append((kind, data))
        at += 12 + length
    assert out[0][0] == b"IHDR" and out[-1] == (b"IEND", b"")
    return out


def confusion_matrix() -> np.ndarray:
    torch.manual_seed(0)
    y = torch.randint(0, 10, (360,))
    out = torch.randn(360, 10)
    out[torch.arange(360), y] += 3
    return confusion_matrix_image(y, out, 10)


def noise(shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)


def written(tmp_path, image: np.ndarray):
    """What TensorBoard reads back of `image` written by write_png at step 3."""
    writer = SummaryWriter(str(tmp_path))
    write_png(writer, "pictures/test", image, step=3)
    writer.close()
    events = EventAccumulator(str(tmp_path), size_guidance={"images": 0})
    events.Reload()
    (stored,) = events.Images("pictures/test")
    return stored


@pytest.mark.parametrize(
    "make",
    [
        confusion_matrix,  # a typical picture: flat cells, text, a white margin
        lambda: noise((7, 13, 3)),  # odd sizes, nothing to compress
        lambda: noise((1, 1, 3)),
        lambda: noise((5, 3, 1)),  # grey
        lambda: noise((4, 9, 4)),  # RGBA
        lambda: np.asfortranarray(noise((6, 11, 3))),  # not C-ordered
    ],
)
def test_png_decodes_to_the_array_written(tmp_path, make):
    image = make()
    stored = written(tmp_path, image)
    assert (stored.step, stored.height, stored.width) == (3, *image.shape[:2])
    chunks(stored.encoded_image_string)
    decoded = np.asarray(Image.open(io.BytesIO(stored.encoded_image_string)))
    assert np.array_equal(decoded.reshape(image.shape), image)


def test_png_of_a_picture_stays_small(tmp_path):
    # 344x328x3: 338 KB raw, 12.9 KB from Pillow at compress_level=1, ~13.4 KB here
    assert len(written(tmp_path, confusion_matrix()).encoded_image_string) < 16_000


def test_png_refuses_what_it_cannot_encode():
    with pytest.raises(TypeError):
        write_png(None, "t", np.zeros((4, 4, 3), dtype=np.float32), step=0)
    with pytest.raises(TypeError):
        write_png(None, "t", np.zeros((4, 4), dtype=np.uint8), step=0)
