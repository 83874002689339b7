"""Coverage of a tower flight: the tower, each orbit's holes, and photos aimed elsewhere."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from qc_tool.demo.defects import moved
from qc_tool.demo.tower import AIMED_AWAY, HOLE, ORBIT_FOLDER, STRAY, TOWER, tower_flight
from qc_tool.domain.checks.geo import haversine_m
from qc_tool.domain.coverage import (
    CoverageProfile,
    CoverageProfileError,
    Gap,
    Shot,
    azimuth_gaps,
    fit_circle,
    judge_coverage,
)


def flight_shots(*, heights: bool = True, yaws: bool = True) -> list[Shot]:
    return [
        Shot(
            s.path,
            s.path.split("/", 1)[0],
            s.lat,
            s.lon,
            height_m=s.height_m if heights else None,
            alt=12.0 + s.height_m,
            yaw=s.yaw if yaws else None,
        )
        for s in tower_flight()
    ]


def test_a_tower_flight_gives_exactly_its_hole_and_its_two_photos_aimed_away() -> None:
    coverage = judge_coverage(flight_shots())
    assert coverage.source == "estimated" and coverage.tower is not None
    assert haversine_m(*coverage.tower, *TOWER) < 5.0
    assert [(o.folder, o.altitude_m) for o in coverage.orbits] == [
        (ORBIT_FOLDER, 30.0),
        (ORBIT_FOLDER, 45.0),
        (ORBIT_FOLDER, 60.0),
    ]
    assert [o.photos for o in coverage.orbits] == [36, 32, 36]  # the stray is on none
    gapped = coverage.gapped
    assert len(gapped) == 1 and gapped[0].altitude_m == HOLE[0]
    (gap,) = gapped[0].gaps
    assert gap.from_deg == pytest.approx(HOLE[1], abs=2) and gap.to_deg == pytest.approx(
        HOLE[2], abs=2
    )
    assert gapped[0].largest_gap_deg == pytest.approx(50, abs=3)
    assert {a.path for a in coverage.pointing_away} == set(AIMED_AWAY)
    for aim in coverage.pointing_away:
        assert aim.off_by_deg == pytest.approx(AIMED_AWAY[aim.path], abs=3)


def test_the_tower_given_in_the_profile_gives_the_same_findings() -> None:
    profile = CoverageProfile.from_dict({"tower": {"lat": TOWER[0], "lon": TOWER[1]}})
    coverage = judge_coverage(flight_shots(), profile)
    assert coverage.source == "profile" and coverage.tower == TOWER
    assert [o.altitude_m for o in coverage.gapped] == [HOLE[0]]
    assert {a.path for a in coverage.pointing_away} == set(AIMED_AWAY)
    document = coverage.to_json()
    assert set(document) == {"tower", "orbits", "pointing_away"}
    assert document["tower"] == {"lat": TOWER[0], "lon": TOWER[1], "source": "profile"}
    assert set(document["orbits"][0]) == {
        "folder",
        "altitude_m",
        "photos",
        "largest_gap_deg",
        "gaps",
    }
    assert set(document["pointing_away"][0]) == {"path", "off_by_deg"}


def test_orbit_folders_named_in_the_profile_are_the_only_orbits() -> None:
    named = judge_coverage(flight_shots(), CoverageProfile.from_dict({"orbits": ["Elsewhere"]}))
    assert named.orbits == () and named.tower is None


def test_circle_fit_ignores_outliers() -> None:
    rng = np.random.default_rng(3)
    angles = rng.uniform(0, 2 * math.pi, 40)
    ring = np.column_stack([7 + 20 * np.cos(angles), -4 + 20 * np.sin(angles)])
    ring += rng.normal(0, 0.3, ring.shape)
    outliers = np.array([[60.0, 60.0], [7.0, -4.0], [-50.0, 10.0], [30.0, 0.0], [0.0, 90.0]])
    fit = fit_circle(np.vstack([ring, outliers]))
    assert fit is not None
    assert fit.x == pytest.approx(7, abs=0.3) and fit.y == pytest.approx(-4, abs=0.3)
    assert fit.r == pytest.approx(20, abs=0.3)
    assert fit.inliers[:40].all() and not fit.inliers[40:].any()


def test_circle_fit_of_too_few_or_collinear_points_is_none() -> None:
    assert fit_circle(np.array([[0.0, 0.0], [1.0, 1.0]])) is None
    assert fit_circle(np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])) is None


def test_gaps_wrap_around_north() -> None:
    largest, gaps = azimuth_gaps([350.0, 355.0, 5.0, 10.0, 20.0, 30.0, *range(40, 350, 10)], 15)
    assert largest == 10.0 and gaps == []  # 355 -> 5 is 10 degrees, not 350
    largest, gaps = azimuth_gaps([*range(30, 331, 10)], 15)
    assert largest == 60.0 and gaps == [Gap(330.0, 30.0)]  # the hole across north
    assert gaps[0].width == 60.0


def test_a_hole_across_north_is_found_in_a_flight() -> None:
    shots = []
    for k, azimuth in enumerate(range(30, 331, 10)):
        lat, lon = moved(*TOWER, 25.0, azimuth)
        shots.append(Shot(f"Orbit/{k}.JPG", "Orbit", lat, lon, height_m=40.0, yaw=None))
    (orbit,) = judge_coverage(shots).orbits
    (gap,) = orbit.gaps
    assert gap.from_deg == pytest.approx(330, abs=1) and gap.to_deg == pytest.approx(30, abs=1)


def test_without_yaw_no_photo_is_called_aimed_away() -> None:
    coverage = judge_coverage(flight_shots(yaws=False))
    assert coverage.pointing_away == () and len(coverage.gapped) == 1


def test_without_height_above_take_off_orbits_group_by_gps_altitude() -> None:
    coverage = judge_coverage(flight_shots(heights=False))
    assert [o.altitude_m for o in coverage.orbits] == [42.0, 57.0, 72.0]  # 12 m take-off
    assert [o.altitude_m for o in coverage.gapped] == [57.0]


def test_without_any_height_a_folder_is_one_orbit() -> None:
    rng = random.Random(1)
    shots = []
    for k in range(30):
        lat, lon = moved(*TOWER, 30.0 + rng.uniform(-0.5, 0.5), k * 12.0)
        shots.append(Shot(f"Ring/{k}.JPG", "Ring", lat, lon))
    (orbit,) = judge_coverage(shots).orbits
    assert orbit.altitude_m is None and orbit.photos == 30 and orbit.gaps == ()


def test_a_spiral_climb_is_not_an_orbit() -> None:
    shots = []
    for k in range(60):
        lat, lon = moved(*TOWER, 20.0, k * 18.0)
        shots.append(Shot(f"Spiral/{k}.JPG", "Spiral", lat, lon, height_m=20 + k))
    assert judge_coverage(shots).orbits == ()


def test_no_located_photo_gives_no_coverage() -> None:
    coverage = judge_coverage([Shot("A/1.JPG", "A", None, None)])
    assert coverage.to_json() == {"tower": None, "orbits": [], "pointing_away": []}


@pytest.mark.parametrize(
    "data",
    [
        {"tower": {"lat": 95, "lon": 0}},
        {"tower": [1, 2]},
        {"orbits": "Tower-Scans"},
        {"sectors": [3]},
        {"max_orbit_gap_deg": 0},
        {"max_aim_off_deg": "30"},
    ],
)
def test_bad_coverage_settings_are_refused(data: dict[str, object]) -> None:
    with pytest.raises(CoverageProfileError):
        CoverageProfile.from_dict(data)


def test_stray_photo_is_in_the_plan() -> None:
    assert any(s.path == STRAY for s in tower_flight())


def test_sector_folders_named_in_the_profile_replace_the_detected_climbs() -> None:
    profile = CoverageProfile.from_dict({"sectors": ["Antenna-Sector-A"]})
    coverage = judge_coverage(flight_shots(), profile)
    # Sector B's sideways shot is no longer aim-checked; the orbit's one still is.
    assert {a.path for a in coverage.pointing_away} == {f"{ORBIT_FOLDER}/DJI_0005.JPG"}


def test_a_spiral_folder_aimed_away_is_neither_an_orbit_nor_a_climb() -> None:
    """Generated test sites fly spirals; no orbit or climb there, so their yaw is not judged."""
    shots = []
    for k in range(40):
        lat, lon = moved(*TOWER, 20.0, k * 20.0)
        shots.append(Shot(f"Spiral/{k}.JPG", "Spiral", lat, lon, height_m=20 + k, yaw=k * 20.0))
    coverage = judge_coverage(
        shots, CoverageProfile.from_dict({"tower": {"lat": TOWER[0], "lon": TOWER[1]}})
    )
    assert coverage.orbits == () and coverage.pointing_away == ()
