"""A burst of wrong passwords through gunicorn never gets more guesses to the server than the limit.

Issue 10, item 7: 40 wrong-password logins for one user, posted at once, made 20 attempts on
the server against a limit of 5, because the limit was checked before the attempt and counted
after it. The app runs as start_qc_tool.sh runs it (gunicorn, 16 threads); the attempts are
counted by the server itself: the in-process server's per-user count, and sshd's "Failed
password" log lines.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from qc_tool.demo.sftp_server import SftpServerHandle
from waiting import wait_until

from bench.load import Browser, app_settings, login_form_token, start_gunicorn

BURST = 40
LIMIT = 5  # QC_LOGIN_MAX_FAILURES's default
DEADLINE_S = 120.0  # a failure ends the test by then


def post_wrong_passwords_at_once(host: str, port: int, username: str, count: int) -> Counter[int]:
    """``count`` browsers, each with its login form, post a wrong password together."""
    deadline = time.monotonic() + DEADLINE_S
    browsers = [Browser(host, port, deadline) for _ in range(count)]
    tokens = [login_form_token(b) for b in browsers]
    start = threading.Barrier(count)
    statuses: list[int] = []

    def post(browser: Browser, token: str, i: int) -> None:
        start.wait()
        form = {"username": username, "password": f"wrong-{i}", "csrf_token": token}
        statuses.append(browser.request("POST", "/login", form=form).status)

    threads = [
        threading.Thread(target=post, args=(b, t, i))
        for i, (b, t) in enumerate(zip(browsers, tokens, strict=True))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    assert len(statuses) == count, "some logins got no answer before the deadline"
    return Counter(statuses)


def test_forty_wrong_passwords_at_once_reach_the_in_process_server_at_most_five_times(
    make_sftp_server: Any, sftp_root: Path, tmp_path: Path
) -> None:
    server: SftpServerHandle = make_sftp_server(
        sftp_root, {"alice": "right-password"}, sites_root="/sites"
    )
    settings = app_settings(
        server.port,
        server.sites_root,
        server.write_known_hosts(tmp_path / "known_hosts"),
        tmp_path / "cache",
    )
    app = start_gunicorn(settings, tmp_path / "gunicorn.log")
    try:
        statuses = post_wrong_passwords_at_once(app.host, app.port, "alice", BURST)
    finally:
        app.stop()
    assert server.auth_attempts["alice"] == LIMIT
    assert statuses == {401: LIMIT, 429: BURST - LIMIT}


@pytest.mark.timeout(300)
def test_forty_wrong_passwords_at_once_reach_sshd_at_most_five_times(
    sshd: Any, tmp_path: Path
) -> None:
    (tmp_path / "sites" / "SITE").mkdir(parents=True)
    server = sshd(tmp_path / "sites")
    settings = app_settings(server.port, server.sites_root, server.known_hosts, tmp_path / "cache")
    app = start_gunicorn(settings, tmp_path / "gunicorn.log")
    try:
        statuses = post_wrong_passwords_at_once(app.host, app.port, server.username, BURST)
    finally:
        app.stop()
    # Each attempt that reached sshd was answered 401; once sshd has logged the end of those
    # connections, every "Failed password" line they caused is in the log.
    wait_until(
        lambda: server.refused_logins_ended(server.username) >= statuses[401],
        message="sshd to log the end of every refused connection",
    )
    assert server.failed_password_count(server.username) == statuses[401] == LIMIT
    assert statuses == {401: LIMIT, 429: BURST - LIMIT}
