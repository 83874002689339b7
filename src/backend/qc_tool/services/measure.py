"""The CPU half of the photo checks, run in worker processes: decode once, measure everything."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from qc_tool.domain.checks.decode import ImageDecodeError
from qc_tool.domain.checks.integrity import IntegrityMeasure, measure_integrity
from qc_tool.domain.checks.pixels import PixelMeasures, analyse_pixels
from qc_tool.domain.checks.rules import parse_dji_xmp
from qc_tool.domain.checks.settings import CheckSettings
from qc_tool.domain.pixel_reader import PixelSource


@dataclass(frozen=True, slots=True)
class Measured:
    """What a worker found in one photo's pixels; small, so it crosses processes cheaply."""

    pixels: PixelMeasures | None
    decode_error: str | None
    integrity: IntegrityMeasure | None
    digest: str
    gimbal_pitch: float | None
    cpu_seconds: float


def measure(size: int, source: PixelSource, settings: CheckSettings) -> Measured:
    """Measure one photo. A whole file also gets the integrity check (it decodes to the end)."""
    started = time.process_time()
    pixels: PixelMeasures | None = None
    error: str | None = None
    try:
        pixels = analyse_pixels(source.data, source=source.source, settings=settings)
    except ImageDecodeError as exc:
        error = str(exc) or type(exc).__name__
    integrity = measure_integrity(source.data) if source.source == "full" else None
    # Identical files have identical size, header and pixels read; a digest of those
    # finds byte-identical copies without reading the whole of every file.
    digest = hashlib.sha256(size.to_bytes(8, "big") + source.header + source.data).hexdigest()
    pitch = parse_dji_xmp(source.header).get("GimbalPitchDegree")
    return Measured(pixels, error, integrity, digest, pitch, time.process_time() - started)
