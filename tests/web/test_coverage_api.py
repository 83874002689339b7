"""Coverage end to end: a tower flight on the in-process SFTP server, judged through the web API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from qc_tool.demo.tower import AIMED_AWAY, HOLE, ORBIT_FOLDER, TOWER, tower_flight, write_tower_site
from qc_tool.domain.checks.geo import haversine_m

from web.support import MakeApp, log_in
from web.test_overview import run_qc

SITE = "TOWER-1"


@pytest.fixture
def tower_site(sites_dir: Path) -> Path:
    write_tower_site(sites_dir, SITE, tower_flight())
    return sites_dir / SITE


def qc(make_app: MakeApp, user: str, password: str, **config: Any) -> dict[str, Any]:
    client = make_app(**config).test_client()
    log_in(client, user, password)
    job = run_qc(client, SITE)
    assert job["state"] == "done", job
    result: dict[str, Any] = job["result"]  # type: ignore[assignment]
    return result


def assert_the_planted_findings(result: dict[str, Any], hole_height: float, which: str) -> None:
    coverage = result["coverage"]
    assert set(coverage) == {"tower", "orbits", "pointing_away"}
    gapped = [o for o in coverage["orbits"] if o["gaps"]]
    assert [(o["folder"], o["altitude_m"]) for o in gapped] == [(ORBIT_FOLDER, hole_height)]
    (gap,) = gapped[0]["gaps"]
    assert abs(gap["from_deg"] - HOLE[1]) <= 2 and abs(gap["to_deg"] - HOLE[2]) <= 2
    assert len(coverage["orbits"]) == 3
    refly = {r["folder"]: r for r in result["verdict"]["refly"]}
    assert "orbit_gap" in refly[ORBIT_FOLDER]["reasons"]
    # The note says which height it gives: with and without the checks they differ.
    assert f"orbit at {hole_height:.0f} m{which}: fly again" in refly[ORBIT_FOLDER]["note"]


def test_a_tower_flight_is_judged_for_coverage_through_the_api(
    make_app: MakeApp, sftp_username: str, sftp_password: str, tower_site: Path
) -> None:
    result = qc(make_app, sftp_username, sftp_password)
    assert_the_planted_findings(result, HOLE[0], " above take-off")  # from the XMP
    coverage = result["coverage"]
    assert coverage["tower"]["source"] == "estimated"
    assert haversine_m(coverage["tower"]["lat"], coverage["tower"]["lon"], *TOWER) < 5
    assert {a["path"] for a in coverage["pointing_away"]} == set(AIMED_AWAY)
    by_path = {i["path"]: i for i in result["images"]}
    # Only the planted findings: every other photo of the flight is valid (distinct pictures,
    # each with its own EXIF thumbnail, so none is a near-duplicate of another).
    assert {p for p, i in by_path.items() if i["valid"] is False} == set(AIMED_AWAY)
    for path in AIMED_AWAY:
        assert by_path[path]["valid"] is False
        assert "pointing_away" in by_path[path]["problems"]
        assert any("away from the tower" in r for r in by_path[path]["reasons"])
    image = by_path[f"{ORBIT_FOLDER}/DJI_0001.JPG"]
    assert image["height_m"] == 30.0
    assert set(image["gimbal"]) == {"pitch", "yaw", "roll"} and image["gimbal"]["pitch"] == -10.0
    assert image["rtk"] == {"fix": "fixed", "std_m": [0.01234, 0.01456, 0.02345]}
    assert [r["folder"] for r in result["site_area"]["rings"]] == [ORBIT_FOLDER] * 3


def test_the_tower_from_the_site_profile_gives_the_same_findings(
    make_app: MakeApp, sftp_username: str, sftp_password: str, tower_site: Path, tmp_path: Path
) -> None:
    profile = tmp_path / "site.json"
    profile.write_text(
        json.dumps({"tower": {"lat": TOWER[0], "lon": TOWER[1]}, "orbits": [ORBIT_FOLDER]})
    )
    result = qc(make_app, sftp_username, sftp_password, QC_SITE_PROFILE=profile)
    assert_the_planted_findings(result, HOLE[0], " above take-off")
    assert result["coverage"]["tower"] == {"lat": TOWER[0], "lon": TOWER[1], "source": "profile"}
    assert {a["path"] for a in result["coverage"]["pointing_away"]} == set(AIMED_AWAY)


def test_the_gps_pass_alone_finds_the_hole_by_gps_altitude(
    make_app: MakeApp, sftp_username: str, sftp_password: str, tower_site: Path
) -> None:
    """Without the check pass no XMP is read: GPS altitude groups the orbits, no yaw is known."""
    result = qc(make_app, sftp_username, sftp_password, QC_CHECKS=0)
    # The take-off point's GPS altitude is 12 m.
    assert_the_planted_findings(result, HOLE[0] + 12.0, " (GPS altitude)")
    assert result["coverage"]["pointing_away"] == []
    assert all(i["height_m"] is None and i["gimbal"] is None for i in result["images"])
