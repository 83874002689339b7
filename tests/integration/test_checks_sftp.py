"""The photo-check pass over SFTP: previews read by range, defects found, whole-file fallback."""

from __future__ import annotations

import io
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageFilter
from qc_tool.demo.imagegen import ImageSpec, build_jpeg, encode_body, quantise_gps
from qc_tool.demo.scene import render_scene
from qc_tool.demo.sftp_server import start_sftp_server
from qc_tool.services.checks.options import CheckOptions
from qc_tool.services.checks.run import check_site
from qc_tool.services.ports import NoCache
from qc_tool.services.scan.site_analysis_service import scan_site
from scan_support import connector

USER, PASSWORD = "tech", "pw-checks"
SITE = "S1"


def _jpeg(pixels: np.ndarray, quality: int = 90) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=quality)
    return out.getvalue()


def _file(i: int, preview: bytes | None, body: bytes) -> bytes:
    spec = ImageSpec(
        taken=datetime(2024, 5, 14, 9, 0) + timedelta(seconds=30 * i),
        gps=quantise_gps(52.37 + i * 1e-4, 4.89 + i * 1e-4, 40.0),
        preview=(640, 480) if preview is not None else None,
        xmp={"GimbalPitchDegree": "-90.0"},
    )
    return build_jpeg(spec, body, preview_jpeg=preview)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("checks-root")
    folder = root / "sites" / SITE / "Tower"
    folder.mkdir(parents=True)
    body = encode_body(1600, 1200, seed=99)
    scenes = {i: render_scene(640, 480, seed=100 + i) for i in range(8)}
    previews = {i: _jpeg(scenes[i]) for i in range(6)}
    previews[6] = _jpeg((scenes[6] * 0.08).astype(np.uint8))  # dark
    blurred = Image.fromarray(scenes[7]).filter(ImageFilter.GaussianBlur(4))
    previews[7] = _jpeg(np.asarray(blurred))
    for i, preview in previews.items():
        (folder / f"DJI_{i:04d}.JPG").write_bytes(_file(i, preview, body))
    (folder / "DJI_0008.JPG").write_bytes((folder / "DJI_0001.JPG").read_bytes())  # a copy
    # No preview: the checks read its top rows, EXIF thumbnail and tail, not the whole file.
    (folder / "DJI_0009.JPG").write_bytes(_file(9, None, encode_body(800, 600, seed=7)))
    return root


def test_defects_are_found_from_previews_read_by_range(site: Path) -> None:
    with start_sftp_server(site, {USER: PASSWORD}, sites_root="/sites") as server:
        kh = server.write_known_hosts(site / "known_hosts")
        conn = connector(server.host, server.port, kh, "/sites", USER, PASSWORD)
        scan = scan_site(conn, NoCache(), SITE)
        context = multiprocessing.get_context("forkserver")
        with ProcessPoolExecutor(2, mp_context=context) as pool:
            report = check_site(conn, scan, pool, options=CheckOptions(), workers=2)
    failures: dict[str, set[str]] = {c.name: {o.name for o in c.failures} for c in report.images}
    assert "exposure" in failures["Tower/DJI_0006.JPG"]
    assert "blur" in failures["Tower/DJI_0007.JPG"]
    assert (
        "duplicate" in failures["Tower/DJI_0008.JPG"]
        and "duplicate" in failures["Tower/DJI_0001.JPG"]
    )
    for i in (0, 2, 3, 4, 5, 9):
        assert failures[f"Tower/DJI_{i:04d}.JPG"] == set(), failures[f"Tower/DJI_{i:04d}.JPG"]
    sources = {c.name: c.source for c in report.images}
    assert sources["Tower/DJI_0009.JPG"] == "band" and sources["Tower/DJI_0000.JPG"] == "preview"
    stats = report.stats
    assert stats.preview_images == 9 and stats.full_images == 0 and stats.band_images == 1
    sizes = {i.path: i.size for i in scan.images}
    assert stats.band_file_bytes == sizes["Tower/DJI_0009.JPG"]
    assert stats.band_bytes_read < 0.25 * stats.band_file_bytes, stats
    preview_bytes = stats.bytes_read - stats.band_bytes_read
    assert preview_bytes < 0.25 * sum(s for p, s in sizes.items() if not p.endswith("0009.JPG"))
    assert report.folders["Tower"]["exposure"] == 1
    assert stats.cpu_seconds > 0 and stats.speedup > 0


def test_a_bad_profile_file_is_a_clear_error(tmp_path: Path) -> None:
    from qc_tool.errors import BadRequest
    from qc_tool.services.checks.options import load_profile

    bad = tmp_path / "profile.json"
    bad.write_text('{"max_iso": "lots"}')
    with pytest.raises(BadRequest, match="profile"):
        load_profile(bad)


def test_the_cli_scans_an_sftp_url_with_checks(
    site: Path, tmp_path: Path, monkeypatch: Any
) -> None:
    import json

    from qc_tool.cli import main

    with start_sftp_server(site, {USER: PASSWORD}, sites_root="/sites") as server:
        kh = server.write_known_hosts(tmp_path / "known_hosts")
        monkeypatch.setenv("QC_SFTP_PASSWORD", PASSWORD)
        out = tmp_path / "result.json"
        csv_out = tmp_path / "checks.csv"
        code = main(
            [
                "scan",
                f"sftp://{USER}@127.0.0.1:{server.port}/sites/{SITE}",
                "--known-hosts",
                str(kh),
                "--no-cache",
                "--checks",
                "--json",
                str(out),
                "--csv",
                str(csv_out),
            ]
        )
    assert code == 1  # one photo is under-exposed: a re-fly
    document = json.loads(out.read_text())
    assert len(document["images"]) == 10 and document["folders"][0]["failures"]["exposure"] == 1
    assert all(image["checks"] is not None for image in document["images"])
    assert len(csv_out.read_text().splitlines()) == 11
