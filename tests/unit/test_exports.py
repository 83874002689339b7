"""Every export of a result document, parsed back: CSV, GeoJSON, KML, GPX, geo.txt, the report."""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
import zipfile
from collections import Counter
from typing import Any

import pytest
from qc_tool.adapters.local import LocalConnector
from qc_tool.demo.sites import SiteLayout, add_broken_files, generate_site, make_body
from qc_tool.domain.checks.result import CheckOutcome, ImageChecks
from qc_tool.domain.models import FolderSummary, ImageResult, ScanResult
from qc_tool.domain.structure import StructureProfile, check_structure
from qc_tool.errors import NotFound
from qc_tool.services.checks.result import result_document
from qc_tool.services.checks.run import CheckReport
from qc_tool.services.exports import (
    EXPORTS,
    download_name,
    geojson,
    gpx,
    images_csv,
    kml,
    odm_geo_txt,
    print_report,
    rejected_csv,
    render_export,
)
from qc_tool.services.ports import NoCache
from qc_tool.services.scan.site_analysis_service import scan_site

KML = "{http://www.opengis.net/kml/2.2}"
GPX = "{http://www.topografix.com/GPX/1/1}"
SITE = "10069746"
LAYOUT = SiteLayout(folders=(("Tower-Scans", 9), ("Site-Sign", 4)), without_gps=2)


def _blur(ok: bool, score: float) -> CheckOutcome:
    message = f"Sharp: focus {score}" if ok else f"Blurred: focus {score} (site median 80)"
    return CheckOutcome("blur", ok, message, score, 40.0)


def _exposure(mean: float) -> CheckOutcome:
    if mean < 40:
        return CheckOutcome("exposure", False, f"Under-exposed: mean {mean}", mean, "under")
    return CheckOutcome("exposure", True, f"Exposure fine: mean {mean}", mean)


def _report(scan: ScanResult, outcomes: dict[str, tuple[CheckOutcome, ...]]) -> CheckReport:
    """A check report as check_site builds one: per image, then failure counts per folder."""
    report = CheckReport(scan.site)
    for image in scan.images:
        if image.path in outcomes:
            checks = ImageChecks.of(image.path, outcomes[image.path], "preview", 0.01)
            report.images.append(checks)
            report.folders.setdefault(image.folder, Counter()).update(
                o.name for o in checks.failures
            )
    return report


@pytest.fixture(scope="module")
def scan(tmp_path_factory: pytest.TempPathFactory) -> ScanResult:
    """A real scan of a generated site: 2 folders reusing file names, 2 photos without GPS,
    an empty, a cut-off and a PNG-named-.JPG file."""
    root = tmp_path_factory.mktemp("sites")
    generate_site(root, SITE, LAYOUT, body=make_body(LAYOUT))
    add_broken_files(root, SITE, "Site-Sign", 900, make_body(LAYOUT))
    return scan_site(LocalConnector(root), NoCache(), SITE)


@pytest.fixture
def scan_document(scan: ScanResult) -> dict[str, Any]:
    return result_document(scan)


@pytest.fixture
def document(scan: ScanResult) -> dict[str, Any]:
    """The scan merged with checks: one blurred, one dark photo, the rest passed."""
    readable = [i for i in scan.images if i.error is None]
    outcomes = {i.path: (_blur(True, 90.0 + n), _exposure(120.0)) for n, i in enumerate(readable)}
    outcomes["Tower-Scans/DJI_0003.JPG"] = (_blur(False, 12.5), _exposure(120.0))
    outcomes["Tower-Scans/DJI_0004.JPG"] = (_blur(True, 95.0), _exposure(21.0))
    profile = StructureProfile.from_dict(
        {"folders": ["Tower-Scans", "Tower-Top", {"name": "Site-Sign", "min_images": 10}]}
    )
    structure = check_structure(profile, {f.name: f.images for f in scan.folders})
    return result_document(scan, _report(scan, outcomes), structure)


def _image(path: str, lat: float | None = None, lon: float | None = None, **kw: Any) -> ImageResult:
    return ImageResult(path=path, size=1000, mtime=1, lat=lat, lon=lon, **kw)


def _document(images: list[ImageResult], site: str = "S1") -> dict[str, Any]:
    """A scan document made from the real model classes, for the cases a generated site lacks."""
    result = ScanResult(site)
    folders: dict[str, FolderSummary] = {}
    for image in images:
        folders.setdefault(image.folder, FolderSummary(image.folder)).add(image)
    result.folders, result.images = list(folders.values()), images
    return result_document(result)


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


# The registry and download names


def test_every_format_has_a_renderer_a_media_type_and_a_download_name(
    document: dict[str, Any],
) -> None:
    names = {}
    for name, fmt in EXPORTS.items():
        download = render_export(document, name)
        assert download.body and download.mimetype == fmt.mimetype
        names[name] = download.filename
    assert names == {
        "csv": f"{SITE}-images.csv",
        "geojson": f"{SITE}-photos.geojson",
        "kml": f"{SITE}-photos.kml",
        "gpx": f"{SITE}-flights.gpx",
        "odm": f"{SITE}-geo.txt",
        "odm-folders": f"{SITE}-geo-per-folder.zip",
        "rejected": f"{SITE}-rejected.csv",
        "report": f"{SITE}-report.html",
    }


def test_download_names_keep_only_safe_characters() -> None:
    assert download_name("../../etc/passwd", "kml", "kml") == "etc_passwd-kml.kml"
    assert download_name('Site "A"; rm -rf', "photos", "geojson") == "Site_A_rm_-rf-photos.geojson"
    assert download_name("Tour Eiffel é", "report", "html") == "Tour_Eiffel_-report.html"
    assert download_name("...", "", "../x") == "export.x"
    assert len(download_name("x" * 500, "images", "csv")) <= 124


def test_an_unknown_format_is_not_found(document: dict[str, Any]) -> None:
    with pytest.raises(NotFound, match="no export format 'xls'"):
        render_export(document, "xls")


def test_a_folder_export_holds_only_that_folder_and_says_so_in_its_name(
    document: dict[str, Any],
) -> None:
    download = render_export(document, "csv", folder="Site-Sign")
    rows = _rows(download.body.decode())
    assert download.filename == f"{SITE}-Site-Sign-images.csv"
    assert len(rows) == 4 + 3 and {r["folder"] for r in rows} == {"Site-Sign"}
    with pytest.raises(NotFound, match="no folder 'Nope'"):
        render_export(document, "csv", folder="Nope")


# CSV


def test_the_csv_has_every_image_with_every_field_and_measured_value(
    document: dict[str, Any],
) -> None:
    rows = _rows(images_csv(document))
    assert [r["path"] for r in rows] == [i["path"] for i in document["images"]]
    by_path = {r["path"]: r for r in rows}
    for image in document["images"]:
        row = by_path[image["path"]]
        for field in ("lat", "lon", "alt", "taken", "camera", "iso", "exposure_time", "size"):
            expected = "" if image[field] is None else str(image[field])
            assert row[field] == expected, (image["path"], field)
    blurred = by_path["Tower-Scans/DJI_0003.JPG"]
    assert blurred["valid"] == "False" and blurred["failures"] == "blur"
    assert blurred["blur_value"] == "12.5" and blurred["exposure_value"] == "120.0"
    assert blurred["reasons"] == "Blurred: focus 12.5 (site median 80)"
    assert by_path["Tower-Scans/DJI_0004.JPG"]["failures"] == "exposure"
    assert by_path["Site-Sign/DJI_0900.JPG"]["error"] == "empty file (0 bytes)"
    assert by_path["Site-Sign/DJI_0900.JPG"]["failures"] == "unreadable"
    assert by_path["Site-Sign/DJI_0900.JPG"]["blur_value"] == ""  # never checked


def test_the_csv_works_without_checks(scan_document: dict[str, Any]) -> None:
    text = images_csv(scan_document)
    header = next(csv.reader(io.StringIO(text)))
    assert not [c for c in header if c.endswith("_value")]
    rows = _rows(text)
    assert len(rows) == LAYOUT.total + 3
    failed = Counter(r["failures"] for r in rows if r["valid"] == "False")
    assert failed == {"missing_gps": 2, "unreadable": 3}


def test_csv_cells_that_a_spreadsheet_would_run_as_formulas_are_quoted() -> None:
    images = [
        _image("=cmd|' -C calc'!A0/a.jpg", 52.0, -70.5, camera='=HYPERLINK("http://x")'),
        _image("F/b.jpg", -33.4, 4.9, camera="+SUM(1,2)", gps_note="@evil"),
        _image("F/c.jpg", error="-2+3"),
        _image("F/d.jpg", 1.0, 2.0, camera="\tTAB"),
        _image("@x/e.jpg"),
    ]
    rows = _rows(images_csv(_document(images)))
    assert rows[0]["path"] == "'=cmd|' -C calc'!A0/a.jpg"
    assert rows[0]["folder"] == "'=cmd|' -C calc'!A0"
    assert rows[0]["camera"] == '\'=HYPERLINK("http://x")'
    assert rows[1]["camera"] == "'+SUM(1,2)" and rows[1]["gps_note"] == "'@evil"
    assert rows[2]["error"] == "'-2+3"
    assert rows[3]["camera"] == "'\tTAB"
    # Numbers are ours, not user input: a negative coordinate stays a number.
    assert rows[0]["lon"] == "-70.5" and rows[1]["lat"] == "-33.4"
    rejected = _rows(rejected_csv(_document(images)))
    assert [(r["path"], r["folder"]) for r in rejected] == [("F/c.jpg", "F"), ("'@x/e.jpg", "'@x")]


# GeoJSON


def test_geojson_has_a_point_per_located_photo_in_lon_lat_alt_order(
    document: dict[str, Any],
) -> None:
    collection = json.loads(geojson(document))
    assert collection["type"] == "FeatureCollection"
    points = [f for f in collection["features"] if f["geometry"]["type"] == "Point"]
    located = [i for i in document["images"] if i["lat"] is not None]
    assert len(points) == len(located) == LAYOUT.with_gps
    assert collection["without_gps"] == len(document["images"]) - len(located) == 2 + 3
    by_path = {f["properties"]["path"]: f for f in points}
    for image in located:
        feature = by_path[image["path"]]
        assert feature["geometry"]["coordinates"] == [image["lon"], image["lat"], image["alt"]]
        props = feature["properties"]
        assert props["folder"] == image["path"].split("/")[0]
        assert props["taken"] == image["taken"] and props["camera"] == image["camera"]
    assert by_path["Tower-Scans/DJI_0003.JPG"]["properties"]["valid"] is False
    assert by_path["Tower-Scans/DJI_0003.JPG"]["properties"]["failures"] == ["blur"]
    assert by_path["Tower-Scans/DJI_0001.JPG"]["properties"]["valid"] is True


def test_geojson_has_a_time_ordered_flight_path_per_folder(document: dict[str, Any]) -> None:
    collection = json.loads(geojson(document))
    lines = {
        f["properties"]["folder"]: f
        for f in collection["features"]
        if f["geometry"]["type"] == "LineString"
    }
    assert set(lines) == {"Tower-Scans", "Site-Sign"}
    for folder, line in lines.items():
        located = sorted(
            (i for i in document["images"] if i["path"].startswith(folder + "/") and i["lat"]),
            key=lambda i: i["taken"],
        )
        assert line["geometry"]["coordinates"] == [[i["lon"], i["lat"], i["alt"]] for i in located]
        assert line["properties"]["start"] == located[0]["taken"]


def test_a_flight_path_follows_capture_time_not_file_names() -> None:
    images = [
        _image("A/DJI_0001.JPG", 1.0, 10.0, taken="2024-05-14T09:00:05"),
        _image("A/DJI_0002.JPG", 2.0, 20.0, taken="2024-05-14T09:00:01"),
        _image("A/DJI_0003.JPG", 3.0, 30.0, taken=None),
        _image("A/DJI_0004.JPG", 4.0, 40.0, taken="2024-05-14T09:00:03"),
        _image("B/DJI_0001.JPG", 5.0, 50.0, taken="2024-05-14T09:00:03"),
    ]
    features = json.loads(geojson(_document(images)))["features"]
    lines = [f for f in features if f["geometry"]["type"] == "LineString"]
    assert len(lines) == 1, "one located photo makes no line (RFC 7946 wants two positions)"
    assert lines[0]["geometry"]["coordinates"] == [
        [20.0, 2.0],
        [40.0, 4.0],
        [10.0, 1.0],
        [30.0, 3.0],
    ]
    points = [f for f in features if f["geometry"]["type"] == "Point"]
    assert points[0]["geometry"]["coordinates"] == [10.0, 1.0], "no altitude: two coordinates"


# KML


def test_kml_has_a_folder_per_site_folder_with_placemarks_and_a_flight_path(
    document: dict[str, Any],
) -> None:
    root = ET.fromstring(kml(document))
    assert root.tag == f"{KML}kml"
    folders = {f.findtext(f"{KML}name"): f for f in root.iter(f"{KML}Folder")}
    assert set(folders) == {"Tower-Scans", "Site-Sign"}
    located = {i["path"]: i for i in document["images"] if i["lat"] is not None}
    seen = []
    for name, folder in folders.items():
        marks = folder.findall(f"{KML}Placemark")
        photos = [m for m in marks if m.find(f"{KML}Point") is not None]
        paths = [m for m in marks if m.find(f"{KML}LineString") is not None]
        assert len(paths) == 1 and paths[0].findtext(f"{KML}name") == f"{name} flight path"
        line = paths[0].findtext(f"{KML}LineString/{KML}coordinates") or ""
        assert len(line.split()) == len(photos)
        for mark in photos:
            data = {d.get("name"): d.findtext(f"{KML}value") for d in mark.iter(f"{KML}Data")}
            image = located[data["path"] or ""]
            lon, lat, alt = (mark.findtext(f"{KML}Point/{KML}coordinates") or "").split(",")
            assert (float(lon), float(lat), float(alt)) == (
                image["lon"],
                image["lat"],
                image["alt"],
            )
            seen.append(data["path"])
    assert sorted(seen) == sorted(located)
    styles = Counter(m.findtext(f"{KML}styleUrl") for m in root.iter(f"{KML}Placemark"))
    assert styles == {"#valid": len(located) - 2, "#failed": 2, "#path": 2}


def test_kml_escapes_markup_and_drops_characters_xml_cannot_hold() -> None:
    images = [
        _image("A & B/<b>x</b>.jpg", 1.0, 2.0, camera="DJI\x01 <script>&amp;"),
        _image("A & B/y\ud800.jpg", 1.5, 2.5, camera="ok"),
    ]
    for export in (kml, gpx):
        text = export(_document(images, site="S&<1>"))
        root = ET.fromstring(text)  # well-formed
        assert b"<script>" not in text and b"\x01" not in text
        strings = [e.text for e in root.iter() if e.text] + [
            v for e in root.iter() for v in e.attrib.values()
        ]
        assert any("A & B/<b>x</b>.jpg" in s for s in strings)
        assert any("y.jpg" in s for s in strings)
    root = ET.fromstring(kml(_document(images, site="S&<1>")))
    assert root.findtext(f"{KML}Document/{KML}name") == "S&<1> photo QC"
    camera = [
        d.findtext(f"{KML}value") for d in root.iter(f"{KML}Data") if d.get("name") == "camera"
    ]
    assert camera[0] == "DJI <script>&amp;"


# GPX


def test_gpx_has_waypoints_then_a_track_per_folder_in_time_order(
    document: dict[str, Any],
) -> None:
    root = ET.fromstring(gpx(document))
    assert root.tag == f"{GPX}gpx" and root.get("version") == "1.1"
    order = [child.tag.removeprefix(GPX) for child in root]
    assert order[0] == "metadata" and order == sorted(order, key=["metadata", "wpt", "trk"].index)
    located = [i for i in document["images"] if i["lat"] is not None]
    waypoints = root.findall(f"{GPX}wpt")
    assert len(waypoints) == len(located)
    assert {w.findtext(f"{GPX}name") for w in waypoints} == {i["path"] for i in located}
    bounds = root.find(f"{GPX}metadata/{GPX}bounds")
    assert bounds is not None
    assert float(bounds.get("minlat", "")) == min(i["lat"] for i in located)
    tracks = {t.findtext(f"{GPX}name"): t for t in root.findall(f"{GPX}trk")}
    assert set(tracks) == {"Tower-Scans", "Site-Sign"}
    for folder, track in tracks.items():
        expected = sorted(
            (i for i in located if i["path"].startswith(folder + "/")), key=lambda i: i["taken"]
        )
        points = track.findall(f"{GPX}trkseg/{GPX}trkpt")
        assert [(float(p.get("lat", "")), float(p.get("lon", ""))) for p in points] == [
            (i["lat"], i["lon"]) for i in expected
        ]
        assert [float(p.findtext(f"{GPX}ele") or "") for p in points] == [
            i["alt"] for i in expected
        ]
        assert [p.findtext(f"{GPX}time") for p in points] == [i["taken"] for i in expected]
        # wptType's schema order: ele before time.
        assert [c.tag.removeprefix(GPX) for c in points[0]] == ["ele", "time"]


# OpenDroneMap geo.txt


def _read_like_odm(text: str) -> tuple[str, dict[str, tuple[float, ...]]]:
    """What ODM's GeoFile reads: the projection line, then name -> coordinates ('#' skipped)."""
    lines = [line.strip() for line in text.strip().split("\n")]
    entries = {}
    for line in lines[1:]:
        if line and not line.startswith("#"):
            name, *coords = line.split()
            entries[name] = tuple(float(c) for c in coords)
    return lines[0], entries


def test_odm_geo_txt_lists_bare_file_names_with_lon_lat_alt(document: dict[str, Any]) -> None:
    one = render_export(document, "odm", folder="Tower-Scans").body.decode()
    projection, entries = _read_like_odm(one)
    assert projection == "EPSG:4326"
    located = [i for i in document["images"] if i["lat"] is not None and "Tower" in i["path"]]
    assert entries == {i["path"].split("/")[1]: (i["lon"], i["lat"], i["alt"]) for i in located}


def test_odm_geo_txt_leaves_out_names_it_cannot_tell_apart(document: dict[str, Any]) -> None:
    projection, entries = _read_like_odm(odm_geo_txt(document))
    assert projection == "EPSG:4326"
    names = Counter(i["path"].split("/")[1] for i in document["images"] if i["lat"] is not None)
    assert set(entries) == {n for n, uses in names.items() if uses == 1}
    text = odm_geo_txt(document)
    assert "# Site-Sign/DJI_0001.JPG " in text and "also in another folder" in text
    spaced = _document([_image("A/my photo.jpg", 1.0, 2.0), _image("A/b.jpg", 1.0, 3.0)])
    _, entries = _read_like_odm(odm_geo_txt(spaced))
    assert set(entries) == {"b.jpg"}
    assert entries["b.jpg"] == (3.0, 1.0), "no altitude: x and y only"


def test_the_per_folder_geo_txt_zip_places_every_located_photo_of_a_site_that_repeats_names(
    document: dict[str, Any],
) -> None:
    with zipfile.ZipFile(io.BytesIO(render_export(document, "odm-folders").body)) as archive:
        files = {n: archive.read(n).decode() for n in archive.namelist()}
    assert sorted(files) == ["Site-Sign/geo.txt", "Tower-Scans/geo.txt"]
    placed = {
        f"{name.split('/')[0]}/{photo}"
        for name, text in files.items()
        for photo in _read_like_odm(text)[1]
    }
    located = {i["path"] for i in document["images"] if i["lat"] is not None and not i["error"]}
    assert placed == located
    # The whole-site file says why it leaves photos out, and where to get them all.
    assert "per-folder geo.txt" in odm_geo_txt(document)


# The rejected list


def test_the_rejected_list_has_every_failed_photo_with_its_reasons(
    document: dict[str, Any],
) -> None:
    rows = {r["path"]: r for r in _rows(rejected_csv(document))}
    missing = [i["path"] for i in document["images"] if i["lat"] is None and not i["error"]]
    broken = [i["path"] for i in document["images"] if i["error"]]
    assert set(rows) == {"Tower-Scans/DJI_0003.JPG", "Tower-Scans/DJI_0004.JPG", *missing, *broken}
    assert rows["Tower-Scans/DJI_0004.JPG"]["reasons"] == "Under-exposed: mean 21.0"
    assert rows["Site-Sign/DJI_0902.JPG"]["failures"] == "unreadable"
    assert "not a JPEG" in rows["Site-Sign/DJI_0902.JPG"]["reasons"]
    assert all(rows[p]["failures"] == "missing_gps" for p in missing)


# The printable report


def test_the_report_is_self_contained_with_totals_folders_map_and_failures(
    document: dict[str, Any],
) -> None:
    html = print_report(document)
    # Nothing to fetch: the one <link> is the icon, as a data: URL.
    assert not re.search(
        r'<script|<link(?! rel="icon" type="image/svg\+xml" href="data:)|\bsrc=|url\('
        r"|https?://(?!www\.w3\.org/2000/svg)",
        html,
    )
    assert "@media print" in html and f"site {SITE}" in html
    located = sum(1 for i in document["images"] if i["lat"] is not None)
    svg = re.search(r'<svg class="map".*?</svg>', html, re.DOTALL)
    assert svg is not None and svg.group(0).count("<circle") == located
    # The invalid photos are the verdict's, the same as the rejected list's.
    failed = [r["path"] for r in _rows(rejected_csv(document))]
    assert sorted(failed) == sorted(document["verdict"]["invalid"])
    assert f"Invalid photos ({len(failed)})" in html
    for path in failed:
        assert f"<td>{path}</td>" in html
    assert "Blurred: focus 12.5 (site median 80)" in html
    # The folder table gives each folder's invalid photos and why, by the verdict's names.
    folders = re.search(r'<table class="folders">.*?</table>', html, re.DOTALL)
    assert folders is not None
    header = re.findall(r'<th class="num">([^<]*)</th>', folders.group(0))
    assert header == ["Photos", "In subfolders", "With GPS", "Invalid", "Other files"]
    tower = re.search(r"<tr><td>Tower-Scans</td>(.*?)</tr>", folders.group(0), re.DOTALL)
    assert tower is not None
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", tower.group(1))
    tower_missing = sum(
        1 for i in document["images"] if i["lat"] is None and i["path"].startswith("Tower")
    )
    # Photos, in subfolders (none: blank), with GPS, invalid, other files (none: blank), why.
    assert cells[:5] == ["9", "", str(9 - tower_missing), str(2 + tower_missing), ""]
    assert cells[5] == ("No GPS, " if tower_missing else "") + "Blurred, Exposure"  # worst first


def _checked_document(images: list[ImageResult], site: str = "S1") -> dict[str, Any]:
    """The result document (with the verdict) of a scan made from the real model classes."""
    result = ScanResult(site)
    folders: dict[str, FolderSummary] = {}
    for image in images:
        folders.setdefault(image.folder, FolderSummary(image.folder)).add(image)
    result.folders, result.images = list(folders.values()), images
    return result_document(result)


def test_the_report_escapes_what_it_shows() -> None:
    images = [_image("<script>alert(1)</script>/x.jpg", error="<img src=x onerror=alert(1)>")]
    html = print_report(_checked_document(images, site="<b>S</b>"))
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;/x.jpg" in html
    assert "site &lt;b&gt;S&lt;/b&gt;" in html


def test_the_report_works_without_checks_and_without_positions(scan: ScanResult) -> None:
    html = print_report(result_document(scan))
    assert "The photo checks did not run" in html
    empty = print_report(_checked_document([_image("A/x.jpg")]))
    assert "<svg" not in empty and "Invalid photos (1)" in empty


def test_the_report_is_served_with_a_policy_that_allows_its_own_css_and_nothing_else(
    document: dict[str, Any],
) -> None:
    import base64
    import hashlib

    download = render_export(document, "report")
    html = download.body.decode()
    styles = re.findall(r"<style>(.*?)</style>", html, re.DOTALL)
    assert len(styles) == 1
    digest = base64.b64encode(hashlib.sha256(styles[0].encode()).digest()).decode()
    assert download.policy is not None
    directives = dict(d.split(" ", 1) for d in download.policy.split("; "))
    assert directives["style-src"] == f"'sha256-{digest}'"
    assert directives["default-src"] == "'none'" and "script-src" not in directives
    # No inline style attributes: a hash allows style elements only.
    assert not re.search(r"\sstyle\s*=", html) and "<script" not in html
    assert all(render_export(document, n).policy is None for n in EXPORTS if n != "report")


def test_the_report_calls_out_missing_folders_and_sequence_gaps(document: dict[str, Any]) -> None:
    html = print_report(document)
    assert "<h2>Site structure</h2>" in html
    for message in document["structure"]["messages"]:
        assert f'<li class="bad">{message}</li>' in html
    assert any("Tower-Top" in m for m in document["structure"]["messages"])
    gaps = document["gaps"]
    assert gaps, "the broken files (DJI_0900...) leave a numbering gap"
    assert f"Gaps in the sequence ({len(gaps)})" in html
    for gap in gaps:
        assert f"<td>{gap['after']}</td><td>{gap['before']}</td><td>{gap['detail']}</td>" in html
    plain = print_report({**document, "structure": None, "gaps": []})
    assert "Site structure" not in plain and "Gaps in the sequence" not in plain


def test_maps_show_a_photo_not_judged_as_neither_valid_nor_failed() -> None:
    """valid null (checks not run, or a DNG without a preview) is its own state everywhere."""
    document = _document([_image("F/a.JPG", -33.86, 151.2), _image("F/b.DNG", -33.861, 151.201)])
    assert [i["valid"] for i in document["images"]] == [None, None]
    styles = Counter(
        e.text for e in ET.fromstring(kml(document)).iter() if e.tag.endswith("styleUrl")
    )
    assert styles == {"#unchecked": 2, "#path": 1}
    types = [e.text for e in ET.fromstring(gpx(document)).iter() if e.tag.endswith("type")]
    assert types == ["unchecked", "unchecked"]
    assert [
        f["properties"].get("valid") for f in json.loads(geojson(document))["features"][:2]
    ] == [None, None]
    html = print_report(document)
    assert "<title>F/a.JPG: not judged</title>" in html and ": valid</title>" not in html
