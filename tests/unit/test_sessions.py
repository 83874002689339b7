"""The session store's limits, the login's connector after a refusal, and the sweeper thread."""

from __future__ import annotations

import threading

import pytest
from fakes import FakeConnector
from qc_tool.errors import AuthFailed, NotLoggedIn
from qc_tool.services.logins.sessions import LoginConnector, SessionStore
from qc_tool.services.logins.sweeper import Sweeper, sweep_interval
from waiting import wait_until

HOUR = 3600.0


def store_at(now: list[float], ended: list[str]) -> SessionStore:
    return SessionStore(
        idle_seconds=HOUR, max_seconds=12 * HOUR, clock=lambda: now[0], on_expire=ended.append
    )


def test_a_login_in_use_lasts_until_the_absolute_limit() -> None:
    now, ended = [0.0], []
    store = store_at(now, ended)
    sid = store.create("ana", "pw")
    creds = store.get(sid)
    while now[0] < 12 * HOUR - 0.5 * HOUR:
        now[0] += 0.5 * HOUR
        assert store.get(sid) is creds
    now[0] += HOUR  # used half an hour ago, but 12.5 hours old
    assert store.expire() == 1
    assert ended == [sid] and creds is not None and creds.password == ""
    assert store.get(sid) is None


def test_an_unused_login_ends_at_the_idle_limit_when_swept() -> None:
    now, ended = [0.0], []
    store = store_at(now, ended)
    kept, left = store.create("ana", "pw"), store.create("ben", "pw")
    now[0] = 0.9 * HOUR
    store.get(kept)
    now[0] = HOUR + 1
    assert store.expire() == 1
    assert ended == [left]


def test_a_refused_password_ends_its_login_and_only_that_one() -> None:
    now, ended = [0.0], []
    store = store_at(now, ended)
    sid, other = store.create("ana", "pw"), store.create("ana", "pw")
    creds = store.get(sid)
    assert creds is not None
    store.refused(creds)
    assert ended == [sid] and creds.password == ""
    assert store.get(sid) is None and store.get(other) is not None


def test_a_logins_connector_never_tries_again_after_the_first_refusal() -> None:
    store = store_at([0.0], [])
    creds = store.get(store.create("ana", "pw"))
    assert creds is not None
    server = FakeConnector(working=0, failure=AuthFailed("password changed on the server"))
    connectors = [LoginConnector(server, creds, store.refused) for _ in range(3)]  # 3 requests
    with pytest.raises(AuthFailed):
        connectors[0].connect()
    for connector in connectors:
        with pytest.raises(NotLoggedIn):
            connector.connect()
    assert server.attempts == 1 and len(store) == 0


def test_the_sweeper_runs_its_tasks_again_and_again_until_stopped() -> None:
    runs: list[str] = []

    def broken() -> None:
        runs.append("broken")
        raise RuntimeError("a bug in one task")

    sweeper = Sweeper([broken, lambda: runs.append("ok")], interval=0.01, name="test-sweeper")
    sweeper.start()
    # The failing task did not stop the others.
    wait_until(lambda: runs.count("ok") >= 3, message="the other task to run three times")
    sweeper.stop()
    after = len(runs)
    assert not any(t.name == "test-sweeper" and t.is_alive() for t in threading.enumerate())
    assert len(runs) == after


def test_the_sweep_interval_is_a_quarter_of_the_shortest_limit_and_at_most_10_s() -> None:
    assert sweep_interval(120.0, 8 * HOUR) == 10.0
    assert sweep_interval(1.0, 8 * HOUR) == 0.25
