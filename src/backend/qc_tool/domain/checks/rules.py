"""Capture rules a site's photos must follow (ISO, shutter, gimbal pitch, camera), and DJI XMP."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

from .result import CheckOutcome

_XMP_START = b"<x:xmpmeta"
_XMP_END = b"</x:xmpmeta>"
_XMP_MAX = 256 * 1024  # DJI's packet is a few KB; never scan more than this
_ATTRIBUTE = re.compile(rb"""drone-dji:(\w+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_ELEMENT = re.compile(rb"<drone-dji:(\w+)>\s*([^<]{0,64}?)\s*</drone-dji:\1>")
_KNOWN_KEYS = {
    "max_iso",
    "min_shutter",
    "gimbal_pitch_range",
    "allowed_models",
    "require_rtk_fix",
    "max_rtk_std_m",
}


class ProfileError(ValueError):
    """A capture profile that cannot be used; the message names the offending key."""


@dataclass(frozen=True, slots=True)
class CaptureFacts:
    """What the header says about how a photo was taken (None when not recorded)."""

    iso: float | None = None
    exposure_time: float | None = None  # seconds
    model: str | None = None  # "Make Model" or just the model
    gimbal_pitch: float | None = None  # degrees, from DJI XMP GimbalPitchDegree; -90 is nadir
    rtk_fix: str | None = None  # "fixed" | "float" | "none" from DJI XMP RtkFlag; None: no RTK
    rtk_std_m: tuple[float, float, float] | None = None  # RtkStdLon, RtkStdLat, RtkStdHgt


@dataclass(frozen=True, slots=True)
class CaptureProfile:
    """The rules of a site's flight plan; each is optional (None: not checked)."""

    max_iso: float | None = None
    min_shutter: float | None = None  # slowest allowed exposure time, seconds (1/500 = 0.002)
    gimbal_pitch_range: tuple[float, float] | None = None  # (min, max) degrees
    allowed_models: tuple[str, ...] | None = None
    require_rtk_fix: bool = False  # every photo's RTK solution must be fixed
    max_rtk_std_m: float | None = None  # largest allowed RTK standard deviation (any axis)

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> CaptureProfile:
        """Build from a parsed JSON or TOML table; raises ProfileError on a bad or unknown key."""
        unknown = set(data) - _KNOWN_KEYS
        if unknown:
            raise ProfileError(f"Unknown capture rule(s): {', '.join(sorted(unknown))}")
        pitch = data.get("gimbal_pitch_range")
        models = data.get("allowed_models")
        require_fix = data.get("require_rtk_fix", False)
        if not isinstance(require_fix, bool):
            raise ProfileError(f"require_rtk_fix must be true or false, not {require_fix!r}")
        return cls(
            max_iso=_positive("max_iso", data.get("max_iso")),
            min_shutter=_shutter(data.get("min_shutter")),
            gimbal_pitch_range=None if pitch is None else _pitch_range(pitch),
            allowed_models=None if models is None else _models(models),
            require_rtk_fix=require_fix,
            max_rtk_std_m=_positive("max_rtk_std_m", data.get("max_rtk_std_m")),
        )


def _number(key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ProfileError(f"{key} must be a number, not {value!r}")
    return float(value)


def _positive(key: str, value: object) -> float | None:
    if value is None:
        return None
    number = _number(key, value)
    if number <= 0:
        raise ProfileError(f"{key} must be positive, not {value!r}")
    return number


def _shutter(value: object) -> float | None:
    """An exposure time in seconds, given as a number or as a fraction string like "1/500"."""
    if isinstance(value, str):
        try:
            value = float(Fraction(value.strip().removesuffix("s").strip()))
        except (ValueError, ZeroDivisionError) as exc:
            raise ProfileError(f"min_shutter must look like 1/500, not {value!r}") from exc
    return _positive("min_shutter", value)


def _pitch_range(value: object) -> tuple[float, float]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ProfileError(f"gimbal_pitch_range must be [min, max], not {value!r}")
    low, high = (_number("gimbal_pitch_range", v) for v in value)
    if low > high:
        raise ProfileError(f"gimbal_pitch_range minimum {low:g} is above its maximum {high:g}")
    return low, high


def _models(value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise ProfileError("allowed_models must be a non-empty list of camera models")
    if not all(isinstance(v, str) and v.strip() for v in value):
        raise ProfileError(f"allowed_models must hold camera model names, not {value!r}")
    return tuple(str(v).strip() for v in value)


def parse_dji_xmp(header: bytes) -> dict[str, float]:
    """The numeric ``drone-dji:`` properties of the XMP packet in a JPEG header.

    DJI writes them as attributes (``drone-dji:GimbalPitchDegree="-90.00"``); other tools
    rewrite them as elements (``<drone-dji:GimbalPitchDegree>-90.00</...>``). Both are read;
    non-numeric values are skipped. Keys lose the prefix: {"GimbalPitchDegree": -90.0, ...}.
    """
    start = header.find(_XMP_START)
    if start < 0:
        return {}
    end = header.find(_XMP_END, start, start + _XMP_MAX)
    packet = header[start : end if end >= 0 else start + _XMP_MAX]
    found: dict[str, float] = {}
    pairs = [(m[1], m[2] or m[3]) for m in _ATTRIBUTE.finditer(packet)]
    pairs += [(m[1], m[2]) for m in _ELEMENT.finditer(packet)]
    for name, raw in pairs:
        try:
            number = float(raw.decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            continue
        if math.isfinite(number):
            found.setdefault(name.decode("ascii"), number)
    return found


def _format_shutter(seconds: float) -> str:
    if 0 < seconds < 1:
        return f"1/{round(1 / seconds)} s"
    return f"{seconds:g} s"


def _not_recorded(name: str, what: str) -> CheckOutcome:
    message = f"{what} not recorded in the photo; rule not checked"
    return CheckOutcome(name, True, message, judged=False)


def _model_allowed(model: str, allowed: tuple[str, ...]) -> bool:
    """Case- and space-insensitive; "FC6310" matches a camera recorded as "DJI FC6310"."""
    norm = " ".join(model.lower().split())
    for entry in allowed:
        want = " ".join(entry.lower().split())
        if norm == want or norm.endswith(" " + want):
            return True
    return False


def _iso_rule(limit: float, iso: float | None) -> CheckOutcome:
    if iso is None:
        return _not_recorded("iso", "ISO")
    ok = iso <= limit
    verdict = "within" if ok else "above"
    return CheckOutcome("iso", ok, f"ISO {iso:g} {verdict} the maximum {limit:g}", iso, limit)


def _shutter_rule(limit: float, seconds: float | None) -> CheckOutcome:
    if seconds is None:
        return _not_recorded("shutter", "Exposure time")
    ok = seconds <= limit * (1 + 1e-6)  # tolerate float noise from EXIF rationals
    verdict = "no slower than" if ok else "slower than"
    shown, slowest = _format_shutter(seconds), _format_shutter(limit)
    message = f"Shutter {shown} {verdict} the slowest allowed {slowest}"
    return CheckOutcome("shutter", ok, message, seconds, limit)


def _pitch_rule(span: tuple[float, float], pitch: float | None) -> CheckOutcome:
    if pitch is None:
        return _not_recorded("gimbal_pitch", "Gimbal pitch")
    low, high = span
    ok = low <= pitch <= high
    text = f"{low:g}° to {high:g}°"
    verdict = "within" if ok else "outside"
    return CheckOutcome(
        "gimbal_pitch", ok, f"Gimbal pitch {pitch:g}° {verdict} {text}", pitch, text
    )


def _model_rule(allowed: tuple[str, ...], model: str | None) -> CheckOutcome:
    if not model:
        return _not_recorded("camera_model", "Camera model")
    ok = _model_allowed(model, allowed)
    names = ", ".join(allowed)
    verdict = "is one of" if ok else "is not one of"
    message = f"Camera {model} {verdict} the allowed models ({names})"
    return CheckOutcome("camera_model", ok, message, model, names)


def _rtk_fix_rule(fix: str | None) -> CheckOutcome:
    if fix is None:
        return _not_recorded("rtk_fix", "RTK status")
    ok = fix == "fixed"
    message = "RTK fixed" if ok else f"RTK not fixed ({fix}); a fixed solution is required"
    return CheckOutcome("rtk_fix", ok, message, fix, "fixed")


def _rtk_std_rule(limit: float, std: tuple[float, float, float] | None) -> CheckOutcome:
    if std is None:
        return _not_recorded("rtk_std", "RTK deviation")
    worst = max(std)
    ok = worst <= limit
    verdict = "within" if ok else "above"
    message = f"RTK deviation {worst:.3g} m {verdict} the maximum {limit:g} m"
    return CheckOutcome("rtk_std", ok, message, round(worst, 4), limit)


def check_rules(profile: CaptureProfile, facts: CaptureFacts) -> list[CheckOutcome]:
    """One outcome per rule the profile sets; a fact the photo lacks is reported as not judged."""
    out: list[CheckOutcome] = []
    if profile.max_iso is not None:
        out.append(_iso_rule(profile.max_iso, facts.iso))
    if profile.min_shutter is not None:
        out.append(_shutter_rule(profile.min_shutter, facts.exposure_time))
    if profile.gimbal_pitch_range is not None:
        out.append(_pitch_rule(profile.gimbal_pitch_range, facts.gimbal_pitch))
    if profile.allowed_models is not None:
        out.append(_model_rule(profile.allowed_models, facts.model))
    if profile.require_rtk_fix:
        out.append(_rtk_fix_rule(facts.rtk_fix))
    if profile.max_rtk_std_m is not None:
        out.append(_rtk_std_rule(profile.max_rtk_std_m, facts.rtk_std_m))
    return out
