"""Many logins at once against a stock OpenSSH sshd: ``MaxStartups 10:30:100`` (issue 10, item 8).

sshd drops new connections at random (before its banner) once 10 are unauthenticated. The
tool keeps at most QC_MAX_SERVER_HANDSHAKES (8) of its connections logging in at once, and
opens again a connection that was dropped before the login began.
"""

from __future__ import annotations

import logging
import subprocess
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import paramiko
import pytest
from qc_tool.adapters.sftp.connect import SftpEndpoint, open_connection, open_transport
from qc_tool.adapters.sftp.limits import ServerSlots
from qc_tool.demo.openssh import SSHD

THROTTLING = "beginning MaxStartups throttling"


@pytest.fixture(scope="module")
def openssh(sshd: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    sites = tmp_path_factory.mktemp("startups-sites")
    (sites / "SITE").mkdir()
    return sshd(sites)


def endpoint_of(server: Any, **options: Any) -> SftpEndpoint:
    return replace(SftpEndpoint(server.host, server.port, Path(server.known_hosts)), **options)


def log_in_at_once(
    server: Any,
    endpoint: SftpEndpoint,
    handshakes: ServerSlots,
    count: int,
    opener: Any = open_transport,
) -> list[str]:
    """``count`` logins started together, all held until every one is done; their failures."""
    start = threading.Barrier(count)
    failures: list[str] = []
    opened: list[paramiko.Transport] = []

    def log_in() -> None:
        start.wait()
        try:
            got = opener(endpoint, server.username, server.password, handshakes=handshakes)
            opened.append(got[0] if isinstance(got, tuple) else got)
        except Exception as exc:  # noqa: BLE001 (every failure is the finding)
            failures.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=log_in) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for transport in opened:
        transport.close()
    return failures


def test_the_test_sshd_keeps_openssh_default_max_startups(openssh: Any) -> None:
    config = openssh.log_file.with_name(f"sshd_config.{openssh.port}")
    assert "MaxStartups 10:30:100" in config.read_text().splitlines()
    effective = subprocess.run(
        [str(SSHD), "-T", "-f", str(config)], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert "maxstartups 10:30:100" in effective


def test_thirty_logins_at_once_stay_below_max_startups(openssh: Any) -> None:
    handshakes = ServerSlots()
    # No retries: a dropped connection would fail here, so only the cap can keep them all.
    endpoint = endpoint_of(openssh, drop_retry_delays=())
    before = openssh.log_text().count(THROTTLING)
    assert log_in_at_once(openssh, endpoint, handshakes, 30) == []
    assert handshakes.peak(endpoint.server_id) == endpoint.max_handshakes == 8
    assert openssh.log_text().count(THROTTLING) == before  # sshd never had to drop one


def test_thirty_sftp_sessions_at_once_settled_by_their_channel_stay_below_max_startups(
    openssh: Any,
) -> None:
    # open_connection sends no keepalive after the login: the SFTP channel's opening, which
    # only sshd's logged-in process answers, is the round trip that frees the place.
    handshakes = ServerSlots()
    endpoint = endpoint_of(openssh, drop_retry_delays=())
    before = openssh.log_text().count(THROTTLING)
    assert log_in_at_once(openssh, endpoint, handshakes, 30, open_connection) == []
    assert handshakes.peak(endpoint.server_id) == endpoint.max_handshakes == 8
    assert openssh.log_text().count(THROTTLING) == before


def test_logins_dropped_past_max_startups_are_opened_again(
    openssh: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Without the cap, forty logins at once take sshd past MaxStartups: it drops some.
    endpoint = endpoint_of(openssh, max_handshakes=100)
    before = openssh.log_text().count(THROTTLING)
    with caplog.at_level(logging.INFO, logger="qc_tool.adapters.sftp.connect"):
        failures = log_in_at_once(openssh, endpoint, ServerSlots(), 40)
    assert openssh.log_text().count(THROTTLING) > before  # the drops happened
    assert failures == []  # and every dropped connection was opened again
    assert "closed the connection before its SSH banner; opening it again" in caplog.text
