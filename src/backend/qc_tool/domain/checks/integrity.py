"""Is the whole file there and decodable? Truncation, missing end marker, corrupt data.

Two ways to tell: a full decode of the whole file (``measure_integrity``, for whole-file
reads), or, for a photo read as a band, the end-of-image marker in the file's last bytes and
the decode of the rows that were read (``band_integrity``). Neither finds damage inside the
entropy-coded data that libjpeg resynchronises past; the band does not decode the rows below
it at all (docs/checks.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .decode import ImageDecodeError, ImageTooLarge, TruncatedImage, decode_gray
from .result import CheckOutcome

_EOI = b"\xff\xd9"

Problem = Literal["truncated", "no_eoi", "corrupt", "too_large"]


@dataclass(frozen=True, slots=True)
class IntegrityMeasure:
    """What a full decode found: image size (0 if undecodable), end marker, and the problem."""

    width: int
    height: int
    has_eoi: bool
    problem: Problem | None = None
    detail: str = ""
    partial: bool = False  # judged from the end marker and a band of rows, not a full decode


def has_eoi(data: bytes) -> bool:
    """True when the file ends with a JPEG end-of-image marker (zero padding after it allowed).

    For a DJI file this is the end of the MPF preview appended after the main image, so a file
    cut anywhere, even after the main image, fails.
    """
    return data.rstrip(b"\x00").endswith(_EOI)


def measure_integrity(data: bytes) -> IntegrityMeasure:
    """Decode the whole main image and look for the end marker.

    The decode uses libjpeg's 1/8 scale: every byte of entropy-coded data is still read (so a
    truncated stream is still detected), but the inverse DCT and colour work mostly vanish.
    Pillow's LOAD_TRUNCATED_IMAGES is left as the caller set it (False by default); the end
    marker check catches a cut file even if it is True. Damage inside the entropy-coded data
    that libjpeg resynchronises past (it draws the affected blocks wrongly) is not detected.
    """
    eoi = has_eoi(data)
    try:
        gray = decode_gray(data, long_side=1)  # draft then picks its smallest scale, 1/8
    except TruncatedImage as exc:
        return IntegrityMeasure(0, 0, eoi, "truncated", str(exc))
    except ImageTooLarge as exc:
        return IntegrityMeasure(0, 0, eoi, "too_large", str(exc))
    except ImageDecodeError as exc:
        return IntegrityMeasure(0, 0, eoi, "corrupt", str(exc))
    return IntegrityMeasure(gray.width, gray.height, eoi, None if eoi else "no_eoi")


def band_integrity(
    width: int, height: int, tail: bytes, decode_error: str | None
) -> IntegrityMeasure:
    """Integrity of a photo read as a band: its last bytes must end with the end marker (a
    file cut anywhere loses it) and the rows read must decode."""
    eoi = has_eoi(tail)
    if decode_error is not None:
        return IntegrityMeasure(0, 0, eoi, "corrupt", decode_error, partial=True)
    return IntegrityMeasure(width, height, eoi, None if eoi else "no_eoi", partial=True)


def integrity_outcome(measure: IntegrityMeasure) -> CheckOutcome:
    """The technician's reading of an integrity measure."""
    m = measure
    size = f"{m.width}x{m.height}"
    if m.problem == "truncated":
        return CheckOutcome("integrity", False, f"Truncated file: {m.detail}", m.problem)
    if m.problem == "too_large":
        return CheckOutcome("integrity", False, m.detail, m.problem)
    if m.problem == "corrupt":
        return CheckOutcome("integrity", False, f"Unreadable image: {m.detail}", m.problem)
    if m.problem == "no_eoi":
        return CheckOutcome(
            "integrity",
            False,
            f"Truncated file: the {size} image "
            + ("header reads" if m.partial else "decodes")
            + " but the file does not end with an end-of-image marker (cut during transfer?)",
            m.problem,
        )
    if m.partial:
        message = (
            f"File complete: the {size} JPEG ends with its end-of-image marker and its top "
            "rows decode"
        )
        return CheckOutcome("integrity", True, message, size)
    return CheckOutcome("integrity", True, f"File complete: the {size} JPEG decodes fully", size)


def check_integrity(data: bytes) -> CheckOutcome:
    """Measure and judge the integrity of a whole JPEG file in one call."""
    return integrity_outcome(measure_integrity(data))
