"""Pool sizing and the sequential fallback, with fake connections (no network)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from fakes import FakeConnection, FakeConnector
from qc_tool.domain.exif_reader import ExifBlock
from qc_tool.domain.models import RemoteFile
from qc_tool.errors import AuthFailed, Cancelled, RemoteUnavailable, ServerBusy
from qc_tool.services.ports import HeaderCallback, NoCache
from qc_tool.services.scan.pool import pool_size
from qc_tool.services.scan.site_analysis_service import ScanOptions, scan_site


@pytest.mark.parametrize(
    ("images", "workers"), [(5, 1), (10, 1), (11, 2), (50, 2), (150, 3), (200, 4), (513, 4)]
)
def test_pool_size_follows_the_design(images: int, workers: int) -> None:
    assert pool_size(images, cap=4) == workers


def test_pool_size_is_capped_by_the_setting() -> None:
    assert pool_size(513, cap=2) == 2
    assert pool_size(513, cap=1) == 1


def test_pool_that_cannot_grow_falls_back_to_sequential(caplog: pytest.LogCaptureFixture) -> None:
    connector = FakeConnector({"big": 513, "small": 5}, working=1)
    with caplog.at_level(logging.WARNING):
        result = scan_site(connector, NoCache(), "s")
    assert len(result.images) == 518
    assert result.stats.connections == 1
    assert len(connector.connections[0].read) == 518
    # Whether a second login was tried at all depends on how fast the first connection read
    # (none is tried once the open ones can finish the rest); a failure said is a real one.
    assert "could not open" not in caplog.text or connector.attempts > 1


def test_small_folders_use_one_connection_and_big_ones_the_pool() -> None:
    connector = FakeConnector({"small": 5}, working=4)
    result = scan_site(connector, NoCache(), "s")
    # With nothing cached a second connection is opened speculatively, and left unused here.
    assert result.stats.connections == 1
    assert [len(c.read) for c in connector.connections] in ([5], [5, 0])
    connector = FakeConnector({"big": 150}, working=4)
    scan_site(connector, NoCache(), "s")
    # 150 images: min(4, max(2, 150 // 50)) = 3 workers; fakes read instantly, so the
    # later logins may be skipped as not worth it (see the next test).
    assert 1 <= connector.attempts <= 3
    assert sum(len(c.read) for c in connector.connections) == 150
    assert len({p for c in connector.connections for p in c.read}) == 150  # each image once


def test_a_cancelled_scan_stops_reading_and_closes_its_connections() -> None:
    connector = FakeConnector({"big": 513}, working=4)
    seen: list[int] = []
    with pytest.raises(Cancelled):
        scan_site(
            connector,
            NoCache(),
            "s",
            on_progress=lambda p: seen.append(p.done),
            cancelled=lambda: len(seen) >= 40,
        )
    assert sum(len(c.read) for c in connector.connections) < 60
    assert all(c.closed for c in connector.connections)


def test_a_pool_that_fails_while_growing_early_still_finishes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The speculative second connection fails before the pool's real size is known."""
    for _ in range(20):  # the opener thread races the listing; try both orders
        connector = FakeConnector({"big": 513}, working=1)
        result = scan_site(connector, NoCache(), "s")
        assert len(result.images) == 513 and result.stats.connections == 1


def test_the_pool_makes_no_login_once_nothing_is_left_to_read() -> None:
    from qc_tool.services.scan.pool import ConnectionPool

    connector = FakeConnector({"big": 513}, working=4)
    first = connector.connect()
    pool = ConnectionPool(connector, first)
    pool.grow(4, needed=lambda: False)
    assert pool.get(1) is None and pool.get(3) is None
    pool.close()
    assert connector.attempts == 1
    wanted = ConnectionPool(connector, first)
    wanted.grow(3, needed=lambda: True)
    assert wanted.get(2) is not None
    wanted.close()
    assert connector.attempts == 3


# -- connection failures while reading: retried on a fresh connection, bounded -----------------


class FailingConnection(FakeConnection):
    """Reports ``report`` images, takes ``in_flight`` more into its 'pipeline', then fails."""

    def __init__(self, folders: dict[str, int], report: int | None, in_flight: int = 20) -> None:
        super().__init__(folders)
        self.report, self.in_flight = report, in_flight
        self.pulled: list[str] = []

    def read_headers(
        self,
        site: str,
        files: Iterable[RemoteFile],
        on_result: HeaderCallback,
        *,
        pipelined: bool = True,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> None:
        pending: list[RemoteFile] = []
        for f in files:
            self.pulled.append(f.path)
            pending.append(f)
            if len(pending) <= self.in_flight:
                continue  # still filling the pipeline
            if self.report is not None and len(self.read) >= self.report:
                raise RemoteUnavailable("the SFTP server closed the connection")
            done = pending.pop(0)
            self.read.append(done.path)
            on_result(done, ExifBlock(None, False, 10), None)
        for done in pending:
            self.read.append(done.path)
            on_result(done, ExifBlock(None, False, 10), None)


class FlakyConnector:
    """Connections that fail after ``report`` images (None: never), or refuse the login."""

    def __init__(self, folders: dict[str, int], plan: list[int | None | Exception]) -> None:
        self.folders, self.plan, self.attempts = folders, plan, 0
        self.connections: list[FailingConnection] = []

    @property
    def server_id(self) -> str:
        return "fake://"

    def connect(self) -> Any:
        step = self.plan[min(self.attempts, len(self.plan) - 1)]
        self.attempts += 1
        if isinstance(step, Exception):
            raise step
        conn = FailingConnection(self.folders, step)
        self.connections.append(conn)
        return conn


def test_a_failed_connection_gives_back_only_its_unfinished_images(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The first connection fails after 100 images with 21 more dealt to it.
    connector = FlakyConnector({"big": 513}, [100, None])
    seen: list[str] = []
    with caplog.at_level(logging.WARNING):
        result = scan_site(
            connector,
            NoCache(),
            "s",
            options=ScanOptions(max_connections=1),
            on_progress=lambda p: seen.append(p.image.path if p.image else ""),
        )
    assert len(result.images) == 513 and sorted(seen) == sorted(i.path for i in result.images)
    assert "21 unfinished images go back to the queue" in caplog.text
    reported = [p for c in connector.connections for p in c.read]
    pulled = [p for c in connector.connections for p in c.pulled]
    assert sorted(reported) == sorted(set(reported))  # each image reported once
    assert len(pulled) == 513 + 21  # only the unfinished ones were dealt twice
    assert all(c.closed for c in connector.connections)


def test_failures_beyond_the_retries_fail_the_pass_with_what_was_not_read() -> None:
    connector = FlakyConnector({"big": 513}, [30])  # every connection fails after 30
    with pytest.raises(RemoteUnavailable, match=r"failed \d+ times .* images were not read"):
        scan_site(connector, NoCache(), "s")
    assert connector.attempts <= 1 + 3 + 2  # the first, the pool, two replacements
    assert all(c.closed for c in connector.connections)


def test_a_refused_login_is_never_tried_again_by_the_pool_or_the_retries() -> None:
    refused = AuthFailed("wrong username or password")
    connector = FlakyConnector({"big": 513}, [100, refused])
    with pytest.raises(AuthFailed):
        scan_site(connector, NoCache(), "s")
    assert connector.attempts == 2  # the first login, and exactly one refused


def test_the_dealer_puts_unfinished_images_back_in_order_at_the_front() -> None:
    from qc_tool.services.scan.dealing import Dealer

    files = [RemoteFile(f"f/{i}.JPG", 1, 1) for i in range(6)]
    dealer = Dealer([(2, files)])
    dealt = dealer.files_for(0, lambda: False)
    first = [next(dealt) for _ in range(4)]
    report = dealer.reporter(0, lambda f, v, e: None)
    report(first[1], None, None)  # finished: stays finished
    assert dealer.take_back(0) == 3
    again = list(dealer.files_for(1, lambda: False))
    assert [f.path for f in again] == ["f/0.JPG", "f/2.JPG", "f/3.JPG", "f/4.JPG", "f/5.JPG"]


def test_a_pool_connection_the_server_was_too_busy_for_is_not_retried_on_top() -> None:
    from qc_tool.services.scan.pool import ConnectionPool

    # The adapter has already opened a connection the server kept dropping before its banner
    # again itself.
    busy = ServerBusy("closed the connection before its SSH banner (4 attempts: ...)")
    connector = FakeConnector({"big": 513}, working=1, failure=busy)
    pool = ConnectionPool(connector, connector.connect(), grow_retry_delays=(0.01, 0.01))
    try:
        pool.grow(2)
        assert pool.get(1) is None
    finally:
        pool.close()
    assert connector.attempts == 2  # the first, and one for the pool: no retries of its own
    flaky = FakeConnector({"big": 513}, working=0)
    other = ConnectionPool(flaky, FakeConnection({}), grow_retry_delays=(0.01, 0.01))
    try:
        other.grow(2)
        assert other.get(1) is None
    finally:
        other.close()
    assert flaky.attempts == 3  # other failures to open are still tried again
