"""Decode JPEG bytes to a small grayscale array, cheaply and safely.

``Image.draft`` makes libjpeg scale by 1/2, 1/4 or 1/8 inside the IDCT and return only the
luma channel, so a 20 MP photo costs a fraction of a full decode. The entropy-coded data is
still read to the end, which is why the same decode also detects truncated files.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
import pillow_heif
from PIL import Image, UnidentifiedImageError

# Drone photos are JPEG; Pillow's JPEG opener returns its MPO class for files with an MPF trailer.
_FORMATS = ("JPEG",)
# Pillow's own default, used should anything have switched the limit off (None).
DEFAULT_MAX_PIXELS = 89_478_485
# A HEIF image is decoded whole (libheif has no reduced-scale decode): 3 bytes a pixel of
# RGB, so this bounds one decode to ~150 MB. Phones write 12-48 MP.
MAX_HEIF_PIXELS = 50_000_000


class ImageDecodeError(ValueError):
    """The bytes are not a JPEG Pillow can decode; the message is fit for a technician."""


class TruncatedImage(ImageDecodeError):
    """The JPEG data stops before the image is complete."""


class ImageTooLarge(ImageDecodeError):
    """More pixels than ``Image.MAX_IMAGE_PIXELS``: refused as a possible decompression bomb."""


@dataclass(frozen=True, slots=True)
class Gray:
    """A decoded luma plane (uint8, rows x columns) and the size of the image it came from."""

    pixels: np.ndarray
    width: int
    height: int

    @property
    def scale(self) -> float:
        """How many source pixels one analysed pixel stands for, along the long side."""
        return max(self.width, self.height) / max(int(n) for n in self.pixels.shape)


def _target(width: int, height: int, long_side: int) -> tuple[int, int]:
    """The size with the same aspect ratio whose long side is ``long_side`` (never upscaled)."""
    factor = min(1.0, long_side / max(width, height))
    return max(1, round(width * factor)), max(1, round(height * factor))


def max_pixels() -> int:
    """The decompression-bomb limit in force: Pillow's, never "no limit"."""
    return Image.MAX_IMAGE_PIXELS or DEFAULT_MAX_PIXELS


def refuse_bombs(width: int, height: int) -> None:
    """ImageTooLarge when an image of this size is over the limit (call before decoding it)."""
    limit = max_pixels()
    if width * height > limit:
        raise ImageTooLarge(
            f"Image too large to decode safely ({width}x{height} = {width * height:,} pixels; "
            f"the limit is {limit:,})"
        )


def decode_gray(data: bytes, long_side: int) -> Gray:
    """Decode ``data`` to luma with its long side at most ``long_side`` pixels.

    Raises ImageDecodeError (TruncatedImage, ImageTooLarge) with a readable message.
    A HEIF/HEIC file (``ftyp`` box first) is decoded by ``decode_heif_gray``.
    """
    if data[4:8] == b"ftyp":
        return decode_heif_gray(data, long_side)
    try:
        # Pillow warns (DecompressionBombWarning) above MAX_IMAGE_PIXELS and raises above twice
        # that. The filter makes the warning an error here; the explicit size check below makes
        # the same refusal when another thread's catch_warnings has restored the filters
        # meanwhile (warnings filters are process-global, and checks also run in threads).
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=_FORMATS) as img:
                width, height = img.size
                refuse_bombs(width, height)
                target = _target(width, height, long_side)
                img.draft("L", target)
                img.load()
                gray = img if img.mode == "L" else img.convert("L")
                if gray.size != target:
                    gray = gray.resize(target, Image.Resampling.BOX)
                pixels = np.asarray(gray, dtype=np.uint8)
    except ImageDecodeError:
        raise  # our own refusal (a ValueError): not to be rewrapped below
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise ImageTooLarge(f"Image too large to decode safely ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise ImageDecodeError("Not a readable JPEG image") from exc
    except OSError as exc:
        if "truncated" in str(exc).lower():
            raise TruncatedImage(f"Image data is truncated ({exc})") from exc
        raise ImageDecodeError(f"Corrupt JPEG data ({exc})") from exc
    except (SyntaxError, ValueError, EOFError) as exc:  # Pillow's parsers use all three
        raise ImageDecodeError(f"Corrupt JPEG data ({exc})") from exc
    return Gray(pixels, width, height)


def decode_heif(data: bytes) -> Image.Image:
    """The primary image of a HEIF/HEIC file, decoded whole by libheif (through pillow-heif).

    libheif has no reduced-scale decode: images over MAX_HEIF_PIXELS (or Pillow's limit) are
    refused before decoding. Raises ImageDecodeError (ImageTooLarge) with a readable message.
    """
    try:
        heif = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)
        width, height = heif.size
        if width * height > MAX_HEIF_PIXELS:
            raise ImageTooLarge(
                f"HEIF image too large to decode ({width}x{height}; the limit is "
                f"{MAX_HEIF_PIXELS:,} pixels)"
            )
        refuse_bombs(width, height)
        return heif.to_pillow()
    except ImageDecodeError:
        raise
    except (ValueError, RuntimeError, OSError, EOFError) as exc:  # libheif's errors
        raise ImageDecodeError(f"Corrupt HEIF data ({exc})") from exc


def decode_heif_gray(data: bytes, long_side: int) -> Gray:
    """``decode_gray`` for a HEIF/HEIC file: decoded whole, then reduced to luma."""
    image = decode_heif(data)
    width, height = image.size
    gray = image.convert("L")
    target = _target(width, height, long_side)
    if gray.size != target:
        gray = gray.resize(target, Image.Resampling.BOX)
    return Gray(np.asarray(gray, dtype=np.uint8), width, height)
