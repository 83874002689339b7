"""The printable report renders the verdict and fits its map to the site (issue 11)."""

from __future__ import annotations

import re
from typing import Any

from qc_tool.demo.defects import moved
from qc_tool.domain.checks.site import ImageEvidence, judge_site
from qc_tool.domain.models import FolderSummary, ImageResult, ScanResult
from qc_tool.domain.structure import StructureReport
from qc_tool.services.checks.result import result_document
from qc_tool.services.checks.run import CheckReport
from qc_tool.services.exports import print_report

ORIGIN = (52.37, 4.89)
FAR = "Tower/DJI_0099.JPG"


def _at(path: str, metres: float, bearing: float) -> ImageResult:
    lat, lon = moved(*ORIGIN, metres, bearing)
    return ImageResult(path, 1000, 0, lat=lat, lon=lon)


def _document(structure: StructureReport | None = None) -> dict[str, Any]:
    """A checked site: photos around the tower in three folders (names in mixed case), one
    photo 3 km away, one without GPS."""
    images = [_at(f"Tower/DJI_{n:04d}.JPG", 30.0 + n, 40.0 * n) for n in range(8)]
    images += [_at(f"antenna/DJI_{n:04d}.JPG", 60.0 + n, 25.0 * n) for n in range(5)]
    images += [_at(f"Cable/DJI_{n:04d}.JPG", 45.0, 60.0 * n) for n in range(4)]
    images.append(_at(FAR, 3000.0, 45.0))
    images.append(ImageResult("Cable/DJI_0050.JPG", 1000, 0, gps_note="no GPS tags"))
    folders: dict[str, FolderSummary] = {}
    for image in images:
        folders.setdefault(image.folder, FolderSummary(image.folder)).add(image)
    scan = ScanResult("S1", list(folders.values()), images)
    report = CheckReport("S1")
    report.images = judge_site(
        [ImageEvidence(i.path, "preview", lat=i.lat, lon=i.lon) for i in images]
    )
    return result_document(scan, report, structure)


def test_the_report_starts_with_the_verdict_as_the_document_gives_it() -> None:
    document = _document()
    verdict = document["verdict"]
    html = print_report(document)
    assert verdict["decision"] == "refly"
    banner = re.search(r'<section class="verdict refly".*?</section>', html, re.DOTALL)
    assert banner is not None
    assert html.index('<section class="verdict') < html.index("<h2>Folders</h2>")
    assert '<p class="verdict-decision">Re-fly needed</p>' in banner.group(0)
    detail = verdict["headline"].split(": ", 1)[1]
    assert f"<h2>{detail[0].upper()}{detail[1:]}</h2>" in banner.group(0)
    counts = {
        label: int(value)
        for value, label in re.findall(r'<span class="value">(\d+)</span>([\w ]+)</li>', html)
    }
    photos = verdict["photos"]
    assert counts == {
        "photos": photos["total"],
        "valid": photos["valid"],
        "invalid": photos["invalid"],
        "not judged": photos["unchecked"],
    }
    assert (photos["invalid"], photos["total"]) == (2, 19)
    # No site profile: the report says completeness was not checked, and how to set one.
    assert "Folder completeness was not checked" in banner.group(0)
    assert "QC_SITE_PROFILE" in banner.group(0)
    with_profile = print_report(_document(StructureReport()))
    assert "Folder completeness was not checked" not in with_profile


def test_the_reports_map_fits_the_site_and_lists_the_far_photo() -> None:
    document = _document()
    html = print_report(document)
    svg = re.search(r'<svg class="map".*?</svg>', html, re.DOTALL)
    assert svg is not None
    located = [i for i in document["images"] if i["lat"] is not None]
    circles = re.findall(r'<circle cx="([\d.-]+)" cy="([\d.-]+)"', svg.group(0))
    assert len(circles) == len(located) - 1, "every photo at the site, not the far one"
    assert FAR not in svg.group(0)
    # The site fills the box: its points spread over most of the map's width or height.
    xs = [float(x) for x, _ in circles]
    ys = [float(y) for _, y in circles]
    assert max(max(xs) - min(xs), max(ys) - min(ys)) > 300
    far = re.search(r'<div class="far">.*?</div>', html, re.DOTALL)
    assert far is not None and f"<li>{FAR}: 3.0 km</li>" in far.group(0)


def test_the_reports_folders_are_alphabetical() -> None:
    html = print_report(_document())
    folders = re.search(r'<table class="folders">.*?</table>', html, re.DOTALL)
    assert folders is not None
    names = re.findall(r"<tr><td>([^<]+)</td>", folders.group(0))
    assert names == ["antenna", "Cable", "Tower"]
    legend = re.findall(r"</svg>([^<]+)</li>", html)
    assert legend[:3] == ["antenna", "Cable", "Tower"]


def _tower_document() -> dict[str, Any]:
    """The planted tower flight (demo/tower.py) as a checked site with its XMP facts."""
    from qc_tool.demo.tower import TAKE_OFF_ALT, tower_flight
    from qc_tool.domain.flight import FlightFacts

    shots = tower_flight()
    images = [
        ImageResult(s.path, 1000, 0, lat=s.lat, lon=s.lon, alt=TAKE_OFF_ALT + s.height_m)
        for s in shots
    ]
    folders: dict[str, FolderSummary] = {}
    for image in images:
        folders.setdefault(image.folder, FolderSummary(image.folder)).add(image)
    report = CheckReport("T1")
    report.images = judge_site(
        [ImageEvidence(i.path, "preview", lat=i.lat, lon=i.lon) for i in images]
    )
    report.flight = {s.path: FlightFacts(height_m=s.height_m, gimbal_yaw=s.yaw) for s in shots}
    return result_document(ScanResult("T1", list(folders.values()), images), report)


def test_the_report_draws_and_lists_the_coverage_of_the_tower() -> None:
    from qc_tool.demo.tower import AIMED_AWAY, tower_flight

    document = _tower_document()
    html = print_report(document)
    assert html.count('class="tower-marker"') == 1
    assert html.count('class="orbit-ring"') == 3
    assert html.count('class="orbit-gap"') == 1
    assert html.count('class="aim-line"') == len(tower_flight())
    assert html.count('stroke="#c62828" stroke-width="1.6"') == len(AIMED_AWAY)
    assert "Tower-Scans at 45 m: 32 photos, largest gap 50°; holes 190° to 240°" in html
    assert "holes 190" in html and "estimated from the orbits" in html
    for path in AIMED_AWAY:
        assert f"{path}: camera aimed" in html
    # The re-fly list is the verdict's, naming the orbit, its height and the azimuths.
    assert "orbit at 45 m above take-off: fly again 190° to 240°" in html
