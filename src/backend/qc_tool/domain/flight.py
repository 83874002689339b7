"""How a DJI photo was flown, from the ``drone-dji:`` XMP properties: height, gimbal, RTK.

``parse_dji_xmp`` (domain/checks/rules.py) gives the numeric properties; this turns them into
the facts the result document shows (``height_m``, ``gimbal``, ``rtk``) and the coverage and
capture rules use. A property the photo lacks stays None: not knowing is never a zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

RtkFix = Literal["fixed", "float", "none"]
# DJI's RtkFlag: 0 no position, 16 single point, 34 float solution, 50 fixed solution.
_RTK_FIX: dict[int, RtkFix] = {50: "fixed", 34: "float"}


@dataclass(frozen=True, slots=True)
class FlightFacts:
    """What the drone recorded about one shot (None: not recorded)."""

    height_m: float | None = None  # RelativeAltitude: above the take-off point
    absolute_alt_m: float | None = None  # AbsoluteAltitude
    gimbal_pitch: float | None = None  # degrees; -90 is straight down
    gimbal_yaw: float | None = None  # degrees clockwise from true north
    gimbal_roll: float | None = None
    flight_yaw: float | None = None  # the aircraft's heading, degrees from true north
    rtk_fix: RtkFix | None = None  # None: no RTK fields in the photo
    rtk_std_m: tuple[float, float, float] | None = None  # lon, lat, height standard deviations

    @property
    def camera_yaw(self) -> float | None:
        """Where the camera looked: the gimbal's yaw, else the aircraft's heading."""
        return self.gimbal_yaw if self.gimbal_yaw is not None else self.flight_yaw

    def gimbal_json(self) -> dict[str, float | None] | None:
        if self.gimbal_pitch is None and self.gimbal_yaw is None and self.gimbal_roll is None:
            return None
        return {"pitch": self.gimbal_pitch, "yaw": self.gimbal_yaw, "roll": self.gimbal_roll}

    def rtk_json(self) -> dict[str, Any] | None:
        if self.rtk_fix is None:
            return None
        std = list(self.rtk_std_m) if self.rtk_std_m is not None else None
        return {"fix": self.rtk_fix, "std_m": std}

    def to_json(self) -> dict[str, Any]:
        return {
            "height_m": self.height_m,
            "absolute_alt_m": self.absolute_alt_m,
            "gimbal_pitch": self.gimbal_pitch,
            "gimbal_yaw": self.gimbal_yaw,
            "gimbal_roll": self.gimbal_roll,
            "flight_yaw": self.flight_yaw,
            "rtk_fix": self.rtk_fix,
            "rtk_std_m": list(self.rtk_std_m) if self.rtk_std_m is not None else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FlightFacts:
        """The inverse of ``to_json``; raises KeyError/TypeError/ValueError on a bad record."""
        std = data["rtk_std_m"]
        fix = data["rtk_fix"]
        if fix not in (None, "fixed", "float", "none"):
            raise ValueError(f"bad rtk_fix {fix!r}")
        return cls(
            height_m=_opt(data["height_m"]),
            absolute_alt_m=_opt(data["absolute_alt_m"]),
            gimbal_pitch=_opt(data["gimbal_pitch"]),
            gimbal_yaw=_opt(data["gimbal_yaw"]),
            gimbal_roll=_opt(data["gimbal_roll"]),
            flight_yaw=_opt(data["flight_yaw"]),
            rtk_fix=fix,
            rtk_std_m=None if std is None else (float(std[0]), float(std[1]), float(std[2])),
        )


def _opt(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def flight_facts(xmp: Mapping[str, float]) -> FlightFacts:
    """The facts from ``parse_dji_xmp``'s properties; yaws normalised to [-180, 180)."""
    flag = xmp.get("RtkFlag")
    fix: RtkFix | None = None
    if flag is not None:
        fix = _RTK_FIX.get(int(flag), "none")
    stds = [xmp.get(k) for k in ("RtkStdLon", "RtkStdLat", "RtkStdHgt")]
    std = None
    if stds[0] is not None and stds[1] is not None and stds[2] is not None:
        std = (abs(stds[0]), abs(stds[1]), abs(stds[2]))
    return FlightFacts(
        height_m=xmp.get("RelativeAltitude"),
        absolute_alt_m=xmp.get("AbsoluteAltitude"),
        gimbal_pitch=xmp.get("GimbalPitchDegree"),
        gimbal_yaw=_yaw(xmp.get("GimbalYawDegree")),
        gimbal_roll=xmp.get("GimbalRollDegree"),
        flight_yaw=_yaw(xmp.get("FlightYawDegree")),
        rtk_fix=fix,
        rtk_std_m=std,
    )


def _yaw(value: float | None) -> float | None:
    return None if value is None else (value + 180.0) % 360.0 - 180.0
