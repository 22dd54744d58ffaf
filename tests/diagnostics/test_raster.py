"""raster.text against a plain float32 blend of Pillow's glyphs, on either of its paths:
a cached patch over one flat colour, a per-pixel blend over anything else."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from neuralab.diagnostics import raster


def reference(canvas, s, x, y, anchor, color, size, vertical) -> np.ndarray:
    """`canvas` with `s` written the straightforward way: rasterized by Pillow, alpha =
    coverage / 255, every pixel blended in float32 and rounded, clipped to the canvas."""
    font = ImageFont.load_default(size=size)
    left, top, right, bottom = font.getbbox(s)
    glyph = Image.new("L", (right - left, bottom - top))
    ImageDraw.Draw(glyph).text((-left, -top), s, font=font, fill=255)
    alpha = np.asarray(glyph, dtype=np.float32) / 255
    alpha = np.rot90(alpha) if vertical else alpha
    h, w = alpha.shape
    top = y - {"t": 0, "m": h // 2, "b": h}[anchor[1]]
    left = x - {"l": 0, "m": w // 2, "r": w}[anchor[0]]
    out = canvas.copy()
    for i, j in np.ndindex(h, w):
        if 0 <= top + i < out.shape[0] and 0 <= left + j < out.shape[1]:
            pixel = out[top + i, left + j].astype(np.float32)
            blended = pixel + (np.float32(color) - pixel) * alpha[i, j]
            out[top + i, left + j] = blended.round().astype(np.uint8)
    return out


def backgrounds() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    ramp = np.arange(50, dtype=np.uint8)[None, :, None] * 5
    return {
        "noise": rng.integers(0, 256, (30, 50, 3), dtype=np.uint8),
        "ramp": np.broadcast_to(ramp, (30, 50, 3)).copy(),
        "flat": np.full((30, 50, 3), (8, 81, 156), dtype=np.uint8),  # a dark Blues cell
        "white": np.full((30, 50, 3), 255, dtype=np.uint8),
    }


# (string, anchor point, anchor, size, vertical): inside, and clipped at every edge
WRITES = [
    ("123", (25, 15), "mm", 12, False),
    ("accuracy 0.9", (0, 0), "lt", 13, False),
    ("true", (3, 15), "lm", 11, True),
    ("-0.5", (50, 30), "rb", 10, False),
    ("4096", (-4, 15), "mm", 12, False),
    ("7", (25, -3), "mt", 7, False),
    ("gy", (60, 40), "lt", 11, False),  # wholly off the canvas
]
COLORS = [raster.BLACK, raster.WHITE, raster.TAB10[3], (0.0, 128.0, 255.0)]


@pytest.mark.parametrize("background", list(backgrounds()))
@pytest.mark.parametrize("write", WRITES, ids=[w[0] for w in WRITES])
def test_text_equals_a_plain_blend_on_any_background(background, write):
    s, (x, y), anchor, size, vertical = write
    for color in COLORS:
        canvas = backgrounds()[background]
        expected = reference(canvas, s, x, y, anchor, color, size, vertical)
        raster.text(canvas, s, x, y, anchor=anchor, color=color, size=size, vertical=vertical)
        assert np.array_equal(canvas, expected), (s, background, color)


def test_flat_and_per_pixel_paths_paint_the_same_pixels(monkeypatch):
    blended = []  # canvases that text blended pixel by pixel
    blend = raster.blend
    monkeypatch.setattr(raster, "blend", lambda c, *a: blended.append(c) or blend(c, *a))
    for color in COLORS:
        for s, size in [("0", 7), ("812", 12), ("x0", 10)]:
            h, w = raster._glyphs(s, size).shape
            corner = (10 - h // 2, 20 - w // 2)  # the top-left pixel of the text's box
            flat = np.full((20, 40, 3), (158, 202, 225), dtype=np.uint8)
            raster.text(flat, s, 20, 10, color=color, size=size)  # one flat colour: a patch
            other = np.full_like(flat, (158, 202, 225))
            other[corner] = 0  # not one flat colour: pixel by pixel
            raster.text(other, s, 20, 10, color=color, size=size)
            assert not any(c is flat for c in blended) and any(c is other for c in blended)
            other[corner] = flat[corner]  # the one pixel that had another background
            assert np.array_equal(flat, other), (s, color)


def test_text_paints_again_on_each_canvas():
    # The caches hold patches, never a canvas: a second canvas gets the text too.
    for _ in range(2):
        canvas = np.full((20, 40, 3), 255, dtype=np.uint8)
        raster.text(canvas, "42", 20, 10)
        assert (canvas < 128).any()


def test_framed_caches_the_frame_not_the_picture():
    plot = np.zeros((40, 60, 3), dtype=np.uint8)
    ticks = [(5.0, "0"), (30.5, "1")]
    first = raster.framed(plot, "first", "x", "y", ticks, ticks)
    first[:] = (1, 2, 3)  # the caller owns its picture (no grey: not text, not frame)
    plot[:] = 200
    again = raster.framed(plot, "second", "x", "y", ticks, ticks)
    assert not (again == (1, 2, 3)).all(axis=-1).any()
    left = again.shape[1] - 60 - raster.RIGHT
    assert (again[raster.TOP : raster.TOP + 40, left : left + 60] == 200).all()  # new plot
    titled = raster.framed(plot, "first", "x", "y", ticks, ticks)
    assert not np.array_equal(titled[: raster.TOP - 1], again[: raster.TOP - 1])  # titles
