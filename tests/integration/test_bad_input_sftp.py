"""Bad files and hostile links on a real SFTP server: each bad file costs its own result, links
are never followed, and the scan and the checks go on to the good photos after them.

The files are the unit fuzz's named cases (tests/unit/test_bad_input.py) laid out in one folder,
good photos first, in the middle and last. What the server was asked to open comes from the
in-process server's own debug log (asyncssh logs every OPEN and OPENDIR with its path).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from qc_tool.demo.sftp_server import SftpServerHandle
from qc_tool.domain import paths
from qc_tool.domain.models import TRUNCATED_BODY, ScanResult
from qc_tool.errors import QCError
from qc_tool.services.checks.options import CheckOptions
from qc_tool.services.checks.run import check_site
from qc_tool.services.ports import NoCache
from qc_tool.services.scan.site_analysis_service import ScanOptions, scan_site
from scan_support import connector
from unit.test_bad_input import BOMBS, DAMAGED, HEADER_END, REAL, TRUTH, declaring

SITE = "BAD-INPUT"
USER, PASSWORD = "tester", "tester-password-1"  # the sftp_server fixture's user

NOT_JPEGS = {
    "zero-bytes": (b"", "empty file"),
    "png": (b"\x89PNG\r\n\x1a\n" + bytes(600), "PNG"),
    # A HEIC or TIFF is read (tests/unit/test_formats.py): a HEIC of zeros is a corrupt one.
    "heic": (b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + bytes(600), "corrupt HEIF"),
    "mp4": (b"\0\0\0\x18ftypisom\0\0\0\0isommp41" + bytes(600), "ISO media file"),
    "text": (b"flight notes, saved as .jpg\n" * 40, "text"),
}
CUTS = {"cut-in-exif": 700, "cut-before-image": HEADER_END - 1, "cut-in-image": HEADER_END + 900}


@dataclass(frozen=True)
class Expected:
    """What the scan must say about one file (see DAMAGED in the unit tests)."""

    kind: str  # "gps" | "no gps" | "reason"
    text: str = ""


def _layout(folder: Path) -> dict[str, Expected]:
    """Write every bad file and the good ones; return file name -> what its result must be."""
    expected: dict[str, Expected] = {}

    def put(name: str, data: bytes, want: Expected) -> None:
        (folder / name).write_bytes(data)
        expected[name] = want

    good = Expected("gps")
    put("DJI_0000.JPG", REAL, good)
    for i, (_, (data, text)) in enumerate(NOT_JPEGS.items(), start=1):
        put(f"DJI_{i:04d}.JPG", data, Expected("reason", text))
    put("DJI_0100.JPG", REAL, good)  # a good photo between bad ones
    put("DJI_0101.JPG", REAL[: CUTS["cut-in-exif"]], Expected("reason", "truncated"))
    put("DJI_0102.JPG", REAL[: CUTS["cut-before-image"]], Expected("gps", "truncated"))
    put("DJI_0103.JPG", REAL[: CUTS["cut-in-image"]], Expected("gps", "truncated"))
    for i, (data, want) in enumerate(DAMAGED.values(), start=200):
        if want == "gps":
            put(f"DJI_{i:04d}.JPG", data, good)
        elif want.startswith("no gps: "):
            put(f"DJI_{i:04d}.JPG", data, Expected("no gps", want[8:]))
        else:
            put(f"DJI_{i:04d}.JPG", data, Expected("reason", want))
    # Declares 10,000 x 10,000 pixels in 600 bytes: its header is fine (no EXIF), its pixels not.
    put("DJI_0300.JPG", declaring(*BOMBS["warning-range"]), Expected("no gps", "no EXIF"))
    put("DJI_9999.JPG", REAL, good)  # and the last one is read too
    return expected


class ServerRequests(logging.Handler):
    """Paths the in-process server was asked to open or list, from asyncssh's debug log."""

    _PATTERN = re.compile(r"Received (?:open request|opendir) for (/[^,]*)")

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.paths: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        match = self._PATTERN.search(record.getMessage())
        if match:
            self.paths.append(match.group(1))


@pytest.fixture
def requests_seen() -> Iterator[ServerRequests]:
    handler = ServerRequests()
    logger = logging.getLogger("asyncssh.sftp")
    old_level = logger.level
    logger.setLevel(logging.DEBUG)  # the web app's factory quiets asyncssh; this test listens
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


@pytest.fixture
def site(sftp_root: Path) -> dict[str, Expected]:
    """The bad-input site, plus links that point outside the sites root or loop."""
    folder = sftp_root / "sites" / SITE / "Damaged"
    folder.mkdir(parents=True)
    expected = _layout(folder)
    outside = sftp_root / "outside"
    (outside / "private").mkdir(parents=True)
    (outside / "SECRET.JPG").write_bytes(REAL)
    (outside / "private" / "DJI_0001.JPG").write_bytes(REAL)
    # Links out of the sites root (relative and absolute), and loops inside the site.
    (folder / "LINK_REL.JPG").symlink_to("../../../outside/SECRET.JPG")
    (folder / "LINK_ABS.JPG").symlink_to(outside / "SECRET.JPG")
    (folder / "Loop").symlink_to(".")
    (sftp_root / "sites" / SITE / "Escape").symlink_to(outside / "private")
    (sftp_root / "sites" / SITE / "Up").symlink_to("..")
    (sftp_root / "sites" / "LINKED-SITE").symlink_to(outside)
    return expected


def _connector(server: SftpServerHandle, tmp_path: Path) -> Any:
    kh = server.write_known_hosts(tmp_path / "known_hosts")
    return connector(server.host, server.port, kh, server.sites_root, USER, PASSWORD)


def _check(result: ScanResult, expected: dict[str, Expected]) -> None:
    got = {image.path: image for image in result.images}
    assert set(got) == {f"Damaged/{name}" for name in expected}  # no link, nothing else
    for name, want in expected.items():
        image = got[f"Damaged/{name}"]
        assert (image.lat, image.lon) != (0.0, 0.0), name
        if want.kind == "gps":
            assert (image.lat, image.lon, image.alt) == TRUTH, (name, image)
            assert want.text in (image.error or ""), (name, image.error)
        elif want.kind == "no gps":
            assert image.error is None and not image.has_gps, (name, image)
            assert image.gps_note is not None and want.text in image.gps_note, (name, image)
        else:
            assert image.error is not None and want.text in image.error, (name, image.error)


def test_every_bad_file_gets_its_own_reason_and_the_scan_goes_on(
    sftp_server: SftpServerHandle,
    site: dict[str, Expected],
    tmp_path: Path,
    requests_seen: ServerRequests,
) -> None:
    result = scan_site(_connector(sftp_server, tmp_path), NoCache(), SITE)
    _check(result, site)
    assert [f.name for f in result.folders] == ["Damaged"]  # Escape and Up are links: not folders
    good = [i for i in result.images if i.has_gps and i.error is None]
    assert len(good) == sum(1 for w in site.values() if w.kind == "gps" and not w.text)
    # Every regular file was opened once; no link and nothing outside the site ever was.
    opened = [p for p in requests_seen.paths if p.endswith(".JPG")]
    assert sorted(opened) == sorted(f"/sites/{SITE}/Damaged/{name}" for name in site)
    assert all(p.startswith(f"/sites/{SITE}") or p == "/sites" for p in requests_seen.paths)
    for link in ("LINK_", "Loop", "Escape", "/Up", "outside"):
        assert not any(link in p for p in requests_seen.paths), link


def test_the_pipelined_and_sequential_reads_agree_on_every_bad_file(
    sftp_server: SftpServerHandle, site: dict[str, Expected], tmp_path: Path
) -> None:
    conn = _connector(sftp_server, tmp_path)
    fast = scan_site(conn, NoCache(), SITE)
    slow = scan_site(conn, NoCache(), SITE, options=ScanOptions(pipelined=False))
    assert [i.to_json() for i in fast.images] == [i.to_json() for i in slow.images]


def test_the_checks_give_every_bad_photo_its_reason_and_go_on(
    sftp_server: SftpServerHandle, site: dict[str, Expected], tmp_path: Path
) -> None:
    conn = _connector(sftp_server, tmp_path)
    scan = scan_site(conn, NoCache(), SITE)
    with ThreadPoolExecutor(2) as pool:
        report = check_site(conn, scan, pool, options=CheckOptions(), workers=2)
    checked = {c.name: c for c in report.images}
    readable = {i.path for i in scan.images if i.error in (None, TRUNCATED_BODY)}
    assert set(checked) == readable  # unreadable headers are not checked again
    bomb = {o.name: o for o in checked["Damaged/DJI_0300.JPG"].outcomes}
    assert not bomb["decode"].ok and "too large" in bomb["decode"].message.lower()
    for name in ("DJI_0000.JPG", "DJI_0100.JPG", "DJI_9999.JPG"):  # first, middle, last
        assert "decode" not in {o.name for o in checked[f"Damaged/{name}"].failures}, name


def test_the_sites_list_leaves_out_a_site_that_is_a_link(
    sftp_server: SftpServerHandle, site: dict[str, Expected], tmp_path: Path
) -> None:
    conn = _connector(sftp_server, tmp_path).connect()
    try:
        assert [s.name for s in conn.list_sites()] == [SITE]
    finally:
        conn.close()


def test_a_site_that_is_a_link_out_of_the_root_is_refused_without_listing_it(
    sftp_server: SftpServerHandle,
    site: dict[str, Expected],
    tmp_path: Path,
    requests_seen: ServerRequests,
) -> None:
    with pytest.raises(QCError, match="LINKED-SITE"):
        scan_site(_connector(sftp_server, tmp_path), NoCache(), "LINKED-SITE")
    assert not any("LINKED-SITE" in p for p in requests_seen.paths)


# The cap is 20,000 entries; listing that many takes the in-process server seconds, so these
# tests lower it (until QC_MAX_LISTING reaches the connection, the module default is the cap).
SMALL_CAP = 50


def _fill(folder: Path, count: int) -> None:
    folder.mkdir(parents=True)
    for i in range(count):
        (folder / f"IMG_{i:05d}.JPG").write_bytes(b"")


def test_a_site_listing_past_the_cap_is_a_clear_error_not_a_silent_cut(
    sftp_server: SftpServerHandle, sftp_root: Path, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setattr(paths, "MAX_LISTING", SMALL_CAP)
    _fill(sftp_root / "sites" / "HUGE", SMALL_CAP + 1)
    with pytest.raises(QCError, match=f"HUGE holds more than {SMALL_CAP} entries"):
        scan_site(_connector(sftp_server, tmp_path), NoCache(), "HUGE")


def test_a_listing_at_the_cap_is_whole(
    sftp_server: SftpServerHandle, sftp_root: Path, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setattr(paths, "MAX_LISTING", SMALL_CAP)
    _fill(sftp_root / "sites" / "FULL" / "Photos", SMALL_CAP)
    result = scan_site(_connector(sftp_server, tmp_path), NoCache(), "FULL")
    assert len(result.images) == SMALL_CAP
    assert all(i.error == "empty file (0 bytes)" for i in result.images)


def test_a_folder_listing_past_the_cap_fails_the_scan_with_the_reason(
    sftp_server: SftpServerHandle, sftp_root: Path, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setattr(paths, "MAX_LISTING", SMALL_CAP)
    _fill(sftp_root / "sites" / "HUGE" / "Everything", SMALL_CAP + 1)
    with pytest.raises(QCError, match=f"Everything holds more than {SMALL_CAP} entries"):
        scan_site(_connector(sftp_server, tmp_path), NoCache(), "HUGE")


def test_links_are_not_followed_by_openssh_either(sshd: Any, tmp_path: Path) -> None:
    data = tmp_path / "sshd-data"
    folder = data / SITE / "Damaged"
    folder.mkdir(parents=True)
    (folder / "DJI_0000.JPG").write_bytes(REAL)
    server = sshd(data)
    outside = Path(server.data_dir).parent / f"{Path(server.data_dir).name}-outside"
    outside.mkdir()
    try:
        (outside / "SECRET.JPG").write_bytes(REAL)
        os.chmod(outside, 0o755)
        os.chmod(outside / "SECRET.JPG", 0o644)
        site_dir = Path(server.sites_root) / SITE
        (site_dir / "Damaged" / "LINK_ABS.JPG").symlink_to(outside / "SECRET.JPG")
        (site_dir / "Damaged" / "Loop").symlink_to(".")
        (site_dir / "Escape").symlink_to(outside)
        (site_dir / "Up").symlink_to("..")
        conn = connector(
            server.host,
            server.port,
            Path(server.known_hosts),
            server.sites_root,
            server.username,
            server.password,
        )
        result = scan_site(conn, NoCache(), SITE)
    finally:
        for path in sorted(outside.rglob("*"), reverse=True):
            path.unlink()
        outside.rmdir()
    assert [f.name for f in result.folders] == ["Damaged"]
    assert [i.path for i in result.images] == ["Damaged/DJI_0000.JPG"]
