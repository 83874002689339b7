"""The whole scan against the in-process SFTP server, checked image by image against the truth."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from fakes import RecordingConnector
from qc_tool.adapters.cache import SqliteCache
from qc_tool.adapters.sftp.connection import SftpConnection
from qc_tool.demo.sftp_server import SftpServerHandle, start_sftp_server
from qc_tool.demo.sites import (
    SEED_SITE,
    SOUTH_WEST_SITE,
    SiteLayout,
    SiteTruth,
    generate_site,
    make_body,
)
from qc_tool.errors import AuthFailed, HostKeyRejected, PathRejected, SiteTooLarge
from qc_tool.services.ports import NoCache
from qc_tool.services.scan.site_analysis_service import ScanOptions, scan_site
from scan_support import connector, make_seed_sites, mismatches

USER, PASSWORD = "tech", "correct horse"


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, SiteTruth]]:
    root = tmp_path_factory.mktemp("sftp-root")
    (root / "sites").mkdir()
    return root, make_seed_sites(root / "sites")


@pytest.fixture(scope="module")
def server(seed: tuple[Path, dict[str, SiteTruth]]) -> Any:
    with start_sftp_server(seed[0], {USER: PASSWORD}, sites_root="/sites") as handle:
        handle.write_known_hosts(seed[0].parent / "known_hosts")
        yield handle


def _connector(server: SftpServerHandle, password: str = PASSWORD, root: str = "/sites") -> Any:
    kh = server.root.parent / "known_hosts"
    return connector(server.host, server.port, kh, root, USER, password)


def test_seed_site_gives_every_coordinate_exactly(server: SftpServerHandle, seed: Any) -> None:
    truth = seed[1][SEED_SITE]
    result = scan_site(_connector(server), NoCache(), SEED_SITE)
    assert len(result.folders) == 12
    assert len(result.images) == 1375
    assert result.gps_points == 1332
    assert mismatches(result, truth) == []
    assert {f.name: f.images for f in result.folders} == truth.folders()
    assert 2 <= result.stats.connections <= 4  # a 4th login is skipped when nearly done


def test_southern_western_site_and_broken_files(server: SftpServerHandle, seed: Any) -> None:
    truth = seed[1][SOUTH_WEST_SITE]
    result = scan_site(_connector(server), NoCache(), SOUTH_WEST_SITE)
    assert mismatches(result, truth) == []
    assert all(i.lat is None or i.lat < 0 for i in result.images)
    errors = {i.path.rsplit("/", 1)[1]: i.error for i in result.images if i.error}
    reasons = " | ".join(str(e) for e in errors.values())
    assert "empty file" in reasons and "truncated" in reasons and "not a JPEG" in reasons


def test_pipelined_scan_equals_the_sequential_path(server: SftpServerHandle) -> None:
    fast = scan_site(_connector(server), NoCache(), SOUTH_WEST_SITE)
    slow = scan_site(
        _connector(server), NoCache(), SOUTH_WEST_SITE, options=ScanOptions(pipelined=False)
    )
    assert [i.to_json() for i in fast.images] == [i.to_json() for i in slow.images]


def test_header_bytes_stay_within_the_budget(server: SftpServerHandle, seed: Any) -> None:
    truth = seed[1][SEED_SITE].by_path()
    result = scan_site(_connector(server), NoCache(), SEED_SITE)
    over = [
        (i.path, i.bytes_read, truth[i.path].exif_end)
        for i in result.images
        if i.bytes_read > 1.2 * (truth[i.path].exif_end or 0)
    ]
    assert over == []
    # Reading only the IFDs that matter costs far less than the whole EXIF segment.
    assert sum(i.bytes_read for i in result.images) < 0.5 * sum(
        t.exif_end or 0 for t in truth.values()
    )


def test_a_server_capping_reads_at_32k_gives_the_same_results(
    seed: Any, server: SftpServerHandle
) -> None:
    with start_sftp_server(
        seed[0], {USER: PASSWORD}, sites_root="/sites", read_cap=32 * 1024
    ) as capped:
        capped.write_known_hosts(seed[0].parent / "known_hosts_capped")
        conn = connector(
            capped.host,
            capped.port,
            seed[0].parent / "known_hosts_capped",
            "/sites",
            USER,
            PASSWORD,
        )
        result = scan_site(conn, NoCache(), SOUTH_WEST_SITE)
    reference = scan_site(_connector(server), NoCache(), SOUTH_WEST_SITE)
    assert [i.to_json() for i in result.images] == [i.to_json() for i in reference.images]


def test_wrong_password_costs_exactly_one_attempt(server: SftpServerHandle) -> None:
    before = server.auth_attempts[USER]
    with pytest.raises(AuthFailed):
        scan_site(_connector(server, password="wrong"), NoCache(), SEED_SITE)
    assert server.auth_attempts[USER] == before + 1


def test_unknown_host_key_refuses_before_any_password(seed: Any, tmp_path: Path) -> None:
    with start_sftp_server(seed[0], {USER: PASSWORD}, sites_root="/sites") as other:
        wrong = tmp_path / "known_hosts"
        # The key of a different server under this server's name: a "changed" host key.
        line = other.host_key_line.split(" ", 1)[1]
        with start_sftp_server(seed[0], {USER: PASSWORD}, sites_root="/sites") as impostor:
            wrong.write_text(f"[127.0.0.1]:{impostor.port} {line}\n")
            conn = connector(impostor.host, impostor.port, wrong, "/sites", USER, PASSWORD)
            with pytest.raises(HostKeyRejected, match="CHANGED"):
                scan_site(conn, NoCache(), SEED_SITE)
            unknown = connector(
                impostor.host, impostor.port, tmp_path / "empty", "/sites", USER, PASSWORD
            )
            (tmp_path / "empty").write_text("")
            with pytest.raises(HostKeyRejected, match="unknown"):
                scan_site(unknown, NoCache(), SEED_SITE)
            assert impostor.auth_attempts[USER] == 0


@pytest.mark.parametrize("site", ["..", "../etc", "/etc", "a/b", "a\\b", "x\x00y", ".hidden", ""])
def test_path_traversal_is_refused_before_reaching_the_server(
    server: SftpServerHandle, site: str
) -> None:
    connections = server.connections
    with pytest.raises(PathRejected):
        scan_site(_connector(server), NoCache(), site)
    assert server.connections == connections


def test_each_connection_is_used_by_one_thread_at_a_time(server: SftpServerHandle) -> None:
    recording = RecordingConnector(_connector(server))
    result = scan_site(recording, NoCache(), SEED_SITE)
    assert len(result.images) == 1375
    assert recording.overlaps == 0
    # The 513-image folder asks for 4 workers; a pool login is skipped once the open
    # connections have nearly finished (on loopback they may finish before the 4th opens).
    assert 2 <= len(recording.opened) <= 4
    assert sum(c.reads for c in recording.opened) == 1375  # every image dealt exactly once


def test_warm_rescan_opens_no_file_and_follows_changes(seed: Any, tmp_path: Path) -> None:
    root, _truths = seed
    work = tmp_path / "root"
    (work / "sites").mkdir(parents=True)
    site_dir = work / "sites" / SOUTH_WEST_SITE
    os.system(f"cp -a {root / 'sites' / SOUTH_WEST_SITE} {site_dir}")
    cache = SqliteCache(tmp_path / "cache").for_user(USER)
    with start_sftp_server(work, {USER: PASSWORD}, sites_root="/sites") as srv:
        srv.write_known_hosts(tmp_path / "kh")
        conn = connector(srv.host, srv.port, tmp_path / "kh", "/sites", USER, PASSWORD)
        cold = scan_site(conn, cache, SOUTH_WEST_SITE)
        opened, logins = srv.files_opened, srv.connections
        warm = scan_site(conn, cache, SOUTH_WEST_SITE)
        assert srv.files_opened == opened
        assert srv.connections == logins + 1  # a warm rescan needs no pool
        assert warm.stats.cached == len(warm.images) == len(cold.images)
        assert [i.to_json() | {"cached": False} for i in warm.images] == [
            i.to_json() for i in cold.images
        ]

        folder = site_dir / "Tower-Scans"
        files = sorted(folder.iterdir())
        changed, deleted = files[0], files[1]
        os.utime(changed, (1_700_000_000, 1_700_000_000))
        deleted.unlink()
        (folder / "DJI_9999.JPG").write_bytes(files[2].read_bytes())
        again = scan_site(conn, cache, SOUTH_WEST_SITE)
        paths = {i.path: i for i in again.images}
        assert srv.files_opened == opened + 2  # the changed file and the new one
        assert f"Tower-Scans/{deleted.name}" not in paths
        assert not paths[f"Tower-Scans/{changed.name}"].cached
        assert not paths["Tower-Scans/DJI_9999.JPG"].cached
        assert again.stats.cached == len(again.images) - 2


def test_pipelined_reader_equals_a_plain_whole_file_read(
    server: SftpServerHandle, seed: Any
) -> None:
    """Independent reference: download each file with paramiko's plain file API, parse locally."""
    from qc_tool.adapters.sftp.connect import open_sftp, open_transport
    from qc_tool.domain.exif import summarize
    from qc_tool.domain.exif_reader import read_exif_block
    from qc_tool.domain.sparse import run_program
    from qc_tool.errors import UnreadableImage

    conn = _connector(server)
    result = scan_site(conn, NoCache(), SOUTH_WEST_SITE)
    transport = open_transport(conn.endpoint, USER, PASSWORD)
    try:
        sftp = open_sftp(transport, conn.endpoint)
        for image in result.images:
            with sftp.open(f"/sites/{SOUTH_WEST_SITE}/{image.path}", "rb") as fh:
                data = fh.read()
            try:
                block = run_program(read_exif_block(len(data)), lambda o, n, d=data: d[o : o + n])
                facts = summarize(block)
                expected = (facts.lat, facts.lon, facts.alt, facts.taken, facts.camera)
            except UnreadableImage as exc:
                assert image.error == exc.message
                expected = (None, None, None, None, None)
            assert (image.lat, image.lon, image.alt, image.taken, image.camera) == expected, (
                image.path
            )
    finally:
        transport.close()


def test_parsing_in_worker_processes_gives_the_same_document(server: SftpServerHandle) -> None:
    from qc_tool.services.scan.parsing import ProcessParser

    parser = ProcessParser(2)
    try:
        pooled = scan_site(_connector(server), NoCache(), SOUTH_WEST_SITE, parser=parser)
    finally:
        parser.close()
    inline = scan_site(_connector(server), NoCache(), SOUTH_WEST_SITE)
    assert [i.to_json() for i in pooled.images] == [i.to_json() for i in inline.images]


def test_a_site_of_more_photos_than_one_qc_takes_is_refused_while_listing(
    sftp_server: SftpServerHandle,
    sftp_root: Path,
    sftp_username: str,
    sftp_password: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    layout = SiteLayout(folders=tuple((f"F{i:02d}", 2) for i in range(40)))
    generate_site(sftp_root / "sites", "BIG", layout, body=make_body(layout))
    listed: list[int] = []
    original = SftpConnection.list_images

    def counting(self: SftpConnection, site: str, folders: Sequence[str]) -> Any:
        listed.append(len(folders))
        return original(self, site, folders)

    monkeypatch.setattr(SftpConnection, "list_images", counting)
    kh = sftp_server.write_known_hosts(sftp_root.parent / "known_hosts")
    conn = connector(sftp_server.host, sftp_server.port, kh, "/sites", sftp_username, sftp_password)
    with pytest.raises(SiteTooLarge) as refused:
        scan_site(conn, NoCache(), "BIG", options=ScanOptions(max_photos=30))
    assert refused.value.message == (
        "BIG holds at least 32 photos, more than the 30 one QC takes; split it into smaller sites"
    )
    assert listed == [16]  # the other 24 folders were never listed
    assert sftp_server.files_opened == 0
    result = scan_site(conn, NoCache(), "BIG", options=ScanOptions(max_photos=80))
    assert len(result.images) == 80 and listed == [16, 16, 16, 8]
