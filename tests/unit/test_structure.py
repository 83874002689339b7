"""The site profile: expected folders (names or patterns), minimum photos, clear errors."""

from __future__ import annotations

import pytest
from qc_tool.domain.structure import StructureProfile, StructureProfileError, check_structure

PROFILE = {
    "min_images_per_folder": 10,
    "folders": ["Tower top", {"name": "Sector *", "min_images": 30}, "Cabinet"],
}


def test_missing_folders_and_short_folders_are_called_out() -> None:
    profile = StructureProfile.from_dict(PROFILE)
    report = check_structure(
        profile, {"tower TOP": 12, "Sector A": 31, "Sector B": 29, "Compound": 4}
    )
    assert not report.ok
    assert report.missing == ("Cabinet",)
    assert report.too_few == (("Sector B", 29, 30), ("Compound", 4, 10))
    assert report.unexpected == ("Compound",)
    assert report.messages == (
        "Missing folder: Cabinet",
        "Folder Sector B has 29 photos (at least 30 expected)",
        "Folder Compound has 4 photos (at least 10 expected)",
    )


def test_a_site_that_matches_its_profile_is_ok() -> None:
    profile = StructureProfile.from_dict(PROFILE)
    report = check_structure(profile, {"Tower top": 10, "Sector 1": 30, "Cabinet": 11})
    assert report.ok and report.to_json()["missing"] == [] and report.unexpected == ()


def test_an_empty_profile_expects_nothing() -> None:
    assert check_structure(StructureProfile.from_dict({}), {"Any": 0}).ok


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "a site profile is a JSON object"),
        ({"folder": []}, "unknown keys: folder"),
        ({"min_images_per_folder": -1}, "min_images_per_folder must be a whole number"),
        ({"min_images_per_folder": True}, "min_images_per_folder must be a whole number"),
        ({"folders": "Tower"}, "folders must be a list"),
        ({"folders": [{"min_images": 3}]}, "a folder is a name or"),
        ({"folders": [{"name": "A", "min_images": 2.5}]}, "min_images of A must be"),
    ],
)
def test_a_bad_profile_says_what_is_wrong(data: object, message: str) -> None:
    with pytest.raises(StructureProfileError, match=message):
        StructureProfile.from_dict(data)  # type: ignore[arg-type]


def test_the_site_profile_carries_the_coverage_settings_to_its_report() -> None:
    profile = StructureProfile.from_dict(
        {
            "folders": ["Tower-Scans"],
            "tower": {"lat": -33.86882, "lon": 151.2093},
            "orbits": ["Tower-Scans"],
            "sectors": ["Antenna-*"],
            "max_orbit_gap_deg": 20,
            "max_aim_off_deg": 25,
        }
    )
    coverage = check_structure(profile, {"Tower-Scans": 100}).coverage
    assert coverage.tower == (-33.86882, 151.2093)
    assert coverage.is_orbit_folder("tower-scans") and coverage.is_sector_folder("Antenna-B")
    assert (coverage.max_orbit_gap_deg, coverage.max_aim_off_deg) == (20.0, 25.0)
    with pytest.raises(StructureProfileError, match="max_aim_off_deg"):
        StructureProfile.from_dict({"max_aim_off_deg": 400})
