"""Round trips a second look at an unchanged site waits for, counted on the SFTP channel.

On a site link every round trip is 50 ms: the web app's rescan on the login's kept connection
is its listing's round trips and little else (issue 14, item 5). tests/roundtrips.py counts
them from the channel's traffic (requests that had to wait for a reply), so no clock is read.
The site is checked with LSTAT before anything at its path is opened, on both servers.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from paramiko.sftp import CMD_LSTAT
from qc_tool.adapters.cache import SqliteCache
from qc_tool.adapters.sftp.connection import SftpConnection, SftpConnector
from qc_tool.demo.sftp_server import SftpServerHandle
from qc_tool.errors import QCError
from qc_tool.services.logins.held_connections import HeldConnections
from qc_tool.services.ports import NoCache
from qc_tool.services.scan.site_analysis_service import scan_site
from roundtrips import counting
from scan_support import connector

SITE = "S1"
FOLDERS = ("Antenna", "Fence", "Tower")
# The LSTAT of the site, its OPENDIR, its READDIRs, every folder's OPENDIR, their READDIRs.
RESCAN_ROUND_TRIPS = 5


def _site(sites: Path) -> None:
    for folder in FOLDERS:
        (sites / SITE / folder).mkdir(parents=True)
        for i in range(3):
            (sites / SITE / folder / f"DJI_{i:04d}.JPG").write_bytes(b"")
    outside = sites.parent / "outside"
    (outside / "Private").mkdir(parents=True)
    (sites / "LINKED").symlink_to(outside)


@pytest.fixture
def server(make_sftp_server: Callable[..., SftpServerHandle], sftp_root: Path) -> SftpServerHandle:
    _site(sftp_root / "sites")
    return make_sftp_server(sftp_root, sites_root="/sites")


def _login(server: SftpServerHandle, tmp_path: Path, user: str, password: str) -> SftpConnector:
    known = server.write_known_hosts(tmp_path / "known_hosts")
    return connector(server.host, server.port, known, server.sites_root, user, password)


def test_a_rescan_on_the_kept_connection_waits_five_round_trips(
    server: SftpServerHandle, tmp_path: Path, sftp_username: str, sftp_password: str
) -> None:
    login = _login(server, tmp_path, sftp_username, sftp_password)
    cache = SqliteCache(tmp_path / "cache").for_user(sftp_username)
    held = HeldConnections()
    try:
        kept: list[Any] = []
        held.run("sid", login, kept.append)  # the login's connection, as the web app keeps it
        scan_site(held.lend("sid", login), cache, SITE)  # fills the cache
        inner = kept[0]
        assert isinstance(inner, SftpConnection)
        logins = server.auth_attempts[sftp_username]
        with counting(inner) as trips:
            again = scan_site(held.lend("sid", login), cache, SITE)
    finally:
        held.close_all()
    assert again.stats.cached == len(FOLDERS) * 3 and again.stats.files_opened == 0
    assert server.auth_attempts[sftp_username] == logins  # no login inside the rescan
    assert trips.count == RESCAN_ROUND_TRIPS
    assert trips.requests[0] == (CMD_LSTAT, 1)  # the site's check went first, alone


def test_a_site_that_is_a_link_costs_one_lstat_and_opens_nothing_in_process(
    server: SftpServerHandle, tmp_path: Path, sftp_username: str, sftp_password: str
) -> None:
    _refused_after_one_lstat(_login(server, tmp_path, sftp_username, sftp_password))


@pytest.mark.sshd
def test_a_site_that_is_a_link_costs_one_lstat_and_opens_nothing_on_sshd(
    sshd: Any, tmp_path: Path
) -> None:
    sites = tmp_path / "sites"
    _site(sites)
    openssh = sshd(sites)
    # The copy sshd serves followed the link: make it a link again, to a folder outside.
    linked = Path(openssh.sites_root) / "LINKED"
    shutil.rmtree(linked)
    linked.symlink_to("/usr/share")
    login = connector(
        openssh.host,
        openssh.port,
        Path(openssh.known_hosts),
        openssh.sites_root,
        openssh.username,
        openssh.password,
    )
    _refused_after_one_lstat(login)


def _refused_after_one_lstat(login: SftpConnector) -> None:
    conn = login.connect()
    try:
        with counting(conn) as trips, pytest.raises(QCError, match="there is no site 'LINKED'"):
            conn.list_folders("LINKED")
        assert [t for t, _ in trips.requests] == [CMD_LSTAT]  # no OPENDIR, no READDIR
        # The connection is still good for a real site.
        assert conn.list_folders(SITE) == sorted(FOLDERS)
    finally:
        conn.close()
    with pytest.raises(QCError, match="LINKED"):
        scan_site(login, NoCache(), "LINKED")
