"""Network faults, through a fault-injecting proxy in front of the in-process SFTP server.

Each test puts tests/faultproxy.py between the tool and a real server and breaks the link
the way real links break: a reset mid-scan, a peer that goes silent, a banner that never
comes, refused connections and channels, a wrong password, a host key that changes. The
scan's result is compared with a clean scan of the same site, image by image.
"""

from __future__ import annotations

import itertools
import logging
import re
import socket
import stat
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import paramiko
import pytest
from fakes import RecordingConnector
from faultproxy import Fault, FaultProxy, on_connection, refuse_after
from qc_tool.adapters.cache import SqliteCache
from qc_tool.adapters.sftp import connect as connect_module
from qc_tool.adapters.sftp import hostkeys
from qc_tool.adapters.sftp.connect import (
    SftpEndpoint,
    open_connection,
    open_sftp,
    open_transport,
)
from qc_tool.adapters.sftp.connection import MAX_FILES_IN_FLIGHT, SftpConnector
from qc_tool.adapters.sftp.limits import ServerSlots, Slot
from qc_tool.demo.sftp_server import SftpServerHandle, start_sftp_server
from qc_tool.demo.sites import SOUTH_WEST_LAYOUT, SiteLayout, SiteTruth, generate_site, make_body
from qc_tool.domain.models import ScanResult
from qc_tool.errors import (
    AuthFailed,
    Cancelled,
    ChannelRefused,
    HostKeyRejected,
    RemoteUnavailable,
    ServerBusy,
)
from qc_tool.services.checks.budget import ByteBudget
from qc_tool.services.checks.options import CheckOptions
from qc_tool.services.checks.run import CheckReport, check_site
from qc_tool.services.jobs import Job, JobManager
from qc_tool.services.ports import NoCache
from qc_tool.services.scan.pool import ConnectionPool
from qc_tool.services.scan.site_analysis_service import scan_site
from scan_support import mismatches
from waiting import wait_until

USER, PASSWORD = "tech", "correct horse"
OTHER_USER, OTHER_PASSWORD = "surveyor", "battery staple"
SITE, OTHER_SITE, CHECK_SITE = "SITE-FAULTS", "SITE-OTHER", "SITE-CHECKS"
# Three folders: 240 images (4 workers), 60 (2 workers) and 8 (one connection).
LAYOUT = SiteLayout(
    folders=(("Tower-Scans", 240), ("Antenna-Sector-A", 60), ("Fence-Gate", 8)), without_gps=6
)
CHECK_LAYOUT = SiteLayout(folders=(("Tower", 24),), previews=True, preview_size=(480, 360))
OP_TIMEOUT = 5.0  # no test plans a silence this long: a hang fails fast instead of never


# -- the server, the sites and the clean results ----------------------------------------------


class World:
    """The server tree, its truths, and the clean (no proxy, no fault) results to compare with."""

    def __init__(self, root: Path, truths: dict[str, SiteTruth], server: SftpServerHandle) -> None:
        self.root = root
        self.truths = truths
        self.server = server
        self.clean: dict[str, ScanResult] = {}

    def clean_json(self, site: str) -> list[dict[str, Any]]:
        return [i.to_json() for i in self.clean[site].images]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("faults-root")
    sites = root / "sites"
    sites.mkdir()
    truths = {
        SITE: generate_site(sites, SITE, LAYOUT, body=make_body(LAYOUT)),
        OTHER_SITE: generate_site(
            sites, OTHER_SITE, SOUTH_WEST_LAYOUT, body=make_body(SOUTH_WEST_LAYOUT)
        ),
        CHECK_SITE: generate_site(sites, CHECK_SITE, CHECK_LAYOUT, body=make_body(CHECK_LAYOUT)),
    }
    users = {USER: PASSWORD, OTHER_USER: OTHER_PASSWORD}
    with start_sftp_server(root, users, sites_root="/sites") as server:
        world = World(root, truths, server)
        direct = _connector(server.host, server.port, _known_hosts(server, server.port, root))
        for site in (SITE, OTHER_SITE):
            world.clean[site] = scan_site(direct, NoCache(), site)
            assert mismatches(world.clean[site], truths[site]) == []
        yield world


def _known_hosts(server: SftpServerHandle, port: int, where: Path) -> Path:
    """A known_hosts file naming ``server``'s key at 127.0.0.1:``port`` (the proxy's port)."""
    path = where / f"known_hosts.{port}"
    key = server.host_key_line.split(" ", 1)[1]
    path.write_text(f"[127.0.0.1]:{port} {key}\n")
    return path


def _connector(
    host: str,
    port: int,
    known_hosts: Path,
    *,
    user: str = USER,
    password: str = PASSWORD,
    **endpoint: Any,
) -> SftpConnector:
    slots = endpoint.pop("slots", None)
    options: dict[str, Any] = {"connect_timeout": 5.0, "op_timeout": OP_TIMEOUT, **endpoint}
    ep = SftpEndpoint(host, port, known_hosts, **options)
    if slots is None:
        return SftpConnector(ep, "/sites", user, password)
    return SftpConnector(ep, "/sites", user, password, slots=slots)


def _via(proxy: FaultProxy, world: World, tmp_path: Path, **options: Any) -> SftpConnector:
    """A connector to the server through ``proxy`` (its host key known under the proxy's port)."""
    known = _known_hosts(world.server, proxy.port, tmp_path)
    return _connector(proxy.host, proxy.port, known, **options)


def _proxy(world: World, **options: Any) -> FaultProxy:
    return FaultProxy((world.server.host, world.server.port), **options).start()


@pytest.fixture
def proxies() -> Iterator[list[FaultProxy]]:
    """Proxies made by a test, stopped after it."""
    made: list[FaultProxy] = []
    yield made
    for proxy in made:
        proxy.stop()


def _started(proxies: list[FaultProxy], proxy: FaultProxy) -> FaultProxy:
    proxies.append(proxy)
    return proxy


def _bytes_down_of_first_connection(
    world: World, proxies: list[FaultProxy], tmp_path: Path, site: str = SITE
) -> int:
    """What connection 1 carries server -> client in a clean scan (to aim a fault mid-read)."""
    proxy = _started(proxies, _proxy(world))
    scan_site(_via(proxy, world, tmp_path), NoCache(), site)
    wait_until(lambda: proxy.open_links == 0, message="the probe scan's connections to close")
    return proxy.links[0].bytes_down


def _retry_log(caplog: pytest.LogCaptureFixture) -> list[tuple[int, int]]:
    """(connection, unfinished images sent back) for every connection failure logged."""
    found = re.findall(r"connection (\d+) failed \(.*?\); (\d+) unfinished images", caplog.text)
    return [(int(c), int(n)) for c, n in found]


def _transports_alive(before: set[threading.Thread]) -> list[threading.Thread]:
    return [
        t
        for t in threading.enumerate()
        if isinstance(t, paramiko.Transport) and t.is_alive() and t not in before
    ]


# -- 1. a reset in the middle of a scan -------------------------------------------------------


def test_a_reset_mid_scan_retries_only_the_unfinished_images_on_a_fresh_connection(
    world: World, proxies: list[FaultProxy], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    total = _bytes_down_of_first_connection(world, proxies, tmp_path)
    proxy = _started(proxies, _proxy(world, faults=on_connection(0, Fault(reset_after=total // 2))))
    opened = world.server.files_opened
    reported: list[float] = []
    with caplog.at_level(logging.INFO):
        result = scan_site(
            _via(proxy, world, tmp_path),
            NoCache(),
            SITE,
            on_progress=lambda p: reported.append(time.monotonic()),
        )
    assert proxy.links[0].reset
    assert [i.to_json() for i in result.images] == world.clean_json(SITE)
    assert len(reported) == len(result.images)  # each image reported once: no duplicates
    retried = _retry_log(caplog)
    assert [c for c, _ in retried] == [1] and "retry 1 on a fresh connection" in caplog.text
    unfinished = retried[0][1]
    assert 0 < unfinished <= MAX_FILES_IN_FLIGHT  # at most what was in its pipeline
    reset_at = proxy.links[0].closed
    assert reset_at is not None
    assert sum(t < reset_at for t in reported) > 0  # results finished before the reset ...
    # ... were kept: only the unfinished images can have been opened twice.
    assert world.server.files_opened - opened <= len(result.images) + unfinished
    # The replacement is a new connection, opened after the reset.
    assert any(link.opened >= reset_at for link in proxy.links[1:])


def _login_and_listing_bytes(
    world: World, proxies: list[FaultProxy], tmp_path: Path
) -> tuple[int, int]:
    """Bytes server -> client for a login alone, and for a login plus the site's listing."""
    probe = _started(proxies, _proxy(world))
    connector = _via(probe, world, tmp_path)
    connector.connect().close()
    conn = connector.connect()
    conn.list_images(SITE, conn.list_folders(SITE))
    conn.close()
    wait_until(lambda: probe.open_links == 0, message="the probe's connections to close")
    return probe.links[0].bytes_down, probe.links[1].bytes_down


def test_a_reset_during_the_listing_is_retried_on_a_fresh_connection(
    world: World, proxies: list[FaultProxy], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    login, listed = _login_and_listing_bytes(world, proxies, tmp_path)
    proxy = _started(
        proxies, _proxy(world, faults=on_connection(0, Fault(reset_after=(login + listed) // 2)))
    )
    with caplog.at_level(logging.WARNING):
        result = scan_site(_via(proxy, world, tmp_path), NoCache(), SITE)
    assert proxy.links[0].reset
    assert "connection 1 failed" in caplog.text and "retrying on a fresh one" in caplog.text
    assert [i.to_json() for i in result.images] == world.clean_json(SITE)


def test_when_connections_keep_failing_the_scan_fails_and_keeps_what_it_read(
    world: World, proxies: list[FaultProxy], tmp_path: Path
) -> None:
    _, listed = _login_and_listing_bytes(world, proxies, tmp_path)
    # Every connection is reset a few images' worth after its listing would have ended.
    proxy = _started(proxies, _proxy(world, faults=Fault(reset_after=listed + 20_000)))
    connector = _via(proxy, world, tmp_path)
    cache = SqliteCache(tmp_path / "cache").for_user(USER)
    with pytest.raises(RemoteUnavailable, match=r"failed \d+ times .* images were not read"):
        scan_site(connector, cache, SITE)
    wait_until(lambda: proxy.open_links == 0, message="the failed scan's connections to close")
    # Bounded: the first connection, at most 3 more for the pool, and two replacements.
    assert proxy.accepted <= 1 + 3 + 2
    # What was read before the scan gave up is kept: the next scan reads only the rest.
    proxy.set_faults(Fault())
    opened = world.server.files_opened
    again = scan_site(connector, cache, SITE)
    assert 0 < again.stats.cached < len(again.images)
    assert world.server.files_opened - opened == len(again.images) - again.stats.cached
    assert [i.to_json() | {"cached": False} for i in again.images] == world.clean_json(SITE)


def _outcomes(report: CheckReport) -> list[tuple[str, list[tuple[str, bool, str]]]]:
    return [(c.name, [(o.name, o.ok, o.message) for o in c.outcomes]) for c in report.images]


def test_the_check_pass_survives_a_reset_too(
    world: World, proxies: list[FaultProxy], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    direct = _connector(
        world.server.host,
        world.server.port,
        _known_hosts(world.server, world.server.port, tmp_path),
    )
    scan = scan_site(direct, NoCache(), CHECK_SITE)
    options = CheckOptions(max_connections=4)
    with ThreadPoolExecutor(2) as executor:
        probe = _started(proxies, _proxy(world))
        clean = check_site(_via(probe, world, tmp_path), scan, executor, options=options)
        wait_until(lambda: probe.open_links == 0, message="the clean pass's connections to close")
        total = probe.links[0].bytes_down
        proxy = _started(
            proxies, _proxy(world, faults=on_connection(0, Fault(reset_after=total // 2)))
        )
        budget = ByteBudget(options.memory_budget)
        with caplog.at_level(logging.WARNING):
            faulted = check_site(
                _via(proxy, world, tmp_path), scan, executor, options=options, budget=budget
            )
    assert proxy.links[0].reset and "retry 1 on a fresh connection" in caplog.text
    assert _outcomes(faulted) == _outcomes(clean)
    assert len(faulted.images) == CHECK_LAYOUT.total
    # What the failed connection had reserved for its unfinished photos was given back.
    assert budget.held == 0 and budget.queued == 0 and budget.peak > 0


# -- 2. a peer that goes silent ---------------------------------------------------------------


def test_a_silent_peer_is_dropped_after_the_operation_deadline_and_the_scan_recovers(
    world: World, proxies: list[FaultProxy], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    total = _bytes_down_of_first_connection(world, proxies, tmp_path)
    proxy = _started(
        proxies, _proxy(world, faults=on_connection(0, Fault(silent_after=total // 2)))
    )
    before = set(threading.enumerate())
    with caplog.at_level(logging.WARNING):
        result = scan_site(_via(proxy, world, tmp_path, op_timeout=1.0), NoCache(), SITE)
    assert [i.to_json() for i in result.images] == world.clean_json(SITE)
    assert "stopped answering (timed out)" in caplog.text
    link = proxy.links[0]
    wait_until(lambda: link.closed is not None, message="the silent link to be closed")
    assert link.client_closed  # the tool hung up on it: the connection was discarded
    assert link.silenced is not None and link.closed is not None
    # Dropped for its silence (the log above), and not before the deadline had passed.
    assert link.closed - link.silenced >= 1.0
    wait_until(lambda: not _transports_alive(before), message="no paramiko thread left behind")


def test_when_every_connection_goes_silent_the_scan_fails_within_its_deadlines(
    world: World, proxies: list[FaultProxy], tmp_path: Path
) -> None:
    proxy = _started(proxies, _proxy(world))

    def silence_all(p: Any) -> None:
        if p.done == 50:  # everything from now on: silent links, and no banner on new ones
            proxy.set_faults(Fault(blackhole=True))
            for link in proxy.links:
                proxy.silence(link.index)

    before = set(threading.enumerate())
    # Each failure costs one deadline (1 s) and the pauses 0.2 s and 1 s; a hang would be
    # stopped by pytest-timeout, and the errors say that the deadlines were the cause.
    with pytest.raises(RemoteUnavailable, match="failed .* times") as failed:
        scan_site(
            _via(proxy, world, tmp_path, op_timeout=1.0, connect_timeout=1.0),
            NoCache(),
            SITE,
            on_progress=silence_all,
        )
    assert re.search(r"\(.*(timed out|within 1(\.0)? s)\)", str(failed.value))  # a deadline
    wait_until(
        lambda: all(link.closed is not None for link in proxy.links),
        message="every link to be closed",
    )
    assert all(link.client_closed for link in proxy.links)  # the tool hung up on every one
    wait_until(lambda: not _transports_alive(before), message="no paramiko thread left behind")


def _bytes_up_to_the_password(world: World, proxies: list[FaultProxy], tmp_path: Path) -> int:
    """What a login sends the server up to and including the password packet."""
    probe = _started(proxies, _proxy(world))
    transport = open_transport(_via(probe, world, tmp_path).endpoint, USER, PASSWORD)
    try:
        # After the password the tool sends one request more and waits for its answer (see
        # connect._settled); another of the same size tells how much to take off.
        logged_in = probe.links[0].bytes_up
        transport.global_request("keepalive@openssh.com", wait=True)
        request = probe.links[0].bytes_up - logged_in
    finally:
        transport.close()
    return logged_in - request


def test_a_login_whose_answer_never_comes_is_not_called_a_wrong_password(
    world: World, proxies: list[FaultProxy], tmp_path: Path
) -> None:
    sent = _bytes_up_to_the_password(world, proxies, tmp_path)
    # Drop the last byte of the password packet: the server never sees a complete login.
    proxy = _started(proxies, _proxy(world, faults=Fault(silent_up_after=sent - 1)))
    connector = _via(proxy, world, tmp_path, connect_timeout=1.0)
    attempts = world.server.auth_attempts[USER]
    with pytest.raises(RemoteUnavailable, match="did not answer the login within 1 s"):
        connector.connect()
    assert world.server.auth_attempts[USER] == attempts
    assert proxy.accepted == 1  # the password was sent: never opened again


def _bytes_down_of_the_key_exchange(world: World, proxies: list[FaultProxy], tmp_path: Path) -> int:
    """What the server sends up to the end of its key exchange (before any login message)."""
    probe = _started(proxies, _proxy(world))
    endpoint = _via(probe, world, tmp_path).endpoint
    known = hostkeys.load_known_hosts(endpoint.known_hosts, trust_on_first_use=False)
    transport = paramiko.Transport(socket.create_connection((probe.host, probe.port), timeout=5))
    try:
        connect_module._handshake(
            transport, endpoint, hostkeys.key_types(known, endpoint.host_key_name)
        )
        return probe.links[0].bytes_down  # the client has the server's NEWKEYS: all of it
    finally:
        transport.close()


def test_the_password_goes_out_before_the_login_service_is_accepted(
    world: World, proxies: list[FaultProxy], tmp_path: Path
) -> None:
    # paramiko waits for the server to accept the "ssh-userauth" service before it sends the
    # password: a round trip. Hold everything the server says after its key exchange until
    # the password is through: a client that waits for the acceptance waits for ever.
    password_sent = _bytes_up_to_the_password(world, proxies, tmp_path)
    kex_done = _bytes_down_of_the_key_exchange(world, proxies, tmp_path)
    proxy = _started(proxies, _proxy(world, faults=Fault(hold_down=(kex_done, password_sent))))
    attempts = world.server.auth_attempts[USER]
    connector = _via(proxy, world, tmp_path, connect_timeout=2.0)
    connector.connect().close()
    assert world.server.auth_attempts[USER] == attempts + 1  # one password attempt, accepted
    assert proxy.links[0].bytes_up >= password_sent


def test_a_connection_settles_its_login_with_its_channel_not_a_keepalive(
    world: World, proxies: list[FaultProxy], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server counts a login among MaxStartups until its logged-in process answers a first
    # request (connect._settled); the SFTP channel's opening is such a request already.
    asked: list[str] = []
    real = paramiko.Transport.global_request

    def recording(self: paramiko.Transport, kind: str, *args: Any, **kwargs: Any) -> Any:
        asked.append(kind)
        return real(self, kind, *args, **kwargs)

    monkeypatch.setattr(paramiko.Transport, "global_request", recording)
    conn = _via(_started(proxies, _proxy(world)), world, tmp_path).connect()
    try:
        assert conn.list_folders(SITE)  # the connection works
    finally:
        conn.close()
    assert asked == []


def test_a_connection_opened_ahead_over_a_socket_dialled_ahead_joins_its_connector(
    world: World, proxies: list[FaultProxy], tmp_path: Path
) -> None:
    # The CLI dials before paramiko imports and logs in before the connector exists.
    proxy = _started(proxies, _proxy(world))
    slots = ServerSlots()
    connector = _via(proxy, world, tmp_path, slots=slots)
    ahead = socket.create_connection((proxy.host, proxy.port), timeout=5)
    wait_until(lambda: proxy.accepted == 1, message="the proxy to take the dialled connection")
    transport, sftp = open_connection(connector.endpoint, USER, PASSWORD, sock=ahead)
    conn = connector.adopt(transport, sftp)
    try:
        assert proxy.accepted == 1  # the login went over the connection dialled ahead
        assert slots.in_use(connector.endpoint.server_id) == 1  # and holds a slot
        assert conn.list_folders(SITE)
        connector.connect().close()  # a later login dials its own
        assert proxy.accepted == 2
    finally:
        conn.close()
    assert slots.in_use(connector.endpoint.server_id) == 0


def test_a_connection_closed_during_the_login_is_not_opened_again(
    world: World, proxies: list[FaultProxy], tmp_path: Path
) -> None:
    sent = _bytes_up_to_the_password(world, proxies, tmp_path)
    # The password packet goes out (all but its last byte), then the server resets.
    proxy = _started(proxies, _proxy(world, faults=Fault(silent_up_after=sent - 1)))
    connector = _via(proxy, world, tmp_path)
    failures: list[BaseException] = []

    def connect() -> None:
        try:
            connector.connect()
        except RemoteUnavailable as exc:
            failures.append(exc)

    thread = threading.Thread(target=connect)
    thread.start()
    wait_until(
        lambda: bool(proxy.links) and proxy.links[0].bytes_up >= sent - 1,
        message="the password packet (but its last byte) to reach the proxy",
    )
    proxy.reset(0)
    thread.join(10)
    assert [type(f) for f in failures] == [RemoteUnavailable]
    assert "during the login" in str(failures[0])
    assert proxy.accepted == 1


def test_an_sftp_session_that_never_starts_fails_within_the_operation_deadline(
    world: World, proxies: list[FaultProxy], tmp_path: Path
) -> None:
    probe = _started(proxies, _proxy(world))
    endpoint = _via(probe, world, tmp_path).endpoint
    transport = open_transport(endpoint, USER, PASSWORD)
    session = transport.open_session(timeout=5)
    # The proxy counts what it forwards before forwarding it, and the client has the answer
    # to its channel open: the count holds the login and that answer, in stream order.
    channel_open = probe.links[0].bytes_down
    session.close()
    transport.close()
    # The channel opens; the answer to the "sftp" subsystem request never comes.
    proxy = _started(proxies, _proxy(world, faults=Fault(silent_after=channel_open)))
    endpoint = _via(proxy, world, tmp_path, op_timeout=1.0).endpoint
    transport = open_transport(endpoint, USER, PASSWORD)
    try:
        started = time.monotonic()
        with pytest.raises(RemoteUnavailable, match="within 1 s"):  # the deadline was the cause
            open_sftp(transport, endpoint)
        assert time.monotonic() - started >= 1.0  # and it was waited for in full
    finally:
        transport.close()


# -- 3. no banner; refused connections (MaxStartups) ------------------------------------------


def test_a_server_that_never_sends_its_banner_fails_within_the_connect_timeout(
    world: World, proxies: list[FaultProxy], tmp_path: Path
) -> None:
    proxy = _started(proxies, _proxy(world, faults=Fault(blackhole=True)))
    started = time.monotonic()
    with pytest.raises(RemoteUnavailable, match=r"sent no SSH banner within 1\.\d s"):
        scan_site(_via(proxy, world, tmp_path, connect_timeout=1.0), NoCache(), SITE)
    assert time.monotonic() - started >= 1.0  # the whole connect timeout, never less
    assert proxy.accepted == 1  # the first connection is never retried


def test_a_first_connection_dropped_before_its_banner_is_opened_again(
    world: World, proxies: list[FaultProxy], tmp_path: Path
) -> None:
    # sshd past MaxStartups: the connection is closed right after accept, no banner.
    proxy = _started(proxies, _proxy(world, faults=on_connection(0, Fault(refuse="close"))))
    attempts = world.server.auth_attempts[USER]
    result = scan_site(_via(proxy, world, tmp_path), NoCache(), SITE)
    assert [i.to_json() for i in result.images] == world.clean_json(SITE)
    assert proxy.links[0].refused and not proxy.links[1].refused
    # One password attempt per connection that got through (a pool login may still be
    # finishing when the scan ends, so it can be one more than the scan used).
    tried = world.server.auth_attempts[USER] - attempts
    assert result.stats.connections <= tried <= sum(not link.refused for link in proxy.links)


def test_a_connection_dropped_during_the_key_exchange_is_opened_again(
    world: World, proxies: list[FaultProxy], tmp_path: Path
) -> None:
    # The banner (~25 bytes) gets through, then a RST in the middle of the key exchange.
    proxy = _started(proxies, _proxy(world, faults=on_connection(0, Fault(reset_after=40))))
    connector = _via(proxy, world, tmp_path)
    connector.connect().close()
    assert proxy.links[0].reset and proxy.accepted == 2


class _StallingClock:
    """The connect module's clock, jumping ``step`` seconds between two readings: what a
    machine stalled (or a VM suspended) during a handshake looks like from inside it."""

    def __init__(self, step: float) -> None:
        self.step = step
        self.jumped = 0.0

    def monotonic(self) -> float:
        self.jumped += self.step
        return time.monotonic() + self.jumped

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def test_a_drop_before_the_banner_is_told_from_silence_by_what_failed_not_by_the_clock(
    world: World, proxies: list[FaultProxy], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server closes the connection right after accept; however long the handshake
    # seemed to take, that is a drop (opened again, ServerBusy at the end), never "no banner".
    clock = _StallingClock(step=10.0)
    monkeypatch.setattr(connect_module, "time", clock)
    proxy = _started(proxies, _proxy(world, faults=refuse_after(0)))
    connector = _via(proxy, world, tmp_path, connect_timeout=1.0, drop_retry_delays=())
    with pytest.raises(ServerBusy, match=r"closed the connection before its SSH banner"):
        connector.connect()
    assert clock.jumped > 1.0  # the clock did jump past the connect timeout
    assert proxy.links[0].refused


def test_a_first_connection_dropped_every_time_is_a_clear_error_after_a_few_tries(
    world: World, proxies: list[FaultProxy], tmp_path: Path
) -> None:
    proxy = _started(proxies, _proxy(world, faults=refuse_after(0)))
    connector = _via(proxy, world, tmp_path, drop_retry_delays=(0.2, 0.4))
    with pytest.raises(
        ServerBusy, match=r"closed the connection before its SSH banner \(3 attempts"
    ):
        scan_site(connector, NoCache(), SITE)
    links = proxy.links
    assert len(links) == 3
    gaps = [b.opened - a.opened for a, b in itertools.pairwise(links)]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4  # backed off, never quicker than the delays


def test_refused_pool_connections_are_retried_staggered_then_the_pool_makes_do(
    world: World, proxies: list[FaultProxy], tmp_path: Path
) -> None:
    proxy = _started(proxies, _proxy(world, faults=refuse_after(2)))  # like MaxStartups
    connector = _via(proxy, world, tmp_path, drop_retry_delays=(0.3, 0.6))
    # The connection opens a dropped connection again itself; the pool does not add its own
    # retries on top (these would come 5 s later and show as more links).
    pool = ConnectionPool(connector, connector.connect(), grow_retry_delays=(5.0, 5.0))
    try:
        pool.grow(4)
        assert pool.get(1) is not None
        assert pool.get(2) is None and pool.get(3) is None
        assert pool.opened == 2
    finally:
        pool.close()
    links = proxy.links
    assert [link.refused for link in links] == [False, False, True, True, True]
    gaps = [b.opened - a.opened for a, b in itertools.pairwise(links[2:])]
    assert gaps[0] >= 0.3 and gaps[1] >= 0.6  # one attempt, then two later ones, backed off


def test_a_scan_completes_with_fewer_connections_when_more_are_refused(
    world: World, proxies: list[FaultProxy], tmp_path: Path
) -> None:
    proxy = _started(proxies, _proxy(world, faults=refuse_after(2), latency=0.01))
    result = scan_site(_via(proxy, world, tmp_path), NoCache(), SITE)
    assert [i.to_json() for i in result.images] == world.clean_json(SITE)
    assert result.stats.connections <= 2
    assert all(link.refused == (link.index >= 2) for link in proxy.links)


# -- 4. refused SFTP channels (MaxSessions) ---------------------------------------------------


def test_one_channel_per_connection_so_max_sessions_1_costs_nothing(
    world: World, tmp_path: Path
) -> None:
    key = world.server.host_key
    with (
        start_sftp_server(
            world.root, {USER: PASSWORD}, sites_root="/sites", max_sessions=1, host_key=key
        ) as server,
        # A little latency, so the scan lasts long enough for its pool to grow.
        FaultProxy((server.host, server.port), latency=0.02) as proxy,
    ):
        known = _known_hosts(server, proxy.port, tmp_path)
        result = scan_site(_connector(proxy.host, proxy.port, known), NoCache(), SITE)
    assert [i.to_json() for i in result.images] == world.clean_json(SITE)
    assert result.stats.connections >= 2  # a pool, each member its own SSH connection
    assert server.max_concurrent_channels == server.connections  # one channel each


def test_a_refused_sftp_channel_makes_the_pool_adapt(
    world: World, proxies: list[FaultProxy], tmp_path: Path
) -> None:
    with start_sftp_server(
        world.root,
        {USER: PASSWORD},
        sites_root="/sites",
        max_sessions=0,
        host_key=world.server.host_key,
    ) as no_sessions:
        routes = [(world.server.host, world.server.port), (no_sessions.host, no_sessions.port)]
        proxy = _started(proxies, FaultProxy(lambda i: routes[min(i, 1)]).start())
        result = scan_site(_via(proxy, world, tmp_path), NoCache(), SITE)
        assert [i.to_json() for i in result.images] == world.clean_json(SITE)
        assert result.stats.connections == 1
        # The second connection logged in and was refused its channel: not asked again.
        assert no_sessions.auth_attempts[USER] == 1
        everything_refused = _started(proxies, FaultProxy(routes[1]).start())
        with pytest.raises(ChannelRefused, match="refused an SFTP session"):
            scan_site(_via(everything_refused, world, tmp_path), NoCache(), SITE)


# -- 5. authentication failure ----------------------------------------------------------------


def test_a_wrong_password_is_one_attempt_and_nothing_else(
    world: World, proxies: list[FaultProxy], tmp_path: Path
) -> None:
    proxy = _started(proxies, _proxy(world))
    attempts = world.server.auth_attempts[USER]
    with pytest.raises(AuthFailed, match="wrong username or password"):
        scan_site(_via(proxy, world, tmp_path, password="wrong"), NoCache(), SITE)
    assert world.server.auth_attempts[USER] == attempts + 1
    assert proxy.accepted == 1


def test_a_login_refused_to_a_pool_connection_is_never_tried_again(
    world: World, proxies: list[FaultProxy], tmp_path: Path
) -> None:
    total = _bytes_down_of_first_connection(world, proxies, tmp_path)
    # Connection 1 reaches the real server; every later one a server where the password
    # has changed meanwhile.
    with start_sftp_server(
        world.root, {USER: "changed meanwhile"}, sites_root="/sites", host_key=world.server.host_key
    ) as changed:
        routes = [(world.server.host, world.server.port), (changed.host, changed.port)]
        proxy = _started(proxies, FaultProxy(lambda i: routes[min(i, 1)]).start())
        result = scan_site(_via(proxy, world, tmp_path), NoCache(), SITE)
        assert [i.to_json() for i in result.images] == world.clean_json(SITE)
        assert changed.auth_attempts[USER] == 1  # the pool asked once, then never again
        # Now the first connection is also reset mid-read: its replacement would need the
        # refused login, so the scan stops with that error rather than try it again.
        reset = _started(
            proxies,
            FaultProxy(
                lambda i: routes[min(i, 1)], faults=on_connection(0, Fault(reset_after=total // 2))
            ).start(),
        )
        with pytest.raises(AuthFailed):
            scan_site(_via(reset, world, tmp_path), NoCache(), SITE)
        assert changed.auth_attempts[USER] == 2  # one for this scan, for good


# -- 6. two users at once; the cap per server; cancelling ---------------------------------------


class _Recording(RecordingConnector):
    """Also remembers the user each connection logged in as (what the server accepted)."""

    def __init__(self, inner: SftpConnector) -> None:
        super().__init__(inner)
        self.logged_in_as: list[str] = []

    def connect(self) -> Any:
        conn = super().connect()
        self.logged_in_as.append(conn.inner._transport.get_username())
        return conn


def test_two_users_scanning_at_once_share_nothing_and_the_server_cap_holds(
    world: World, proxies: list[FaultProxy], tmp_path: Path
) -> None:
    slots = ServerSlots()
    proxy = _started(proxies, _proxy(world, latency=0.005))
    mine = _Recording(_via(proxy, world, tmp_path, max_connections=3, slots=slots))
    theirs = _Recording(
        _via(
            proxy,
            world,
            tmp_path,
            user=OTHER_USER,
            password=OTHER_PASSWORD,
            max_connections=3,
            slots=slots,
        )
    )
    attempts = dict(world.server.auth_attempts)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(scan_site, mine, NoCache(), SITE)
        second = pool.submit(scan_site, theirs, NoCache(), OTHER_SITE)
        mine_result, their_result = first.result(), second.result()
    assert [i.to_json() for i in mine_result.images] == world.clean_json(SITE)
    assert [i.to_json() for i in their_result.images] == world.clean_json(OTHER_SITE)
    # Every connection a user's scan opened is logged in as that user ...
    assert set(mine.logged_in_as) == {USER}
    assert set(theirs.logged_in_as) == {OTHER_USER}
    assert not {id(c) for c in mine.opened} & {id(c) for c in theirs.opened}
    # ... and each login attempt was one of them (none failed, none used the other's password).
    assert world.server.auth_attempts[USER] - attempts.get(USER, 0) == len(mine.opened)
    assert world.server.auth_attempts[OTHER_USER] - attempts.get(OTHER_USER, 0) == len(
        theirs.opened
    )
    server_id = mine.inner.endpoint.server_id
    assert slots.peak(server_id) == 3  # the cap held across both users, and was reached
    assert slots.in_use(server_id) == 0


class _WatchedSlots(ServerSlots):
    """The cap, counting the connections waiting for a slot of it."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = 0
        self._count = threading.Lock()

    def acquire(self, server: str, size: int, wait: float) -> Slot:
        with self._count:
            self.waiting += 1
        try:
            return super().acquire(server, size, wait)
        finally:
            with self._count:
                self.waiting -= 1


def test_the_server_cap_makes_a_scan_wait_for_a_free_connection_not_fail(
    world: World, proxies: list[FaultProxy], tmp_path: Path
) -> None:
    slots = _WatchedSlots()
    proxy = _started(proxies, _proxy(world))
    capped: dict[str, Any] = {"max_connections": 1, "slots": slots}
    held = _via(
        proxy, world, tmp_path, user=OTHER_USER, password=OTHER_PASSWORD, **capped
    ).connect()
    attempts = world.server.auth_attempts[USER]
    impatient = _via(proxy, world, tmp_path, slot_wait=0.3, **capped)
    with pytest.raises(RemoteUnavailable, match="connections this tool may open .* are in use"):
        scan_site(impatient, NoCache(), SITE)
    assert world.server.auth_attempts[USER] == attempts  # no login while waiting
    patient = _via(proxy, world, tmp_path, slot_wait=30, **capped)
    with ThreadPoolExecutor(1) as executor:
        scan = executor.submit(scan_site, patient, NoCache(), SITE)
        wait_until(lambda: slots.waiting == 1, message="the scan to wait for a slot")
        held.close()  # the other user's connection ends while the scan waits
        result = scan.result()
    assert [i.to_json() for i in result.images] == world.clean_json(SITE)
    assert result.stats.connections == 1
    assert slots.peak(impatient.endpoint.server_id) == 1


def test_a_cancelled_job_closes_its_connections(
    world: World, proxies: list[FaultProxy], tmp_path: Path
) -> None:
    proxy = _started(proxies, _proxy(world, latency=0.01))
    connector = _via(proxy, world, tmp_path)
    jobs = JobManager(max_jobs=1)
    ids: list[str] = []

    def run(job: Job) -> None:
        def progress(p: Any) -> None:
            job.progress(p)
            if p.done == 40:
                jobs.cancel(ids[0], "owner")  # the user presses Cancel mid-scan

        scan_site(connector, NoCache(), SITE, on_progress=progress, cancelled=job.cancelled)

    try:
        job = jobs.start("owner", SITE, run, checks=False)
        ids.append(job.id)
        wait_until(job.ended, message="the cancelled job to end")
        assert job.state == "cancelled" and job.result is None
        wait_until(lambda: proxy.open_links == 0, message="the job's connections to close")
        assert all(link.client_closed for link in proxy.links)
        assert connector.slots.in_use(connector.endpoint.server_id) == 0
    finally:
        jobs.shutdown()


def test_a_cancelled_scan_raises_cancelled(
    world: World, proxies: list[FaultProxy], tmp_path: Path
) -> None:
    proxy = _started(proxies, _proxy(world))
    with pytest.raises(Cancelled):
        scan_site(_via(proxy, world, tmp_path), NoCache(), SITE, cancelled=lambda: True)
    wait_until(lambda: proxy.open_links == 0, message="the scan's connections to close")


# -- 10. host keys ----------------------------------------------------------------------------


def test_a_host_key_that_changes_between_two_connects_gets_no_password(
    world: World, proxies: list[FaultProxy], tmp_path: Path
) -> None:
    with start_sftp_server(world.root, {USER: PASSWORD}, sites_root="/sites") as impostor:
        real, fake = (world.server.host, world.server.port), (impostor.host, impostor.port)
        # Connections 0 and 2 reach the real server, every other one the impostor.
        proxy = _started(proxies, FaultProxy(lambda i: real if i in (0, 2) else fake).start())
        connector = _via(proxy, world, tmp_path)
        connector.connect().close()
        with pytest.raises(HostKeyRejected, match="CHANGED"):
            connector.connect()
        # A scan whose pool meets the changed key keeps its verified connection, asks no more.
        result = scan_site(connector, NoCache(), SITE)
        assert [i.to_json() for i in result.images] == world.clean_json(SITE)
        assert sum(impostor.auth_attempts.values()) == 0  # the password never reached it
        assert impostor.connections == 2  # one per refusal: never tried again


def test_trust_on_first_use_records_the_key_only_after_a_successful_login(
    world: World, proxies: list[FaultProxy], tmp_path: Path
) -> None:
    with start_sftp_server(world.root, {USER: PASSWORD}, sites_root="/sites") as impostor:
        target = {"to": (world.server.host, world.server.port)}
        proxy = _started(proxies, FaultProxy(lambda i: target["to"]).start())
        known = tmp_path / "learnt" / "known_hosts"
        known.parent.mkdir()
        other_line = f"[192.0.2.1]:22 {impostor.host_key_line.split(' ', 1)[1]}\n"
        known.write_text(other_line)
        known.chmod(0o644)

        def connector(password: str) -> SftpConnector:
            return _connector(
                proxy.host, proxy.port, known, password=password, trust_on_first_use=True
            )

        with pytest.raises(AuthFailed):
            connector("wrong").connect()
        assert known.read_text() == other_line  # a failed login records nothing
        connector(PASSWORD).connect().close()
        key = world.server.host_key_line.split(" ", 1)[1]
        assert known.read_text() == other_line + f"[127.0.0.1]:{proxy.port} {key}\n"
        assert stat.S_IMODE(known.stat().st_mode) == 0o600
        assert not [p for p in known.parent.iterdir() if p.name != "known_hosts"]  # no temp
        connector(PASSWORD).connect().close()  # now checked like a provisioned key
        target["to"] = (impostor.host, impostor.port)
        with pytest.raises(HostKeyRejected, match="CHANGED"):
            connector(PASSWORD).connect()
        assert sum(impostor.auth_attempts.values()) == 0
        assert known.read_text() == other_line + f"[127.0.0.1]:{proxy.port} {key}\n"


def test_without_trust_on_first_use_an_unknown_key_gets_no_password(
    world: World, proxies: list[FaultProxy], tmp_path: Path
) -> None:
    proxy = _started(proxies, _proxy(world))
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    attempts = world.server.auth_attempts[USER]
    with pytest.raises(HostKeyRejected, match="unknown"):
        _connector(proxy.host, proxy.port, empty).connect()
    with pytest.raises(HostKeyRejected, match="cannot read"):
        _connector(proxy.host, proxy.port, tmp_path / "missing").connect()
    assert world.server.auth_attempts[USER] == attempts
    assert empty.read_text() == ""
