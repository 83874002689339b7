"""The result document's ``site_area``: what the maps fit, and the photos they list instead."""

from __future__ import annotations

from qc_tool.demo.defects import moved
from qc_tool.domain.checks.site import ImageEvidence, judge_site
from qc_tool.domain.models import TRUNCATED_BODY, FolderSummary, ImageResult, ScanResult
from qc_tool.services.checks.result import OUTSIDE_SITE_M, result_document
from qc_tool.services.checks.run import CheckReport

ORIGIN = (52.37, 4.89)


def _scan(images: list[ImageResult]) -> ScanResult:
    folders: dict[str, FolderSummary] = {}
    for image in images:
        folders.setdefault(image.folder, FolderSummary(image.folder)).add(image)
    return ScanResult("S", list(folders.values()), images)


def _at(path: str, metres: float, bearing: float = 45.0, **kw: object) -> ImageResult:
    lat, lon = moved(*ORIGIN, metres, bearing)
    return ImageResult(path, 1000, 0, lat=lat, lon=lon, **kw)  # type: ignore[arg-type]


def _site() -> list[ImageResult]:
    """Twelve photos around the tower, one 3 km away, one without GPS, and two broken files
    far away (a cut-off one the checks still read, and an unreadable one they skip)."""
    images = [_at(f"b-folder/DJI_{n:04d}.JPG", 20.0 + 5 * n, 30.0 * n) for n in range(12)]
    images.append(_at("A-folder/DJI_0099.JPG", 3000.0))
    images.append(ImageResult("A-folder/DJI_0100.JPG", 1000, 0, gps_note="no GPS tags"))
    images.append(_at("A-folder/DJI_0101.JPG", 2500.0, error=TRUNCATED_BODY))
    images.append(_at("A-folder/DJI_0102.JPG", 4000.0, error="not a JPEG"))
    return images


def test_the_far_photo_is_listed_with_its_distance_and_the_centre_stays_at_the_site() -> None:
    area = result_document(_scan(_site()))["site_area"]
    assert area["outside_site_m"] == OUTSIDE_SITE_M == 500.0
    assert area["outside"] == [
        {"path": "A-folder/DJI_0099.JPG", "distance_m": area["outside"][0]["distance_m"]}
    ]
    assert 2900 < area["outside"][0]["distance_m"] < 3100
    lat, lon = area["centre"]
    assert abs(lat - ORIGIN[0]) < 0.001 and abs(lon - ORIGIN[1]) < 0.001


def test_the_listed_photos_are_exactly_those_the_position_check_fails() -> None:
    images = _site()
    read = [i for i in images if i.error in (None, TRUNCATED_BODY)]  # what check_site judges
    evidence = [ImageEvidence(i.path, "preview", lat=i.lat, lon=i.lon) for i in read]
    report = CheckReport("S")
    report.images = judge_site(evidence)
    document = result_document(_scan(images), report)
    drawn = {i["path"] for i in document["images"] if i["lat"] is not None and not i["error"]}
    flagged = {i["path"] for i in document["images"] if "outside_site" in i["problems"]}
    listed = [o["path"] for o in document["site_area"]["outside"]]
    assert listed == sorted(flagged & drawn) == ["A-folder/DJI_0099.JPG"]
    # The cut-off file far away fails the check too, but the maps do not draw it.
    assert "A-folder/DJI_0101.JPG" in flagged


def test_a_site_without_positions_has_no_centre_and_nothing_outside() -> None:
    area = result_document(_scan([ImageResult("A/1.JPG", 1, 0)]))["site_area"]
    assert area["centre"] is None and area["outside"] == []
