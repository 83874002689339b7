"""The top band of a photo, decoded from the first bytes of its file, and what it can judge.

A baseline JPEG stores its rows top to bottom, so the first part of the entropy-coded data
holds a band of complete rows. The prefix is handed to libjpeg with an end-of-image marker
appended (what Pillow itself does under ``ImageFile.LOAD_TRUNCATED_IMAGES``, a process-wide
switch the integrity check must not see flipped): libjpeg then draws every block it has no
data for as flat grey (all coefficients zero, luma 128). The band is every row above the
last row that is not flat grey, less the last row of MCUs, which may be cut part way.

Focus is judged on the band; exposure and the perceptual hash want the whole frame, so they
come from the EXIF thumbnail when the camera wrote one (``analyse_band``).
"""

from __future__ import annotations

import io
import math
import struct
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from qc_tool.domain.jpeg import frame_size, header_segments, is_sof

from .blur import BlurMeasure, focus_measure
from .decode import ImageDecodeError, ImageTooLarge, decode_gray, refuse_bombs
from .exposure import measure_exposure
from .phash import phash
from .pixels import PixelMeasures
from .settings import CheckSettings

_EOI = b"\xff\xd9"
_FLAT = 128  # the luma libjpeg draws for a block it has no data for
# A band judges focus once this many of its grid cells have texture (the focus measure's
# grid cut over the band's own height; the measure itself needs blur_min_textured_cells).
BAND_MIN_TEXTURED = 24
BAND_HASH_SHARE = 0.1  # of the frame's height: the rows a thumbnail-less band's pHash covers
BAND_HASH_MIN_TEXTURED = 24  # grid cells of those rows with texture, else the hash is FLAT
FLAT = "flat band"  # the pHash of a featureless strip: compared with no other
# Focus and texture are measured on at most this many pixels of a band, its lowest rows (a band
# grows down past a plain top, so those are the rows with texture): the measure's arrays then
# stay under ~16 MB, as for a whole frame at the analysis size, however far the band grew.
FOCUS_MAX_PIXELS = 1_000_000


@dataclass(frozen=True, slots=True)
class Band:
    """The decoded top rows of a photo (uint8 luma, at the scale decode_band was asked for:
    pixel_reader.BAND_LONG_SIDE) and the photo's size."""

    pixels: np.ndarray  # rows x columns; may have 0 rows
    width: int
    height: int
    complete: bool  # the prefix held the whole image
    # The focus of these rows as the read program measured it (to decide whether to read the
    # whole file), with the settings it used: the worker reuses it rather than measure again.
    focus: tuple[CheckSettings, BlurMeasure] | None = None

    def focus_rows(self) -> np.ndarray:
        """The rows focus is measured on: the lowest ``FOCUS_MAX_PIXELS`` worth."""
        rows = max(1, FOCUS_MAX_PIXELS // max(1, self.pixels.shape[1]))
        return self.pixels[-rows:]

    def focus_with(self, settings: CheckSettings) -> BlurMeasure:
        """The rows' focus under ``settings``: the one already taken when they are the same."""
        if self.focus is not None and self.focus[0] == settings:
            return self.focus[1]
        return focus_measure(self.focus_rows(), settings)


def decode_band(
    prefix: bytes, long_side: int, *, complete: bool = False, rows_share: float = 1.0
) -> Band:
    """Decode the rows a JPEG prefix holds, scaled so the whole image's long side is ``long_side``.

    ``complete``: the prefix is the whole file (decoded as is). ``rows_share``: the share of
    the frame's rows to decode first; while the prefix's data reaches the last of them, twice
    as many are decoded again (``_cut_frame`` says why). Raises ImageDecodeError for data
    libjpeg cannot decode at all (a truncated prefix is not an error: that is the point).
    """
    share = 1.0 if complete else min(1.0, rows_share)
    frame = _frame(prefix)
    size = frame[1] if frame is not None else None
    while True:
        data = prefix if complete else _cut_frame(prefix, frame, share) + _EOI
        rows, decoded, drawn = _decode(data, size, long_side, complete)
        if complete or share >= 1.0 or decoded < drawn:
            break
        share = min(1.0, 2 * share)  # the data went on past the rows decoded
    return rows


def _decode(
    data: bytes, size: tuple[int, int] | None, long_side: int, complete: bool
) -> tuple[Band, int, int]:
    """The band ``data`` holds (a frame of ``size`` before any cut), with how many rows of its
    drafted frame were decoded from data and how many its frame header gave."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=("JPEG",)) as img:
                width, height = size or img.size
                refuse_bombs(width, height)
                factor = min(1.0, long_side / max(width, height))
                target = (max(1, round(width * factor)), max(1, round(height * factor)))
                img.draft("L", (target[0], max(1, round(img.size[1] * factor))))
                scale = width / img.size[0]  # libjpeg's: 1, 2, 4 or 8
                group = _mcu_rows(img, scale)
                img.load()
                gray = img if img.mode == "L" else img.convert("L")
                rows = np.asarray(gray, dtype=np.uint8)
    except ImageDecodeError:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise ImageTooLarge(f"Image too large to decode safely ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise ImageDecodeError("Not a readable JPEG image") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageDecodeError(f"Corrupt JPEG data ({exc})") from exc
    drawn = rows.shape[0]
    if not complete:
        rows = rows[: _decoded_rows(rows, group)]
    decoded = rows.shape[0] + (0 if complete else group)  # _decoded_rows keeps back one MCU row
    band_h = min(target[1], round(rows.shape[0] * scale * factor))
    if rows.shape[0] and band_h and (rows.shape[1], rows.shape[0]) != (target[0], band_h):
        small = Image.fromarray(np.ascontiguousarray(rows), "L")
        rows = np.asarray(small.resize((target[0], band_h), Image.Resampling.BOX), dtype=np.uint8)
    elif not band_h:
        rows = np.zeros((0, target[0]), np.uint8)
    return Band(rows, width, height, complete), decoded, drawn


def _frame(prefix: bytes) -> tuple[int, tuple[int, int]] | None:
    """Where the first frame header (SOFn) of a JPEG's header is, and its (width, height)."""
    for offset, marker, payload in header_segments(prefix):
        if is_sof(marker):
            size = frame_size(payload)
            return (offset, size) if size is not None else None
    return None


def _cut_frame(
    prefix: bytes, frame: tuple[int, tuple[int, int]] | None, rows_share: float
) -> bytes:
    """The prefix with its frame header (``frame``: where, and its size) saying
    ``rows_share`` of its rows.

    libjpeg draws every row the frame header gives, grey where the data has stopped: left
    whole, the prefix of a tenth of a 4000x3000 photo is drawn to the whole frame. With fewer
    rows in the header, libjpeg stops there. Measured on 16 benchmark photos (a tenth of the
    data, 2000 px): 8.1 ms per band against 11.2, the same pixels.
    """
    if rows_share >= 1.0 or frame is None:
        return prefix
    offset, (_width, height) = frame
    rows = max(16, math.ceil(height * rows_share))
    at = offset + 5  # FF Cn, the length (2 bytes), the precision (1), then the height
    return prefix[:at] + struct.pack(">H", min(rows, height)) + prefix[at + 2 :]


def _mcu_rows(img: Image.Image, scale: float) -> int:
    """Rows of the drafted image one row of MCUs makes (libjpeg outputs whole MCU rows)."""
    layer = getattr(img, "layer", None) or [(1, 1, 1, 0)]
    vmax = max(int(v) for _, _, v, _ in layer)
    return max(1, 8 * vmax // max(1, round(scale)))


def _decoded_rows(rows: np.ndarray, group: int) -> int:
    """How many top rows were decoded from data: up to the last row that is not flat grey,
    less the last MCU row (data may stop part way across it)."""
    busy = np.flatnonzero((rows != _FLAT).any(axis=1))
    if busy.size == 0:
        return 0
    last = int(busy[-1]) + 1
    return max(0, (last // group) * group - group)


def textured_cells(band: np.ndarray, settings: CheckSettings) -> int:
    """Cells of the focus measure's grid, cut over the band, whose texture it would judge."""
    grid = settings.blur_grid
    if band.ndim != 2 or min(band.shape) < 3 * grid:
        return 0
    g = band[1:-1, 1:-1].astype(np.float32)
    ch, cw = g.shape[0] // grid, g.shape[1] // grid
    cells = g[: ch * grid, : cw * grid].reshape(grid, ch, grid, cw).swapaxes(1, 2)
    std = cells.reshape(grid * grid, ch * cw).std(axis=1)
    return int((std >= settings.blur_texture_min_std).sum())


def enough_texture(band: np.ndarray, settings: CheckSettings) -> bool:
    """Whether the band has the texture to judge focus on (else the read goes on)."""
    return textured_cells(band, settings) >= max(
        BAND_MIN_TEXTURED, settings.blur_min_textured_cells
    )


def analyse_band(band: Band, thumbnail: bytes | None, settings: CheckSettings) -> PixelMeasures:
    """Focus from the band; exposure and pHash of the whole frame from the thumbnail, else the
    band (``frame_source`` says which)."""
    pixels = band.pixels
    if pixels.size == 0:
        raise ImageDecodeError("Corrupt JPEG data: no rows of the image could be decoded")
    whole = _thumbnail(thumbnail, settings)
    if whole is not None:
        frame, hashed, frame_from = whole, whole, "thumbnail"
    elif band.complete:  # the prefix was the whole file: this is the whole-file decode
        frame, hashed, frame_from = pixels, pixels, "full"
    else:
        # The hash is taken over the same top share of every photo: bands grow to
        # different heights, and hashes of different regions are not comparable.
        # A featureless strip (sky) hashes alike in every photo: such a hash is compared with
        # nothing (``FLAT``), so that photo is only found as a byte-identical copy.
        frame_h = band.height * pixels.shape[1] / max(1, band.width)
        frame, hashed, frame_from = pixels, pixels[: max(8, round(frame_h * BAND_HASH_SHARE))], ""
        if textured_cells(hashed, settings) < BAND_HASH_MIN_TEXTURED:
            frame_from = FLAT
    measures = PixelMeasures(
        source="band",
        width=band.width,
        height=band.height,
        analysed_width=int(pixels.shape[1]),
        analysed_height=int(pixels.shape[0]),
        blur=band.focus_with(settings),
        exposure=measure_exposure(frame, settings),
        phash=phash(hashed),
        frame_source=frame_from,
    )
    return measures


def _thumbnail(thumbnail: bytes | None, settings: CheckSettings) -> np.ndarray | None:
    """The thumbnail's luma; None without one, or when it is broken (the thumbnail is a help:
    a broken one does not make the photo broken)."""
    if not thumbnail:
        return None
    try:
        return decode_gray(thumbnail, settings.analysis_long_side).pixels
    except ImageDecodeError:
        return None
