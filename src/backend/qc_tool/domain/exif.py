"""Turn a fetched EXIF block into the facts a scan keeps, parsing with exifread."""

from __future__ import annotations

import io
import logging
from datetime import datetime
from fractions import Fraction
from typing import Any

import exifread

from qc_tool.domain.exif_reader import ExifBlock
from qc_tool.domain.gps import (
    GpsInvalid,
    Rational,
    altitude,
    apply_ref,
    dms_to_degrees,
    validate_position,
)
from qc_tool.domain.models import ExifSummary
from qc_tool.errors import UnreadableImage

# exifread logs every oddity of every file at WARNING; one bad image must not flood the log.
logging.getLogger("exifread").setLevel(logging.ERROR)


def summarize(block: ExifBlock) -> ExifSummary:
    """GPS, time and camera from an EXIF block; GPS problems become ``gps_error``, not exceptions."""
    if block.tiff is None:
        return ExifSummary(gps_note="no EXIF data in the file")
    tags = _parse(block.tiff)
    camera = " ".join(p for p in (_text(tags, "Image Make"), _text(tags, "Image Model")) if p)
    common: dict[str, Any] = {
        "taken": _taken(_text(tags, "EXIF DateTimeOriginal")),
        "camera": camera or None,
        "iso": _first_int(tags, "EXIF ISOSpeedRatings"),
        "exposure_time": _first_ratio(tags, "EXIF ExposureTime"),
    }
    try:
        lat, lon, alt = _position(tags)
    except GpsInvalid as exc:
        return ExifSummary(gps_note=f"GPS rejected: {exc}", **common)
    if lat is None or lon is None:
        return ExifSummary(gps_note=_missing_reason(tags), **common)
    return ExifSummary(lat=lat, lon=lon, alt=alt, **common)


def _first_int(tags: dict[str, Any], key: str) -> int | None:
    tag = tags.get(key)
    values = getattr(tag, "values", None)
    if isinstance(values, list) and values and isinstance(values[0], int):
        return values[0]
    return None


def _first_ratio(tags: dict[str, Any], key: str) -> float | None:
    tag = tags.get(key)
    values = getattr(tag, "values", None)
    if not isinstance(values, list) or not values:
        return None
    num, den = getattr(values[0], "numerator", None), getattr(values[0], "denominator", None)
    if not isinstance(num, int) or not isinstance(den, int) or den == 0:
        return None
    return num / den


def _missing_reason(tags: dict[str, Any]) -> str:
    if not any(key.startswith("GPS ") for key in tags):
        return "no GPS tags"
    if "GPS GPSLatitude" not in tags or "GPS GPSLongitude" not in tags:
        return "GPS tags without a position"
    return "GPS position unknown (zero denominators)"


def _parse(tiff: bytes) -> dict[str, Any]:
    try:
        tags: dict[str, Any] = exifread.process_file(
            io.BytesIO(tiff), details=False, extract_thumbnail=False
        )
    except RecursionError as exc:  # sub-IFD pointers that loop back on themselves
        raise UnreadableImage("corrupt EXIF: directories point at each other in a loop") from exc
    except Exception as exc:  # exifread raises bare ValueError/TypeError/struct.error on junk
        raise UnreadableImage(f"corrupt EXIF: {type(exc).__name__}") from exc
    return tags


def _text(tags: dict[str, Any], key: str) -> str | None:
    tag = tags.get(key)
    if tag is None:
        return None
    value = tag.values if isinstance(tag.values, str) else tag.printable
    text = str(value).strip().strip("\x00").strip()
    return text or None


def _taken(raw: str | None) -> str | None:
    """EXIF "YYYY:MM:DD HH:MM:SS" to ISO 8601; None for blank or impossible dates."""
    if not raw:
        return None
    try:
        return datetime.strptime(raw[:19], "%Y:%m:%d %H:%M:%S").isoformat()
    except ValueError:
        return None


def _rationals(tags: dict[str, Any], key: str) -> list[Rational] | None:
    tag = tags.get(key)
    if tag is None:
        return None
    values = tag.values if isinstance(tag.values, list) else [tag.values]
    out = []
    for v in values:
        # exifread gives RATIONAL/SRATIONAL values as Fractions (its Ratio). A plain int also
        # has numerator/denominator, so without this check a GPS tag stored as SHORT or LONG
        # would be read as whole degrees: a wrong position that looks valid.
        if not isinstance(v, Fraction):
            raise GpsInvalid(f"{key.split()[-1]} is not stored as rationals")
        out.append(Rational(int(v.numerator), int(v.denominator)))
    return out


def _position(tags: dict[str, Any]) -> tuple[float | None, float | None, float | None]:
    lat_dms = _rationals(tags, "GPS GPSLatitude")
    lon_dms = _rationals(tags, "GPS GPSLongitude")
    if lat_dms is None or lon_dms is None:
        return None, None, None
    lat = dms_to_degrees(lat_dms)
    lon = dms_to_degrees(lon_dms)
    if lat is None or lon is None:
        return None, None, None  # 0/0 means "unknown", never the point (0, 0)
    lat = apply_ref(lat, _text(tags, "GPS GPSLatitudeRef") or "", "S", "N")
    lon = apply_ref(lon, _text(tags, "GPS GPSLongitudeRef") or "", "W", "E")
    validate_position(lat, lon)
    try:
        alt_values = _rationals(tags, "GPS GPSAltitude")
    except GpsInvalid:  # a bad altitude costs the altitude, not the position
        alt_values = None
    alt_ref_tag = tags.get("GPS GPSAltitudeRef")
    alt_ref = alt_ref_tag.values[0] if alt_ref_tag is not None and alt_ref_tag.values else None
    alt = altitude(
        alt_values[0] if alt_values else None, alt_ref if isinstance(alt_ref, int) else None
    )
    return lat, lon, alt
