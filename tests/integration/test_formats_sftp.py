"""HEIC/HEIF and DNG photos over the in-process SFTP server (and the local adapter): the
positions written, a HEIC named .jpg, broken files with their reason, and the photo checks
judging the embedded JPEG, or saying "not checked" (valid null) where there is none."""

from __future__ import annotations

import multiprocessing
import struct
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from formats_support import build_dng, build_heif, exif_tiff, pillow_heic, scene_jpeg, spec_at
from qc_tool.adapters.local import LocalConnector
from qc_tool.demo.imagegen import ImageSpec, expected_altitude, expected_lat_lon
from qc_tool.demo.sftp_server import start_sftp_server
from qc_tool.domain.models import ScanResult
from qc_tool.services.checks.options import CheckOptions
from qc_tool.services.checks.result import result_document
from qc_tool.services.checks.run import CheckReport, check_site
from qc_tool.services.ports import NoCache
from qc_tool.services.scan.site_analysis_service import scan_site
from scan_support import connector

USER, PASSWORD = "tech", "pw-formats"
SITE = "F1"
RAW_PADDING = 3_000_000  # the raw image data a real DNG carries, never read

SPECS: dict[str, ImageSpec] = {
    "Phone/IMG_0001.HEIC": spec_at(-33.86882, 151.20930, 21.0),
    "Phone/IMG_0002.jpg": spec_at(-33.86890, 151.20940, 22.0),  # a HEIC under a JPEG name
    "Phone/IMG_0003.heif": spec_at(-33.86870, 151.20920, 23.0),  # with a JPEG thumbnail
    "Raw/DJI_0001.DNG": spec_at(-33.86885, 151.20935, 45.0),  # with a JPEG preview
    "Raw/DJI_0002.DNG": spec_at(-33.86880, 151.20925, 46.0),  # without
    "Phone/IMG_0006.HEIF": spec_at(-33.86886, 151.20931, 24.0),
}
AV1 = "Phone/IMG_0006.HEIF"  # AV1-coded: not decoded, so not checked
NO_EXIF = "Phone/IMG_0004.HEIC"
CORRUPT = "Phone/IMG_0005.HEIC"
HEVC_ONLY = ("Phone/IMG_0001.HEIC", "Phone/IMG_0002.jpg")


def _corrupt_heic() -> bytes:
    data = bytearray(pillow_heic(spec_at(-33.8688, 151.2093), seed=7))
    struct.pack_into(">I", data, data.index(b"iloc") - 4, 100_000)
    return bytes(data)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("formats-root")
    files = {
        "Phone/IMG_0001.HEIC": pillow_heic(SPECS["Phone/IMG_0001.HEIC"]),
        "Phone/IMG_0002.jpg": pillow_heic(SPECS["Phone/IMG_0002.jpg"], seed=4),
        "Phone/IMG_0003.heif": build_heif(
            exif=exif_tiff(SPECS["Phone/IMG_0003.heif"]),
            thumbnail=scene_jpeg(640, 480, seed=31),
            primary=bytes(1_000_000),
        ),
        NO_EXIF: pillow_heic(None, seed=6),
        AV1: build_heif(exif=exif_tiff(SPECS[AV1]), primary_type=b"av01"),
        CORRUPT: _corrupt_heic(),
        "Raw/DJI_0001.DNG": build_dng(
            SPECS["Raw/DJI_0001.DNG"], scene_jpeg(640, 480, seed=32), raw_bytes=RAW_PADDING
        ),
        "Raw/DJI_0002.DNG": build_dng(SPECS["Raw/DJI_0002.DNG"], None, raw_bytes=RAW_PADDING),
    }
    for path, data in files.items():
        target = root / "sites" / SITE / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return root


def _assert_positions(result: ScanResult) -> None:
    by_path = {i.path: i for i in result.images}
    assert set(by_path) == {*SPECS, NO_EXIF, CORRUPT}
    for path, spec in SPECS.items():
        image = by_path[path]
        assert image.error is None, (path, image.error)
        assert (image.lat, image.lon) == expected_lat_lon(spec), path
        assert image.alt == expected_altitude(spec) and image.taken == spec.taken.isoformat()
    assert (
        by_path[NO_EXIF].error is None and by_path[NO_EXIF].gps_note == "no EXIF data in the file"
    )
    assert by_path[CORRUPT].error == (
        "corrupt HEIF: the 'iloc' box at byte 45 of the 'meta' box claims 100,000 bytes, "
        "more than its container holds"
    )
    # Bytes read per file are in the stats, and a DNG costs its IFDs, not its raw data.
    assert result.stats.bytes_read == sum(i.bytes_read for i in result.images)
    for path in ("Raw/DJI_0001.DNG", "Raw/DJI_0002.DNG", "Phone/IMG_0003.heif"):
        assert 0 < by_path[path].bytes_read < 10_000 < by_path[path].size


def _check(conn: Any, scan: ScanResult) -> CheckReport:
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(2, mp_context=context) as pool:
        return check_site(conn, scan, pool, options=CheckOptions(), workers=2)


def _assert_checks(scan: ScanResult, report: CheckReport) -> None:
    checks = {c.name: c for c in report.images}
    assert (
        checks["Raw/DJI_0001.DNG"].valid is True and checks["Raw/DJI_0001.DNG"].source == "preview"
    )
    assert checks["Phone/IMG_0003.heif"].valid is True
    assert checks["Raw/DJI_0002.DNG"].valid is None
    assert checks["Raw/DJI_0002.DNG"].not_checked == (
        "not checked: the TIFF/DNG holds no JPEG preview (raw data is not decoded)"
    )
    for path in HEVC_ONLY:  # decoded from the whole file
        assert checks[path].valid is True and checks[path].source == "full", checks[path]
    assert checks[AV1].valid is None and checks[AV1].not_checked == (
        "not checked: the HEIF's image is coded as 'av01', which the checks do not decode"
    )
    document = result_document(scan, report)
    images = {i["path"]: i for i in document["images"]}
    for path in (AV1, "Raw/DJI_0002.DNG"):
        assert images[path]["valid"] is None, path
        assert images[path]["reasons"] == [checks[path].not_checked]
    assert images["Raw/DJI_0001.DNG"]["valid"] is True and images[HEVC_ONLY[1]]["valid"] is True
    assert images[CORRUPT]["valid"] is False and images[NO_EXIF]["valid"] is False
    photos = document["verdict"]["photos"]
    assert (photos["valid"], photos["invalid"], photos["unchecked"]) == (4, 2, 2)


def test_heic_and_dng_over_sftp(root: Path) -> None:
    with start_sftp_server(root, {USER: PASSWORD}, sites_root="/sites") as server:
        kh = server.write_known_hosts(root / "known_hosts")
        conn = connector(server.host, server.port, kh, "/sites", USER, PASSWORD)
        scan = scan_site(conn, NoCache(), SITE)
        _assert_positions(scan)
        _assert_checks(scan, _check(conn, scan))


def test_heic_and_dng_through_the_local_adapter(root: Path) -> None:
    conn = LocalConnector(root / "sites")
    scan = scan_site(conn, NoCache(), SITE)
    _assert_positions(scan)
    _assert_checks(scan, _check(conn, scan))
