"""Kept connections: reused between requests, replaced once when dead, closed when idle or at logout."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fakes import FakeClock, FakeConnector
from qc_tool.errors import AuthFailed, NotLoggedIn, RemoteUnavailable, UnreadableImage
from qc_tool.services.logins.held_connections import HeldConnections


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
    assert connector.connections[0].closed


def test_a_fresh_connection_that_fails_is_the_callers_error() -> None:
    held, connector = HeldConnections(), FakeConnector()

    def broken(conn: Any) -> int:
        raise RemoteUnavailable("server went away")

    with pytest.raises(RemoteUnavailable):
        held.run("a", connector, broken)
    assert len(connector.connections) == 1 and connector.connections[0].closed


def test_a_refused_login_is_never_retried() -> None:
    held = HeldConnections()
    connector = FakeConnector(working=0, failure=AuthFailed("wrong password"))
    with pytest.raises(AuthFailed):
        held.run("a", connector, lambda c: c.n)
    assert connector.attempts == 1


def test_logout_closes_the_connection_and_a_request_queued_behind_it_stops() -> None:
    held, connector = HeldConnections(), FakeConnector()
    held.run("a", connector, lambda c: c.n)
    held.forget("a")
    assert connector.connections[0].closed and held.open_count() == 0


def test_a_refusal_that_ends_the_login_inside_a_request_does_not_deadlock() -> None:
    held = HeldConnections()

    class EndsTheLogin(FakeConnector):
        def connect(self) -> Any:
            held.forget("a")  # what SessionStore.refused does, through QCContext.forget_login
            raise AuthFailed("password changed on the server")

    failed: list[BaseException] = []

    def request() -> None:
        try:
            held.run("a", EndsTheLogin(), lambda c: c.n)
        except AuthFailed as exc:
            failed.append(exc)

    thread = threading.Thread(target=request, daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive() and len(failed) == 1
    assert held.open_count() == 0


def test_a_request_that_had_its_turn_after_the_login_ended_does_not_connect() -> None:
    held, connector = HeldConnections(), FakeConnector()
    held.run("a", connector, lambda c: c.n)
    with held._held["a"].lock:  # a request of the login is in progress ...
        queued = held._held["a"]  # ... and another one waits for its turn
        held.forget("a")  # logout, on the same thread here (the lock is re-entrant)
    assert queued.gone
    with pytest.raises(NotLoggedIn):
        held._run_held(queued, connector, lambda c: c.n)
    assert len(connector.connections) == 1


def test_each_use_hands_the_connection_back_for_the_next_thread() -> None:
    held, connector = HeldConnections(), FakeConnector()
    held.run("a", connector, lambda c: c.n)

    def broken(conn: Any) -> int:
        raise UnreadableImage("not a photo")

    with pytest.raises(UnreadableImage):  # a photo's own fault: the connection stays
        held.run("a", connector, broken)
    assert connector.connections[0].releases == 2 and not connector.connections[0].closed


def test_a_connection_idle_for_the_limit_is_closed_and_a_busy_one_is_not() -> None:
    clock = FakeClock(0.0)
    held, connector = HeldConnections(idle_seconds=120, clock=clock), FakeConnector()
    held.run("a", connector, lambda c: c.n)
    clock.now = 119
    held.run("b", connector, lambda c: c.n)
    assert held.close_idle() == 0
    clock.now = 120
    assert held.close_idle() == 1  # "a"; "b" was used a second later
    assert connector.connections[0].closed and not connector.connections[1].closed
    assert held.run("a", connector, lambda c: c.n) == 2  # a new click opens a new one

    inside, leave = threading.Event(), threading.Event()

    def busy(conn: Any) -> int:
        inside.set()
        leave.wait(10)
        return int(conn.n)

    user = threading.Thread(target=held.run, args=("b", connector, busy))
    user.start()
    assert inside.wait(10)
    clock.now = 1000
    assert held.close_idle() == 1  # "a"; "b" is in use: skipped, not waited for
    assert user.is_alive()  # close_idle returned while "b" was still in use
    leave.set()
    user.join(10)
    assert not connector.connections[1].closed


def test_a_job_borrows_the_kept_connection_and_gives_it_back() -> None:
    held, connector = HeldConnections(), FakeConnector()
    held.run("sid", connector, lambda conn: None)  # a preview left one kept
    lent = held.lend("sid", connector)
    first = lent.connect()
    other = lent.connect()  # a pool's second connection is a fresh one
    assert connector.attempts == 2
    other.close()
    first.close()
    assert connector.connections[1].closed
    assert not connector.connections[0].closed
    again = held.lend("sid", connector).connect()  # the next QC: no login at all
    again.close()
    assert connector.attempts == 2
    assert held.open_count() == 1


def test_each_pass_of_a_job_borrows_it_in_turn() -> None:
    held, connector = HeldConnections(), FakeConnector()
    held.run("sid", connector, lambda conn: None)
    lent = held.lend("sid", connector)
    lent.connect().close()  # the GPS pass
    lent.connect().close()  # the check pass takes it again
    assert connector.attempts == 1
    assert held.open_count() == 1


def test_a_job_of_a_login_with_nothing_kept_keeps_nothing() -> None:
    """Server slots: a job's own connections close with it, or every user would hold one."""
    held, connector = HeldConnections(), FakeConnector()
    conn = held.lend("sid", connector).connect()
    conn.close()
    assert connector.attempts == 1 and connector.connections[0].closed
    assert held.open_count() == 0


def test_a_lent_connection_that_failed_is_closed_not_kept() -> None:
    held, connector = HeldConnections(), FakeConnector({"F": 3})
    held.run("sid", connector, lambda c: None)
    conn = held.lend("sid", connector).connect()

    def dies(*args: Any, **kwargs: Any) -> None:
        raise RemoteUnavailable("connection reset")

    connector.connections[0].read_headers = dies  # type: ignore[method-assign]
    with pytest.raises(RemoteUnavailable):
        conn.read_headers("s", [], lambda *a: None)
    conn.close()
    assert connector.connections[0].closed
    assert held.open_count() == 0


def test_a_read_stopped_by_cancel_is_not_kept() -> None:
    held, connector = HeldConnections(), FakeConnector({"F": 3})
    held.run("sid", connector, lambda c: None)
    conn = held.lend("sid", connector).connect()
    conn.read_headers("s", [], lambda *a: None, cancelled=lambda: True)
    conn.close()
    assert connector.connections[0].closed
    assert held.open_count() == 0


def test_a_connection_given_back_after_logout_is_closed() -> None:
    held, connector = HeldConnections(), FakeConnector()
    held.run("sid", connector, lambda c: None)
    conn = held.lend("sid", connector).connect()
    held.forget("sid")
    conn.close()
    assert connector.connections[0].closed
    assert held.open_count() == 0


def test_a_preview_meanwhile_keeps_its_own_and_the_lent_one_closes() -> None:
    held, connector = HeldConnections(), FakeConnector()
    held.run("sid", connector, lambda c: None)
    conn = held.lend("sid", connector).connect()
    held.run("sid", connector, lambda c: None)  # a preview during the QC opens its own
    conn.close()
    assert connector.connections[0].closed
    assert not connector.connections[1].closed
    assert held.open_count() == 1
