"""The CPU half of the photo checks, run in worker processes: decode once, measure everything."""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from qc_tool.domain.checks.band import analyse_band
from qc_tool.domain.checks.blur import BlurMeasure
from qc_tool.domain.checks.decode import ImageDecodeError
from qc_tool.domain.checks.exposure import ExposureMeasure
from qc_tool.domain.checks.integrity import IntegrityMeasure, band_integrity, measure_integrity
from qc_tool.domain.checks.pixels import PixelMeasures, analyse_pixels
from qc_tool.domain.checks.rules import parse_dji_xmp
from qc_tool.domain.checks.settings import CheckSettings
from qc_tool.domain.flight import FlightFacts, flight_facts
from qc_tool.domain.mpf import find_mpf_preview
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
    flight: FlightFacts | None = None  # from the DJI XMP; None: the photo has no XMP facts


def measure(size: int, source: PixelSource, settings: CheckSettings) -> Measured:
    """Measure one photo. A whole file also gets the integrity check (it decodes to the end),
    and so does a band (from its end marker and the rows it decoded)."""
    started = time.process_time()
    pixels: PixelMeasures | None = None
    error: str | None = None
    integrity: IntegrityMeasure | None = None
    if source.source == "band":
        pixels, error, integrity = _measure_band(source, settings)
    else:
        try:
            pixels = analyse_pixels(source.data, source=source.source, settings=settings)
        except ImageDecodeError as exc:
            error = str(exc) or type(exc).__name__
        # A HEIF read whole has no JPEG end marker to look for: decoding it is its check.
        whole_jpeg = source.source == "full" and source.data.startswith(b"\xff\xd8")
        integrity = measure_integrity(source.data) if whole_jpeg else None
    if integrity is not None and integrity.problem is None:
        integrity = _preview_cut_off(integrity, source.header, size)
    xmp = parse_dji_xmp(source.header)
    flight = flight_facts(xmp) if xmp else None
    pitch = xmp.get("GimbalPitchDegree")
    elapsed = time.process_time() - started
    return Measured(pixels, error, integrity, _digest(size, source), pitch, elapsed, flight)


def _measure_band(
    source: PixelSource, settings: CheckSettings
) -> tuple[PixelMeasures | None, str | None, IntegrityMeasure]:
    """Focus on the band, exposure and pHash on the thumbnail, integrity from the tail."""
    band = source.band
    width, height = source.dimensions or (0, 0)
    error = source.band_error
    pixels = None
    if band is not None:
        width, height = band.width, band.height
        try:
            pixels = analyse_band(band, source.thumbnail, settings)
        except ImageDecodeError as exc:
            error = str(exc) or type(exc).__name__
    elif error is None:
        error = "Corrupt JPEG data: nothing of the image could be decoded"
    return pixels, error, band_integrity(width, height, source.tail, error)


def _digest(size: int, source: PixelSource) -> str:
    """Identical files have identical size, header and pixels read; a digest of those finds
    byte-identical copies without reading the whole of every file."""
    h = hashlib.sha256(size.to_bytes(8, "big") + source.header + source.data)
    if source.source == "band":
        h.update(source.prefix_bytes.to_bytes(8, "big") + source.tail)
        h.update(source.thumbnail or b"")
        if source.band is not None:
            h.update(source.band.pixels.tobytes())
    return h.hexdigest()


def _preview_cut_off(integrity: IntegrityMeasure, header: bytes, size: int) -> IntegrityMeasure:
    """A file cut right after its main image ends with an end marker and decodes: only the
    MPF index, which says where the preview was, shows that the file was longer."""
    declared = find_mpf_preview(header)
    if declared is None or declared[0] + declared[1] <= size:
        return integrity
    end = declared[0] + declared[1]
    detail = (
        f"the header places the embedded preview at bytes {declared[0]:,}-{end:,}, "
        f"past the end of the file ({size:,} bytes)"
    )
    return replace(integrity, problem="truncated", detail=detail)


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """Where a photo's pixels came from: what the stats and the resolution check need."""

    source: str  # "preview" | "full" | "band"
    bytes_read: int
    dimensions: tuple[int, int] | None  # of the main image


@dataclass(frozen=True, slots=True)
class CachedMeasure:
    """One photo's measures as the cache keeps them, with where its pixels came from."""

    measured: Measured
    info: SourceInfo

    def to_json(self) -> dict[str, Any]:
        return {"measured": asdict(self.measured), "info": asdict(self.info)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CachedMeasure:
        """The inverse of ``to_json``; raises KeyError/TypeError/ValueError on a bad record."""
        m, i = data["measured"], data["info"]
        pixels = m["pixels"]
        integrity = m["integrity"]
        dims = i["dimensions"]
        return cls(
            Measured(
                pixels=None
                if pixels is None
                else PixelMeasures(
                    **{
                        **_known(PixelMeasures, pixels),
                        "blur": BlurMeasure(
                            **{
                                **pixels["blur"],
                                "direction_scores": tuple(pixels["blur"]["direction_scores"]),
                            }
                        ),
                        "exposure": ExposureMeasure(**pixels["exposure"]),
                    }
                ),
                decode_error=m["decode_error"],
                integrity=None if integrity is None else IntegrityMeasure(**integrity),
                digest=str(m["digest"]),
                gimbal_pitch=m["gimbal_pitch"],
                cpu_seconds=float(m["cpu_seconds"]),
                # A record from before the flight facts has no key: it is measured again.
                flight=None if m["flight"] is None else FlightFacts.from_json(m["flight"]),
            ),
            SourceInfo(
                str(i["source"]), int(i["bytes_read"]), None if dims is None else (dims[0], dims[1])
            ),
        )


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    return {f.name: data[f.name] for f in fields(cls)}
