"""Drawing primitives for the diagnostic pictures: numpy arrays, with Pillow for glyphs.

Everything is drawn into (H, W, 3) uint8 arrays. Pillow only rasterizes each distinct
string once (cached), so a picture costs a few array operations: no figure, no
artists, no layout engine, nothing from matplotlib.

Text is most of a picture's work: a 10-class confusion matrix writes ~60 strings
(counts, ticks, captions). Blending each in float32 and rounding back cost ~20 us a
string, ~1.5 of the matrix's 2.7 ms. Nearly all text lies on one flat colour (a cell,
the margin), where a pixel depends only on its coverage byte: there `text` pastes the
string as drawn on that colour (cached), made from `blend`'s own 256 results for that
colour pair, ~5-8 us a string and the very same bytes. The frame and tick labels of
`framed` are cached whole.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

WHITE, BLACK = (255, 255, 255), (0, 0, 0)
FRAME = (60, 60, 60)  # the plot's border and tick marks
Color = tuple[int, int, int] | np.ndarray  # RGB: a triple like these, or a table's row
# matplotlib's tab10, so the colours read as they did; two classes: coolwarm's ends.
TAB10 = np.array(
    [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
     (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)],
    dtype=np.uint8,
)  # fmt: skip
BLUE_RED = np.array([(59, 76, 192), (180, 4, 38)], dtype=np.uint8)
# matplotlib's "Blues" (ColorBrewer), 9 stops from white to dark blue.
BLUES = np.array(
    [(247, 251, 255), (222, 235, 247), (198, 219, 239), (158, 202, 225), (107, 174, 214),
     (66, 146, 198), (33, 113, 181), (8, 81, 156), (8, 48, 107)],
    dtype=np.float32,
)  # fmt: skip
# Margins around the plot area, in pixels: room for the title, tick labels and captions
# (BARE: the bottom and left margins of an axis without ticks).
TOP, BOTTOM, RIGHT, BOTTOM_BARE, LEFT_BARE = 26, 38, 14, 24, 24


def class_colors(k: int) -> np.ndarray:
    """(k, 3) uint8: blue/red for two classes, else tab10 (repeating beyond 10)."""
    return BLUE_RED.copy() if k == 2 else TAB10[np.arange(k) % len(TAB10)]


def lighten(colors: np.ndarray, keep: float = 0.35) -> np.ndarray:
    """(..., 3) uint8 colours blended toward white: `keep` of the colour remains."""
    return (255 - keep * (255 - colors.astype(np.float32))).round().astype(np.uint8)


# The ramp's stops and its channels as np.interp takes them (float64, contiguous): made
# once, they cut `blues` from ~85 to ~30 us a call, to the same values.
_STOPS = np.linspace(0, 1, len(BLUES))
_BLUES_CHANNELS = [np.ascontiguousarray(BLUES[:, c], dtype=np.float64) for c in range(3)]


def blues(values: np.ndarray) -> np.ndarray:
    """values (...) in [0, 1] -> (..., 3) uint8 on the white -> dark-blue ramp."""
    rgb = np.empty((*np.shape(values), 3))
    for c, channel in enumerate(_BLUES_CHANNELS):
        rgb[..., c] = np.interp(values, _STOPS, channel)
    return rgb.round(out=rgb).astype(np.uint8)


@functools.cache
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:  # Pillow >= 10.1 with FreeType: the bundled scalable font
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError):  # older Pillow or no FreeType: the bitmap font
        return ImageFont.load_default()


@functools.lru_cache(maxsize=4096)
def _glyphs(s: str, size: int, vertical: bool = False) -> np.ndarray:
    """The ink of `s` as coverage (h, w) uint8 (0 none .. 255 full), cropped to its
    bounding box; vertical: turned 90 degrees, read from the bottom up."""
    font = _font(size)
    left, top, right, bottom = font.getbbox(s)
    image = Image.new("L", (max(right - left, 1), max(bottom - top, 1)))
    ImageDraw.Draw(image).text((-left, -top), s, font=font, fill=255)
    ink = np.ascontiguousarray(np.rot90(np.asarray(image)) if vertical else np.asarray(image))
    ink.flags.writeable = False  # shared by every later call (cache)
    return ink


# Coverage byte -> alpha in [0, 1]: the float32 values `blend` has always used for text.
_ALPHA = np.arange(256, dtype=np.float32) / 255


@functools.lru_cache(maxsize=1024)  # 768 bytes each; a sweep's cells reuse the Blues ramp
def _paint(background: bytes, color: tuple) -> np.ndarray:
    """(256, 3) uint8: `color` at each coverage byte over one flat RGB `background`,
    drawn by `blend` itself, so that a lookup gives the very bytes it would."""
    table = np.empty((256, 1, 3), dtype=np.uint8)
    table[:] = np.frombuffer(background, dtype=np.uint8)
    blend(table, 0, 0, _ALPHA[:, None], color)
    return table[:, 0]


@functools.lru_cache(maxsize=4096)  # ~0.5 KB each: numbers and labels of a few colours
def _patch(s: str, size: int, vertical: bool, background: bytes, color: tuple) -> np.ndarray:
    """(h, w, 3) uint8: `s` written in `color` over one flat `background` colour."""
    patch = _paint(background, color)[_glyphs(s, size, vertical)]
    patch.flags.writeable = False  # shared by every later call (cache)
    return patch


def blend(canvas: np.ndarray, top: int, left: int, alpha: np.ndarray, color: Color) -> None:
    """Paint `color` over canvas (H, W, 3) with coverage alpha (h, w) at (top, left), clipped."""
    h, w = alpha.shape
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + h, canvas.shape[0]), min(left + w, canvas.shape[1])
    if y0 >= y1 or x0 >= x1:
        return
    a = alpha[y0 - top : y1 - top, x0 - left : x1 - left, None]
    region = canvas[y0:y1, x0:x1].astype(np.float32)
    canvas[y0:y1, x0:x1] = (region + (np.float32(color) - region) * a).round().astype(np.uint8)


_HALVES = {"l": 0, "t": 0, "m": 1, "r": 2, "b": 2}  # an anchor's offset, in half widths


def text(
    canvas: np.ndarray,
    s: str,
    x: int,
    y: int,
    anchor: str = "mm",
    color: Color = BLACK,
    size: int = 11,
    vertical: bool = False,
) -> None:
    """Write `s` with its ink box anchored at pixel (x, y): anchor is horizontal l|m|r then
    vertical t|m|b, as in Pillow. vertical: turned 90 degrees, read from the bottom up."""
    ink = _glyphs(s, size, vertical)
    h, w = ink.shape
    left, top = x - _HALVES[anchor[0]] * w // 2, y - _HALVES[anchor[1]] * h // 2
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + h, canvas.shape[0]), min(left + w, canvas.shape[1])
    if y0 >= y1 or x0 >= x1:
        return
    window = slice(y0 - top, y1 - top), slice(x0 - left, x1 - left)
    region = canvas[y0:y1, x0:x1]
    # One flat colour under the text? Compared as bytes: ~1 us, where numpy's
    # (region == region[0, 0]).all() takes ~5 us on a (10, 15, 3) region.
    pixels = region.tobytes()
    if pixels != pixels[:3] * (len(pixels) // 3):  # across an edge, over dots: per pixel
        blend(canvas, y0, x0, _ALPHA[ink[window]], color)
        return
    rgb = color if isinstance(color, tuple) else tuple(np.asarray(color).tolist())
    patch = _patch(s, size, vertical, pixels[:3], rgb)
    region[...] = patch if region.shape == patch.shape else patch[window]


@functools.cache
def _disc(radius: float) -> np.ndarray:
    """(M, 2) integer (row, col) offsets of the pixels within `radius` of a pixel centre."""
    r = math.floor(radius)
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    inside = dy**2 + dx**2 <= radius**2
    return np.stack([dy[inside], dx[inside]], axis=1)


def _stamp_index(
    shape: tuple[int, ...], rows: np.ndarray, cols: np.ndarray, offsets: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Flat pixel indices (N * M,) of `offsets` (M, 2) around each point (N,), and which
    of them (N * M,) lie on the canvas; rows, cols (N,) are pixel coordinates (floats)."""
    r = np.rint(rows).astype(np.int64)[:, None] + offsets[None, :, 0]
    c = np.rint(cols).astype(np.int64)[:, None] + offsets[None, :, 1]
    inside = (r >= 0) & (r < shape[0]) & (c >= 0) & (c < shape[1])
    return (r * shape[1] + c).ravel(), inside.ravel()


def dots(
    canvas: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    colors: np.ndarray,
    radius: float = 1.5,
    outline: Color = BLACK,
) -> None:
    """Opaque dots: point i (pixel row, col) in colors[i] (N, 3), ringed by `outline`.
    Later points lie on top: numpy writes repeated indices in order."""
    ring, fill = _disc(radius + 1.0), _disc(radius)
    flat, inside = _stamp_index(canvas.shape, rows, cols, np.concatenate([ring, fill]))
    paint = np.empty((len(rows), len(ring) + len(fill), 3), dtype=np.uint8)  # (N, M, 3)
    paint[:, : len(ring)] = outline
    paint[:, len(ring) :] = colors[:, None]
    paint = paint.reshape(-1, 3)
    if not inside.all():  # masking costs more than the writes: only when a dot is clipped
        flat, paint = flat[inside], paint[inside]
    canvas.reshape(-1, 3)[flat] = paint


def density_dots(
    canvas: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    color: Color,
    radius: float = 2.5,
    alpha: float = 0.6,
) -> None:
    """Translucent dots of one colour: where n dots overlap, 1 - (1 - alpha)^n is covered,
    so dense clusters read darker (independent of drawing order)."""
    flat, inside = _stamp_index(canvas.shape, rows, cols, _disc(radius))
    count = np.bincount(flat[inside], minlength=canvas.shape[0] * canvas.shape[1])
    cover = (1 - (1 - alpha) ** count.astype(np.float32)).reshape(canvas.shape[:2])
    blend(canvas, 0, 0, cover, color)


def nice_ticks(low: float, high: float, count: int = 5) -> np.ndarray:
    """About `count` (at most ~1.3 count + 1) round values in [low, high]: steps of 1, 2 or
    5 times a power of ten."""
    raw = (high - low) / count * 0.75  # 0.75: 0.5 for a range of 3, not 1 (3 ticks only)
    if not raw > 0 or not math.isfinite(raw):
        return np.array([low])
    power = 10.0 ** math.floor(math.log10(raw))
    step = power * next(m for m in (1, 2, 5, 10) if m * power >= raw)
    return np.arange(math.ceil(low / step), math.floor(high / step) + 1) * step + 0.0  # no -0


def framed(
    plot: np.ndarray,
    title: str,
    xlabel: str,
    ylabel: str,
    xticks: Sequence[tuple[float, str]] = (),
    yticks: Sequence[tuple[float, str]] = (),
) -> np.ndarray:
    """The plot area (h, w, 3) inside margins, with a border, a title above, captions
    and ticks: xticks/yticks are (pixel offset from the plot's left/top, label) pairs."""
    h, w = plot.shape[:2]
    xs = tuple((int(offset), label) for offset, label in xticks)
    ys = tuple((int(offset), label) for offset, label in yticks)
    canvas = _frame(h, w, xs, ys).copy()
    left = canvas.shape[1] - w - RIGHT
    canvas[TOP : TOP + h, left : left + w] = plot  # the frame and ticks lie outside it
    text(canvas, title, left + w // 2, TOP // 2, size=13)
    text(canvas, xlabel, left + w // 2, canvas.shape[0] - 4, anchor="mb", size=11)
    text(canvas, ylabel, 4, TOP + h // 2, anchor="lm", size=11, vertical=True)
    return canvas


# A confusion matrix's frame and ticks are the same every epoch: copying them (~0.03 ms)
# spares ~20 tick labels, ~0.2 ms of a ~1 ms matrix. 340 KB each: a few kept.
@functools.lru_cache(maxsize=8)
def _frame(
    h: int, w: int, xticks: tuple[tuple[int, str], ...], yticks: tuple[tuple[int, str], ...]
) -> np.ndarray:
    """`framed`'s white canvas with the border, tick marks and tick labels, no plot and
    no captions: none of these touch the plot area, so pasting the plot later is exact."""
    # Room on the left for the vertical caption (~12 px) and the widest y tick label,
    # below for the tick labels and the caption; captions hug the plot without ticks.
    widest = max((_glyphs(label, 10).shape[1] for _, label in yticks), default=0)
    left = 28 + widest if yticks else LEFT_BARE
    bottom = BOTTOM if xticks else BOTTOM_BARE
    canvas = np.full((TOP + h + bottom, left + w + RIGHT, 3), 255, dtype=np.uint8)
    # A 1-pixel border just outside the plot area, so no data pixel is hidden.
    canvas[[TOP - 1, TOP + h], left - 1 : left + w + 1] = FRAME
    canvas[TOP - 1 : TOP + h + 1, [left - 1, left + w]] = FRAME
    for offset, label in xticks:
        x = left + offset
        canvas[TOP + h + 1 : TOP + h + 4, x] = FRAME  # 3-pixel tick mark
        text(canvas, label, x, TOP + h + 6, anchor="mt", size=10)
    for offset, label in yticks:
        y = TOP + offset
        canvas[y, left - 4 : left - 1] = FRAME
        text(canvas, label, left - 6, y, anchor="rm", size=10)
    canvas.flags.writeable = False  # shared by every later call (cache)
    return canvas


def with_legend(
    image: np.ndarray, entries: Sequence[tuple[Color, str]], size: int = 10
) -> np.ndarray:
    """`image` with a key to its right, level with the plot: one row per (colour, label),
    a framed swatch and the label."""
    if not entries:
        return image
    glyphs = [_glyphs(label, size) for _, label in entries]
    row = max(max(g.shape[0] for g in glyphs), 8) + 6
    width = 8 + 6 + max(g.shape[1] for g in glyphs) + RIGHT
    height = max(image.shape[0], TOP + row * len(entries))
    canvas = np.full((height, image.shape[1] + width, 3), 255, dtype=np.uint8)
    canvas[: image.shape[0], : image.shape[1]] = image
    left = image.shape[1]
    for i, (color, label) in enumerate(entries):
        top = TOP + i * row
        canvas[top : top + 8, left : left + 8] = FRAME
        canvas[top + 1 : top + 7, left + 1 : left + 7] = color
        text(canvas, label, left + 14, top + 4, anchor="lm", size=size)
    return canvas
