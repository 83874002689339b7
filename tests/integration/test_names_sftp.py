"""Names that are not UTF-8, or hold control characters, backslashes or line breaks, on real
SFTP servers: each costs only its own entry (a skipped folder, an unreadable photo, a site that
cannot be opened), shown escaped; nothing else is lost and no guessed name is sent back.

What the in-process server was asked to open or list comes from its own debug log.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from names_support import (
    BAD_FILES,
    BAD_FOLDERS,
    BAD_SITE_SHOWN,
    CLEAR_SCREEN,
    GOOD,
    OK_SITE,
    SET_TITLE,
    SITE,
    OddSite,
    make_odd_sites,
)
from qc_tool.adapters.local import LocalConnector
from qc_tool.cli import main
from qc_tool.demo.sftp_server import SftpServerHandle
from qc_tool.domain.models import RemoteFile, ScanResult, SiteInfo
from qc_tool.domain.paths import display_text
from qc_tool.errors import PathRejected
from qc_tool.services.ports import Connector, NoCache
from qc_tool.services.scan.site_analysis_service import ScanOptions, scan_site
from scan_support import connector

from integration.test_bad_input_sftp import ServerRequests, requests_seen  # noqa: F401

USER, PASSWORD = "tester", "tester-password-1"  # the sftp_server fixture's user


@pytest.fixture
def odd(sftp_root: Path) -> OddSite:
    return make_odd_sites(sftp_root / "sites")


def _sftp(server: SftpServerHandle, tmp_path: Path) -> Any:
    kh = server.write_known_hosts(tmp_path / "known_hosts")
    return connector(server.host, server.port, kh, server.sites_root, USER, PASSWORD)


def assert_only_odd_entries_lost(result: ScanResult, odd: OddSite) -> None:
    """Every good photo read exactly; every odd folder and file an entry with its reason."""
    folders = {f.name: f for f in result.folders}
    assert set(folders) == set(GOOD) | {shown for shown, _ in BAD_FOLDERS.values()}
    for shown, reason in BAD_FOLDERS.values():
        assert folders[shown].skipped == reason, shown
        assert folders[shown].images == 0
    tower, ete = folders["Tower"], folders["Été"]
    assert (tower.skipped, tower.images, tower.gps_points, tower.errors) == (None, 6, 3, 3)
    assert (ete.skipped, ete.images, ete.gps_points, ete.errors) == (None, 1, 1, 0)
    images = {i.path: i for i in result.images}
    for path, (lat, lon) in odd.good_images().items():
        assert images[path].error is None, (path, images[path].error)
        assert images[path].lat == pytest.approx(lat, abs=1e-5)
        assert images[path].lon == pytest.approx(lon, abs=1e-5)
    for shown, reason in BAD_FILES.values():
        image = images[f"Tower/{shown}"]
        assert (image.error, image.lat, image.bytes_read) == (reason, None, 0), shown
    assert len(images) == len(odd.good_images()) + len(BAD_FILES)
    # Nothing the tool shows carries a control character of the server's choosing.
    for text in [*images, *folders]:
        assert display_text(text) == text, text
    # The folder table keeps the listing's (name) order, each skipped folder in its place.
    assert [f.name for f in result.folders] == sorted(folders)


def test_odd_names_cost_only_their_own_entries_on_the_in_process_server(
    sftp_server: SftpServerHandle,
    odd: OddSite,
    tmp_path: Path,
    requests_seen: ServerRequests,  # noqa: F811
) -> None:
    result = scan_site(_sftp(sftp_server, tmp_path), NoCache(), SITE)
    assert_only_odd_entries_lost(result, odd)
    # Only real names were sent: the site (listed once LSTAT called it a folder: the sites
    # root is not listed), the two good folders, and the good photos (asyncssh logs the
    # paths decoded).
    good = {"/sites/" + path.decode() for path in odd.good_paths}
    folders = {f"/sites/{SITE}/{folder}" for folder in GOOD}
    assert set(requests_seen.paths) == {f"/sites/{SITE}"} | folders | good
    assert sftp_server.files_opened == len(odd.good_paths)


def test_the_pipelined_and_sequential_reads_agree_on_odd_names(
    sftp_server: SftpServerHandle, odd: OddSite, tmp_path: Path
) -> None:
    fast = scan_site(_sftp(sftp_server, tmp_path), NoCache(), SITE)
    slow = scan_site(
        _sftp(sftp_server, tmp_path), NoCache(), SITE, options=ScanOptions(pipelined=False)
    )
    assert [i.to_json() for i in fast.images] == [i.to_json() for i in slow.images]
    assert [f.to_json() for f in fast.folders] == [f.to_json() for f in slow.folders]


def test_the_sites_list_shows_a_site_whose_name_is_not_utf8_escaped_and_does_not_open_it(
    sftp_server: SftpServerHandle,
    odd: OddSite,
    tmp_path: Path,
    requests_seen: ServerRequests,  # noqa: F811
) -> None:
    conn = _sftp(sftp_server, tmp_path).connect()
    try:
        sites = conn.list_sites()
    finally:
        conn.close()
    assert sites == [
        SiteInfo(SITE, 6),
        SiteInfo(OK_SITE, 1),
        SiteInfo(BAD_SITE_SHOWN, 0, "the name is not UTF-8 (shown escaped)"),
    ]
    assert set(requests_seen.paths) == {
        "/sites",
        f"/sites/{SITE}",
        f"/sites/{OK_SITE}",
    }


def test_an_escaped_name_is_never_sent_to_the_server_even_when_asked_for(
    sftp_server: SftpServerHandle, odd: OddSite, tmp_path: Path
) -> None:
    """A path the tool shows escaped (say, a preview asked for) is answered without a request."""
    shown, reason = BAD_FILES[b"\xff\xfe\xc0.JPG"]
    conn = _sftp(sftp_server, tmp_path).connect()
    got: list[tuple[str, object, str | None]] = []
    try:
        for read in (conn.read_headers, conn.read_pixels):
            read(
                SITE,
                [RemoteFile(f"Tower/{shown}", 1000, 0)],
                lambda f, v, e: got.append((f.path, v, e)),
            )
    finally:
        conn.close()
    assert got == [(f"Tower/{shown}", None, reason)] * 2
    assert sftp_server.files_opened == 0
    with pytest.raises(PathRejected):
        scan_site(_sftp(sftp_server, tmp_path), NoCache(), BAD_SITE_SHOWN)
    assert sftp_server.connections == 1  # the refused site cost no login


def test_odd_names_cost_only_their_own_entries_on_openssh(sshd: Any, tmp_path: Path) -> None:
    data = tmp_path / "sshd-data"
    odd = make_odd_sites(data)
    server = sshd(data)
    conn: Connector = connector(
        server.host,
        server.port,
        Path(server.known_hosts),
        server.sites_root,
        server.username,
        server.password,
    )
    assert_only_odd_entries_lost(scan_site(conn, NoCache(), SITE), odd)
    listing = conn.connect()
    try:
        sites = listing.list_sites()
    finally:
        listing.close()
    assert sites[-1] == SiteInfo(BAD_SITE_SHOWN, 0, "the name is not UTF-8 (shown escaped)")
    assert [s.name for s in sites] == [SITE, OK_SITE, BAD_SITE_SHOWN]


def test_odd_names_cost_only_their_own_entries_in_a_local_folder(tmp_path: Path) -> None:
    odd = make_odd_sites(tmp_path / "sites")
    local = LocalConnector(tmp_path / "sites")
    assert_only_odd_entries_lost(scan_site(local, NoCache(), SITE), odd)
    conn = local.connect()
    assert conn.list_sites()[-1] == SiteInfo(
        BAD_SITE_SHOWN, 0, "the name is not UTF-8 (shown escaped)"
    )


def test_the_cli_prints_odd_names_escaped_never_raw(
    sftp_server: SftpServerHandle,
    odd: OddSite,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    known = sftp_server.write_known_hosts(tmp_path / "known_hosts")
    monkeypatch.setenv("QC_SFTP_PASSWORD", PASSWORD)
    monkeypatch.setenv("QC_PARSE_WORKERS", "0")
    url = f"sftp://{USER}@{sftp_server.host}:{sftp_server.port}{sftp_server.sites_root}/{SITE}"
    assert (
        main(["scan", url, "--known-hosts", str(known), "--no-cache"]) == 1
    )  # unreadable names: a re-fly
    captured = capsys.readouterr()
    for raw in (CLEAR_SCREEN, SET_TITLE, b"new\nfolder", b"\x1b[31m"):
        assert os.fsdecode(raw) not in captured.out + captured.err
    assert "\x1b" not in captured.out + captured.err and "\x07" not in captured.out
    lines = captured.out.splitlines()
    for shown, reason in BAD_FILES.values():
        assert f"  FAIL Tower/{shown}: {reason}" in lines
    for shown, reason in BAD_FOLDERS.values():
        assert any(line.startswith(shown) and line.endswith(f"skipped: {reason}") for line in lines)
