"""Cached photo measures: a re-check reads nothing; a new threshold re-judges; a new measure re-reads."""

from __future__ import annotations

import io
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter
from qc_tool.adapters.cache import SqliteCache, UserCache
from qc_tool.adapters.sftp.connection import SftpConnector
from qc_tool.demo.imagegen import ImageSpec, build_jpeg, encode_body, quantise_gps
from qc_tool.demo.scene import render_scene
from qc_tool.demo.sftp_server import SftpServerHandle, start_sftp_server
from qc_tool.domain.checks.rules import CaptureProfile
from qc_tool.domain.checks.settings import CheckSettings
from qc_tool.domain.models import ScanResult
from qc_tool.services.checks.options import CheckOptions
from qc_tool.services.checks.run import CheckReport, check_site
from qc_tool.services.scan.site_analysis_service import scan_site
from scan_support import connector

USER, PASSWORD = "tech", "pw-cache"
SITE = "S2"
PHOTOS = 8


def _jpeg(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=90)
    return out.getvalue()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SftpServerHandle]:
    root = tmp_path_factory.mktemp("cache-root")
    folder = root / "sites" / SITE / "Tower"
    folder.mkdir(parents=True)
    body = encode_body(1200, 900, seed=5)
    for i in range(PHOTOS):
        scene = render_scene(640, 480, seed=300 + i)
        if i == PHOTOS - 1:  # one clearly blurred photo
            scene = np.asarray(Image.fromarray(scene).filter(ImageFilter.GaussianBlur(4)))
        spec = ImageSpec(
            taken=datetime(2024, 6, 1, 9, 0) + timedelta(seconds=20 * i),
            gps=quantise_gps(51.5 + i * 1e-4, -0.12 + i * 1e-4, 35.0),
            preview=(640, 480),
            iso=400 if i == 0 else 100,
            xmp={"GimbalPitchDegree": "-90.0"},
        )
        (folder / f"DJI_{i:04d}.JPG").write_bytes(build_jpeg(spec, body, preview_jpeg=_jpeg(scene)))
    with start_sftp_server(root, {USER: PASSWORD}, sites_root="/sites") as handle:
        handle.write_known_hosts(root / "known_hosts")
        yield handle


@pytest.fixture
def sftp(server: SftpServerHandle) -> SftpConnector:
    kh = server.write_known_hosts(server.root / "known_hosts_test")
    return connector(server.host, server.port, kh, "/sites", USER, PASSWORD)


def _check(
    conn: SftpConnector, scan: ScanResult, cache: UserCache, options: CheckOptions
) -> CheckReport:
    with ThreadPoolExecutor(2) as pool:
        return check_site(conn, scan, pool, options=options, workers=2, cache=cache)


def _failures(report: CheckReport) -> dict[str, set[str]]:
    return {c.name: {o.name for o in c.failures} for c in report.images}


def test_a_second_check_pass_reads_nothing_and_gives_the_same_verdicts(
    server: SftpServerHandle, sftp: SftpConnector, tmp_path: Path
) -> None:
    cache = SqliteCache(tmp_path / "cache").for_user(USER)
    scan = scan_site(sftp, cache, SITE)
    first = _check(sftp, scan, cache, CheckOptions())
    assert first.stats.cached == 0 and first.stats.bytes_read > 0
    assert first.stats.connections == 1  # 8 photos: one connection, no pool
    assert "blur" in _failures(first)[f"Tower/DJI_{PHOTOS - 1:04d}.JPG"]

    logins = sum(server.auth_attempts.values())
    second = _check(sftp, scan, cache, CheckOptions())
    assert second.stats.cached == PHOTOS
    assert second.stats.bytes_read == 0 and second.stats.cpu_seconds == 0
    assert second.stats.connections == 0
    assert (
        sum(server.auth_attempts.values()) == logins
    )  # nothing left to read: no connection at all
    assert [c.to_json() for c in second.images] == [c.to_json() for c in first.images]


def test_a_new_threshold_or_profile_rejudges_from_the_cache(
    server: SftpServerHandle, sftp: SftpConnector, tmp_path: Path
) -> None:
    cache = SqliteCache(tmp_path / "cache").for_user(USER)
    scan = scan_site(sftp, cache, SITE)
    _check(sftp, scan, cache, CheckOptions())
    logins = sum(server.auth_attempts.values())
    strict = CheckOptions(
        settings=replace(CheckSettings(), over_mean_min=1.0, over_shadow_min=0),
        profile=CaptureProfile(max_iso=200),
    )
    report = _check(sftp, scan, cache, strict)
    assert report.stats.cached == PHOTOS and sum(server.auth_attempts.values()) == logins
    failures = _failures(report)
    assert "iso" in failures["Tower/DJI_0000.JPG"]  # the profile applies without a re-read
    assert all("exposure" in kinds for kinds in failures.values())  # and the new threshold


def test_a_new_measuring_setting_measures_again(
    server: SftpServerHandle, sftp: SftpConnector, tmp_path: Path
) -> None:
    cache = SqliteCache(tmp_path / "cache").for_user(USER)
    scan = scan_site(sftp, cache, SITE)
    _check(sftp, scan, cache, CheckOptions())
    finer = CheckOptions(settings=replace(CheckSettings(), blur_grid=8))
    report = _check(sftp, scan, cache, finer)
    assert report.stats.cached == 0 and report.stats.bytes_read > 0
    # ... and those measures are then the cached ones for that setting.
    assert _check(sftp, scan, cache, finer).stats.cached == PHOTOS


def test_a_changed_file_is_measured_again(
    server: SftpServerHandle, sftp: SftpConnector, tmp_path: Path
) -> None:
    cache = SqliteCache(tmp_path / "cache").for_user(USER)
    scan = scan_site(sftp, cache, SITE)
    _check(sftp, scan, cache, CheckOptions())
    touched = replace(scan.images[0], mtime=scan.images[0].mtime + 1)
    rescanned = replace(scan, images=[touched, *scan.images[1:]])
    report = _check(sftp, rescanned, cache, CheckOptions())
    assert report.stats.cached == PHOTOS - 1
