"""Kept connections: reused between requests, replaced once when dead, closed at logout."""

from __future__ import annotations

from typing import Any

import pytest
from qc_tool.errors import AuthFailed, RemoteUnavailable
from qc_tool.services.held_connections import HeldConnections


class FakeConn:
    def __init__(self, n: int) -> None:
        self.n, self.closed = n, False

    def close(self) -> None:
        self.closed = True


class FakeConnector:
    server_id = "fake://"

    def __init__(self, fail_login: bool = False) -> None:
        self.made: list[FakeConn] = []
        self.fail_login = fail_login

    def connect(self) -> Any:
        if self.fail_login:
            self.made.append(FakeConn(-1))
            raise AuthFailed("wrong password")
        conn = FakeConn(len(self.made))
        self.made.append(conn)
        return conn


def test_one_connection_serves_every_request_of_a_login() -> None:
    held, connector = HeldConnections(), FakeConnector()
    assert [held.run("a", connector, lambda c: c.n) for _ in range(3)] == [0, 0, 0]
    assert held.run("b", connector, lambda c: c.n) == 1  # another login, its own
    assert held.open_count() == 2


def test_a_connection_that_died_while_kept_is_replaced_once() -> None:
    held, connector = HeldConnections(), FakeConnector()
    held.run("a", connector, lambda c: c.n)

    def work(conn: Any) -> int:
        if conn.n == 0:
            raise RemoteUnavailable("connection lost")
        return int(conn.n)

    assert held.run("a", connector, work) == 1
    assert connector.made[0].closed


def test_a_fresh_connection_that_fails_is_the_callers_error() -> None:
    held, connector = HeldConnections(), FakeConnector()

    def broken(conn: Any) -> int:
        raise RemoteUnavailable("server went away")

    with pytest.raises(RemoteUnavailable):
        held.run("a", connector, broken)
    assert len(connector.made) == 1 and connector.made[0].closed


def test_a_refused_login_is_never_retried() -> None:
    held, connector = HeldConnections(), FakeConnector(fail_login=True)
    with pytest.raises(AuthFailed):
        held.run("a", connector, lambda c: c.n)
    assert len(connector.made) == 1


def test_logout_and_idle_time_close_the_connection() -> None:
    held, connector = HeldConnections(idle_seconds=0.0), FakeConnector()
    held.run("a", connector, lambda c: c.n)
    held.forget("a")
    assert connector.made[0].closed and held.open_count() == 0
    held.run("b", connector, lambda c: c.n)
    held.run("c", connector, lambda c: c.n)  # b has been idle longer than 0 s: closed
    assert connector.made[1].closed and not connector.made[2].closed
