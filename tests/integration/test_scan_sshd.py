"""The seed-shaped site through OpenSSH's sshd: login, site list and "View QC" results, exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from qc_tool.adapters.cache import SqliteCache
from qc_tool.demo.sites import SEED_SITE, SOUTH_WEST_SITE
from qc_tool.errors import AuthFailed
from qc_tool.services.ports import NoCache
from qc_tool.services.scan.site_analysis_service import ScanOptions, scan_site
from scan_support import connector, make_seed_sites, mismatches
from waiting import wait_until


@pytest.fixture(scope="module")
def openssh(sshd: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    data = tmp_path_factory.mktemp("sshd-sites")
    truths = make_seed_sites(data)
    return sshd(data), truths


def _connector(server: Any, password: str | None = None) -> Any:
    return connector(
        server.host,
        server.port,
        Path(server.known_hosts),
        server.sites_root,
        server.username,
        server.password if password is None else password,
    )


def test_sites_are_listed_with_their_folder_counts(openssh: Any) -> None:
    server, _ = openssh
    conn = _connector(server).connect()
    try:
        sites = {s.name: s.folders for s in conn.list_sites()}
    finally:
        conn.close()
    assert sites == {SEED_SITE: 12, SOUTH_WEST_SITE: 3}


def test_view_qc_gives_every_folder_count_and_coordinate_exactly(
    openssh: Any, tmp_path: Path
) -> None:
    server, truths = openssh
    result = scan_site(
        _connector(server), SqliteCache(tmp_path / "cache").for_user(server.username), SEED_SITE
    )
    assert len(result.images) == 1375 and result.gps_points == 1332
    assert {f.name: f.images for f in result.folders} == truths[SEED_SITE].folders()
    assert mismatches(result, truths[SEED_SITE]) == []
    assert 2 <= result.stats.connections <= 4  # a 4th login is skipped when nearly done


def test_broken_files_and_sequential_path_agree_on_openssh(openssh: Any) -> None:
    server, truths = openssh
    fast = scan_site(_connector(server), NoCache(), SOUTH_WEST_SITE)
    slow = scan_site(
        _connector(server), NoCache(), SOUTH_WEST_SITE, options=ScanOptions(pipelined=False)
    )
    assert mismatches(fast, truths[SOUTH_WEST_SITE]) == []
    assert [i.to_json() for i in fast.images] == [i.to_json() for i in slow.images]


def test_wrong_password_costs_one_login_attempt_on_sshd(openssh: Any) -> None:
    server, _ = openssh
    before = server.failed_password_count(server.username)
    ended = server.refused_logins_ended(server.username)
    with pytest.raises(AuthFailed):
        scan_site(_connector(server, password="not-the-password"), NoCache(), SEED_SITE)
    wait_until(
        lambda: server.refused_logins_ended(server.username) == ended + 1,
        message="sshd to log the end of the refused connection",
    )
    assert server.failed_password_count(server.username) == before + 1
