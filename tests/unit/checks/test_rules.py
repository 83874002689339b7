"""Capture profiles, DJI XMP parsing, and the rule outcomes."""

from __future__ import annotations

import json
import tomllib

import pytest
from qc_tool.domain.checks.rules import (
    CaptureFacts,
    CaptureProfile,
    ProfileError,
    check_rules,
    parse_dji_xmp,
)

from .jpegs import DJI_XMP_ATTRIBUTES, DJI_XMP_ELEMENTS, gradient_jpeg, with_xmp

PROFILE_TOML = """
max_iso = 400
min_shutter = "1/500"
gimbal_pitch_range = [-95, -85]
allowed_models = ["FC6310", "DJI M3E"]
"""


def test_a_profile_loads_from_toml_and_json_alike() -> None:
    from_toml = CaptureProfile.from_dict(tomllib.loads(PROFILE_TOML))
    from_json = CaptureProfile.from_dict(
        json.loads(
            '{"max_iso": 400, "min_shutter": 0.002, "gimbal_pitch_range": [-95, -85],'
            ' "allowed_models": ["FC6310", "DJI M3E"]}'
        )
    )
    assert from_toml == from_json
    assert from_toml.min_shutter == pytest.approx(1 / 500)
    assert from_toml.gimbal_pitch_range == (-95.0, -85.0)


def test_every_rule_is_optional() -> None:
    profile = CaptureProfile.from_dict({})
    assert profile == CaptureProfile()
    assert check_rules(profile, CaptureFacts(iso=12800)) == []


@pytest.mark.parametrize(
    ("table", "complaint"),
    [
        ({"max_isos": 400}, "Unknown capture rule(s): max_isos"),
        ({"max_iso": "high"}, "max_iso must be a number"),
        ({"max_iso": True}, "max_iso must be a number"),
        ({"max_iso": -1}, "max_iso must be positive"),
        ({"min_shutter": "fast"}, "min_shutter must look like 1/500"),
        ({"min_shutter": "1/0"}, "min_shutter must look like 1/500"),
        ({"gimbal_pitch_range": [-90]}, "gimbal_pitch_range must be [min, max]"),
        ({"gimbal_pitch_range": [-80, -90]}, "minimum -80 is above its maximum -90"),
        ({"allowed_models": []}, "allowed_models must be a non-empty list"),
        ({"allowed_models": ["FC6310", 3]}, "allowed_models must hold camera model names"),
    ],
)
def test_a_bad_profile_is_refused_with_the_key_named(
    table: dict[str, object], complaint: str
) -> None:
    with pytest.raises(ProfileError) as caught:
        CaptureProfile.from_dict(table)
    assert complaint in str(caught.value)


def test_dji_attributes_are_read_from_a_jpeg_header() -> None:
    header = with_xmp(gradient_jpeg(64, 48), DJI_XMP_ATTRIBUTES)
    xmp = parse_dji_xmp(header)
    assert xmp["GimbalPitchDegree"] == -89.9
    assert xmp["FlightYawDegree"] == -11.8
    assert xmp["RelativeAltitude"] == 45.2
    assert "DewarpData" not in xmp  # not a number


def test_dji_elements_are_read_too() -> None:
    xmp = parse_dji_xmp(with_xmp(gradient_jpeg(64, 48), DJI_XMP_ELEMENTS))
    assert xmp == {"GimbalPitchDegree": -45.5, "FlightYawDegree": 170.25, "RelativeAltitude": 30.1}


@pytest.mark.parametrize(
    "header",
    [b"", gradient_jpeg(64, 48), b"<x:xmpmeta drone-dji:GimbalPitchDegree='-12.5'", b"\xff" * 1000],
)
def test_headers_without_a_full_packet_do_not_fail(header: bytes) -> None:
    xmp = parse_dji_xmp(header)
    assert xmp in ({}, {"GimbalPitchDegree": -12.5})


def test_rules_pass_and_fail_with_clear_messages() -> None:
    profile = CaptureProfile.from_dict(tomllib.loads(PROFILE_TOML))
    good = check_rules(profile, CaptureFacts(100, 1 / 1000, "DJI FC6310", -90.0))
    assert [o.ok for o in good] == [True, True, True, True]
    bad = check_rules(profile, CaptureFacts(800, 1 / 250, "Hasselblad L2D-20c", -45.0))
    assert [(o.name, o.ok) for o in bad] == [
        ("iso", False),
        ("shutter", False),
        ("gimbal_pitch", False),
        ("camera_model", False),
    ]
    assert [o.message for o in bad] == [
        "ISO 800 above the maximum 400",
        "Shutter 1/250 s slower than the slowest allowed 1/500 s",
        "Gimbal pitch -45° outside -95° to -85°",
        "Camera Hasselblad L2D-20c is not one of the allowed models (FC6310, DJI M3E)",
    ]


def test_an_exposure_of_exactly_the_limit_passes() -> None:
    profile = CaptureProfile(min_shutter=1 / 500)
    (outcome,) = check_rules(profile, CaptureFacts(exposure_time=0.002))
    assert outcome.ok


def test_models_match_without_regard_to_case_spacing_or_the_make() -> None:
    profile = CaptureProfile(allowed_models=("dji  m3e",))
    assert check_rules(profile, CaptureFacts(model="DJI M3E"))[0].ok
    assert check_rules(CaptureProfile(allowed_models=("M3E",)), CaptureFacts(model="DJI M3E"))[0].ok
    assert not check_rules(CaptureProfile(allowed_models=("3E",)), CaptureFacts(model="DJI M3E"))[
        0
    ].ok


def test_facts_missing_from_the_photo_are_not_judged() -> None:
    profile = CaptureProfile.from_dict(tomllib.loads(PROFILE_TOML))
    outcomes = check_rules(profile, CaptureFacts())
    assert all(o.ok and not o.judged for o in outcomes)
    assert outcomes[2].message == "Gimbal pitch not recorded in the photo; rule not checked"
