"""A login's kept connection over a real SFTP server, used by one thread after another.

A web server answers each request on whichever thread is free; the kept connection passes
from one to the next under its lock. Two threads on it at once are still refused.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from qc_tool.adapters.sftp.connection import SftpConnection
from qc_tool.demo.sftp_server import SftpServerHandle
from qc_tool.services.logins.held_connections import HeldConnections
from qc_tool.services.ports import SiteConnection
from scan_support import connector


@pytest.fixture
def server(make_sftp_server: Callable[..., SftpServerHandle], sftp_root: Path) -> SftpServerHandle:
    for folder in ("Tower", "Antenna"):
        (sftp_root / "sites" / "S1" / folder).mkdir(parents=True)
    return make_sftp_server(sftp_root, sites_root="/sites")


def test_a_kept_connection_serves_one_login_on_thread_after_thread(
    server: SftpServerHandle, tmp_path: Path, sftp_username: str, sftp_password: str
) -> None:
    known = server.write_known_hosts(tmp_path / "known_hosts")
    login = connector(
        server.host, server.port, known, server.sites_root, sftp_username, sftp_password
    )
    held = HeldConnections()
    threads: set[int] = set()

    def request(_: int) -> list[str]:
        def work(conn: SiteConnection) -> list[str]:
            threads.add(threading.get_ident())
            return conn.list_folders("S1")

        return held.run("sid", login, work)

    try:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(request, range(40)))
    finally:
        held.close_all()
    assert answers == [["Antenna", "Tower"]] * 40
    assert len(threads) > 1  # the requests did come on different threads
    assert server.auth_attempts[sftp_username] == 1  # and one connection served them all


def test_two_threads_at_once_on_one_connection_are_still_refused(
    server: SftpServerHandle, tmp_path: Path, sftp_username: str, sftp_password: str
) -> None:
    known = server.write_known_hosts(tmp_path / "known_hosts")
    conn = connector(
        server.host, server.port, known, server.sites_root, sftp_username, sftp_password
    ).connect()
    assert isinstance(conn, SftpConnection)
    try:
        assert conn.list_folders("S1") == ["Antenna", "Tower"]  # this thread owns it now
        refused: list[BaseException] = []

        def intruder() -> None:
            try:
                conn.list_folders("S1")
            except RuntimeError as exc:
                refused.append(exc)

        thread = threading.Thread(target=intruder)
        thread.start()
        thread.join(10)
        assert len(refused) == 1 and "another thread" in str(refused[0])
        conn.release()  # handed over: now another thread may take it
        with ThreadPoolExecutor(1) as other:
            assert other.submit(conn.list_folders, "S1").result(10) == ["Antenna", "Tower"]
    finally:
        conn.close()
