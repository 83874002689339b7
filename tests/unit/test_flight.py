"""DJI flight facts from the XMP: height above take-off, gimbal, RTK; and the RTK capture rules."""

from __future__ import annotations

from datetime import datetime

import pytest
from qc_tool.demo.imagegen import ImageSpec, build_jpeg
from qc_tool.demo.scene import encode_body
from qc_tool.demo.tower import FlightShot, flight_xmp
from qc_tool.domain.checks.rules import (
    CaptureFacts,
    CaptureProfile,
    ProfileError,
    check_rules,
    parse_dji_xmp,
)
from qc_tool.domain.checks.settings import CheckSettings
from qc_tool.domain.flight import FlightFacts, flight_facts
from qc_tool.domain.pixel_reader import read_pixels
from qc_tool.domain.sparse import run_program
from qc_tool.services.checks.measure import CachedMeasure, Measured, SourceInfo, measure


def dji_jpeg(rtk_flag: int = 50) -> bytes:
    shot = FlightShot("A/1.JPG", -33.9, 151.2, 45.5, -120.25, rtk_flag=rtk_flag)
    spec = ImageSpec(taken=datetime(2024, 6, 3), gps=(-33.9, 151.2, 57.5), xmp=flight_xmp(shot))
    return build_jpeg(spec, encode_body(64, 48, seed=1))


def test_the_xmp_fields_of_a_dji_photo_are_read_by_the_check_pass_header_read() -> None:
    data = dji_jpeg()
    source = run_program(read_pixels(len(data)), lambda off, n: data[off : off + n])
    facts = measure(len(data), source, CheckSettings()).flight
    assert facts == FlightFacts(
        height_m=45.5,
        absolute_alt_m=57.5,
        gimbal_pitch=-10.0,
        gimbal_yaw=-120.25,
        gimbal_roll=0.0,
        flight_yaw=-120.25,
        rtk_fix="fixed",
        rtk_std_m=(0.01234, 0.01456, 0.02345),
    )
    assert facts.gimbal_json() == {"pitch": -10.0, "yaw": -120.25, "roll": 0.0}
    assert facts.rtk_json() == {"fix": "fixed", "std_m": [0.01234, 0.01456, 0.02345]}


@pytest.mark.parametrize(("flag", "fix"), [(50, "fixed"), (34, "float"), (16, "none"), (0, "none")])
def test_rtk_flag_gives_the_fix(flag: int, fix: str) -> None:
    assert flight_facts(parse_dji_xmp(dji_jpeg(flag))).rtk_fix == fix


def test_a_photo_without_rtk_or_gimbal_fields_has_none() -> None:
    facts = flight_facts({"RelativeAltitude": 12.0})
    assert facts.height_m == 12.0 and facts.rtk_json() is None and facts.gimbal_json() is None
    assert facts.camera_yaw is None
    assert flight_facts({"FlightYawDegree": 190.0}).camera_yaw == -170.0  # normalised


def test_flight_facts_survive_the_measure_cache_and_old_records_are_measured_again() -> None:
    facts = flight_facts(parse_dji_xmp(dji_jpeg()))
    cached = CachedMeasure(
        Measured(None, None, None, "d", -10.0, 0.01, facts), SourceInfo("preview", 9, None)
    )
    assert CachedMeasure.from_json(cached.to_json()) == cached
    old = cached.to_json()
    del old["measured"]["flight"]
    with pytest.raises(KeyError):  # the cache skips such a record: the photo is read again
        CachedMeasure.from_json(old)


def test_the_capture_profile_can_require_an_rtk_fix_and_a_maximum_deviation() -> None:
    profile = CaptureProfile.from_dict({"require_rtk_fix": True, "max_rtk_std_m": 0.02})
    fixed = CaptureFacts(rtk_fix="fixed", rtk_std_m=(0.01, 0.012, 0.019))
    assert [o.ok for o in check_rules(profile, fixed)] == [True, True]
    floating = CaptureFacts(rtk_fix="float", rtk_std_m=(0.01, 0.012, 0.35))
    fix, std = check_rules(profile, floating)
    assert (fix.name, fix.ok, std.name, std.ok) == ("rtk_fix", False, "rtk_std", False)
    assert "not fixed (float)" in fix.message and "0.35 m above the maximum 0.02 m" in std.message
    unknown = check_rules(profile, CaptureFacts())
    assert all(o.ok and not o.judged for o in unknown)


@pytest.mark.parametrize("table", [{"require_rtk_fix": "yes"}, {"max_rtk_std_m": -1}])
def test_bad_rtk_rules_are_refused(table: dict[str, object]) -> None:
    with pytest.raises(ProfileError):
        CaptureProfile.from_dict(table)
