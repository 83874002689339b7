"""GPS validation: EXIF rationals to signed decimal degrees, or a reason they are unusable."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rational:
    num: int
    den: int


class GpsInvalid(ValueError):
    """GPS tags are present but cannot be trusted; the message says why."""


def dms_to_degrees(values: Sequence[Rational]) -> float | None:
    """Degrees, minutes, seconds to degrees; None when any denominator is 0 (EXIF's "unknown")."""
    if len(values) != 3:
        raise GpsInvalid(f"expected 3 rationals (deg, min, sec), got {len(values)}")
    if any(v.den == 0 for v in values):
        return None
    deg, minutes, seconds = (v.num / v.den for v in values)
    if min(deg, minutes, seconds) < 0:
        # The sign lives in the N/S/E/W reference; a negative part is a corrupt (signed) value.
        raise GpsInvalid("a negative degree, minute or second value")
    # 60 itself is allowed: firmware rounding 59.99996 up writes it.
    for name, part in (("minutes", minutes), ("seconds", seconds)):
        if part > 60:
            raise GpsInvalid(f"{name} value {part:g} is above 60")
    return deg + minutes / 60 + seconds / 3600


def apply_ref(value: float, ref: str, negative: str, positive: str) -> float:
    """Sign a coordinate from its N/S or E/W reference letter."""
    letter = ref.strip().upper()[:1]
    if letter == negative:
        return -value
    if letter == positive or letter == "":
        # A missing reference letter is common on cheap cameras; the value is taken as positive.
        return value
    raise GpsInvalid(f"unknown GPS reference {ref!r}")


def validate_position(lat: float, lon: float) -> None:
    if not -90.0 <= lat <= 90.0:
        raise GpsInvalid(f"latitude {lat:.6f} is outside -90..90")
    if not -180.0 <= lon <= 180.0:
        raise GpsInvalid(f"longitude {lon:.6f} is outside -180..180")


def altitude(value: Rational | None, ref: int | None) -> float | None:
    """Altitude in metres; ref 1 means below sea level. None when missing or 0/0."""
    if value is None or value.den == 0:
        return None
    metres = value.num / value.den
    return -metres if ref == 1 else metres
