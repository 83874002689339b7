"""When a login ends: idle and absolute limits, by the sweeper without a request, at the first refusal.

Time that a test needs to pass is a clock it moves (the session store's, the kept connections',
and the one itsdangerous dates cookie signatures with); the sweeper thread runs for real, and
the tests wait for what it must do.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import itsdangerous.timed
import pytest
from fakes import FakeClock
from flask import Flask
from flask.testing import FlaskClient
from qc_tool.adapters.sftp.limits import SERVER_SLOTS
from qc_tool.demo.sftp_server import SftpServerHandle
from waiting import wait_until

from web.support import (
    OTHER_PASSWORD,
    OTHER_USERNAME,
    MakeApp,
    api_token,
    context,
    log_in,
    sid_of,
    wait_for_job,
)

THIRD_USERNAME, THIRD_PASSWORD = "third", "third-password-3"
JSON = {"Accept": "application/json"}


@pytest.fixture
def server(
    make_sftp_server: Callable[..., SftpServerHandle],
    sftp_root: Path,
    sites_dir: Path,
    sftp_username: str,
    sftp_password: str,
) -> SftpServerHandle:
    """The in-process SFTP server with three users."""
    users = {
        sftp_username: sftp_password,
        OTHER_USERNAME: OTHER_PASSWORD,
        THIRD_USERNAME: THIRD_PASSWORD,
    }
    return make_sftp_server(sftp_root, users, sites_root="/sites")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The test's wall clock, also for the signed cookie's and CSRF token's timestamps."""
    fake = FakeClock(time.time())
    monkeypatch.setattr(itsdangerous.timed, "time", SimpleNamespace(time=fake))
    return fake


def logged_in_client(app: Flask, username: str, password: str) -> FlaskClient:
    client = app.test_client()
    response = log_in(client, username, password)
    assert response.status_code == 303, response.get_data(as_text=True)
    return client


def finished_job(client: FlaskClient, site: str = "SITE-A") -> str:
    response = client.post(f"/api/sites/{site}/qc", headers={"X-CSRFToken": api_token(client)})
    job_id: str = response.get_json()["job"]
    assert wait_for_job(client, job_id)["state"] == "done"
    return job_id


def preview(client: FlaskClient, job_id: str, path: str, size: str = "large") -> int:
    url = f"/sites/SITE-A/qc/{job_id}/preview?path={path}&size={size}"
    return client.get(url, headers=JSON).status_code


# -- the lifetime: idle, absolute ---------------------------------------------------------------


def test_an_active_login_outlives_the_idle_limit_until_the_absolute_one(
    make_app: MakeApp, clock: FakeClock, sftp_username: str, sftp_password: str
) -> None:
    app = make_app(QC_SESSION_HOURS=1, QC_SESSION_MAX_HOURS=12)
    store = context(app).sessions
    store.clock = clock
    client = logged_in_client(app, sftp_username, sftp_password)
    creds = store.get(sid_of(app, client))
    assert creds is not None
    for step in range(14):  # a click every 50 minutes: 11.7 hours, far past the 1 h idle limit
        clock.advance(50 * 60)
        assert client.get("/api/jobs/none").status_code == 404, f"logged out at step {step}"
    clock.advance(50 * 60)  # 12.5 hours since the login: that is the most a login lasts
    assert client.get("/api/jobs/none").status_code == 401
    assert creds.password == ""


def test_an_abandoned_login_is_ended_by_the_sweeper_without_a_request(
    make_app: MakeApp, clock: FakeClock, sftp_username: str, sftp_password: str
) -> None:
    # An idle limit of 0.72 s sweeps every 0.18 s; the store's clock only moves when told.
    app = make_app(QC_SESSION_HOURS=0.0002)
    ctx = context(app)
    ctx.sessions.clock = clock
    client = logged_in_client(app, sftp_username, sftp_password)
    sid = sid_of(app, client)
    creds = ctx.sessions.get(sid)
    assert creds is not None
    job_id = finished_job(client)
    assert preview(client, job_id, "Antenna A/DJI_0001.JPG") == 200
    assert ctx.held.open_count() == 1  # the login's kept connection, holding a server slot
    # A second QC waits for the site (another QC of it holds the lock): still running.
    key = ctx.site_lock_key(creds, "SITE-A")
    assert ctx.site_locks.acquire(key, lambda: False)
    try:
        waiting = client.post("/api/sites/SITE-A/qc", headers={"X-CSRFToken": api_token(client)})
        job = ctx.jobs.get(waiting.get_json()["job"], sid)
        wait_until(lambda: job.waiting is not None)  # past its own look-up of the login
        clock.advance(3600)  # the user went away: no request from now on
        wait_until(lambda: creds.password == "" and ctx.held.open_count() == 0)
        wait_until(job.ended)
    finally:
        ctx.site_locks.release(key)
    assert job.cancelled() and job.state == "cancelled"
    assert SERVER_SLOTS.in_use(ctx.endpoint.server_id) == 0
    assert client.get("/api/jobs/none").status_code == 401


# -- kept connections and the server's cap ------------------------------------------------------


def test_idle_preview_connections_give_their_slots_back_so_a_third_user_can_log_in(
    make_app: MakeApp, sftp_username: str, sftp_password: str
) -> None:
    # Kept 1 s after their last use, swept every 0.25 s; the connections' idle time passes
    # only when the test moves their clock.
    app = make_app(QC_MAX_SERVER_CONNECTIONS=2, QC_PREVIEW_IDLE_S=1)
    ctx = context(app)
    now = [0.0]
    ctx.held.clock = lambda: now[0]
    for username, password in ((sftp_username, sftp_password), (OTHER_USERNAME, OTHER_PASSWORD)):
        client = logged_in_client(app, username, password)
        assert preview(client, finished_job(client), "Antenna A/DJI_0001.JPG") == 200
    # Two users opened one preview each: the cap is full of kept connections.
    assert ctx.held.open_count() == 2
    assert SERVER_SLOTS.in_use(ctx.endpoint.server_id) == 2
    now[0] += 1  # neither user clicks again
    wait_until(lambda: ctx.held.open_count() == 0)
    assert SERVER_SLOTS.in_use(ctx.endpoint.server_id) == 0
    logged_in_client(app, THIRD_USERNAME, THIRD_PASSWORD)


# -- a password changed on the server: one refused attempt, then the login is over ---------------


def test_a_password_changed_on_the_server_costs_one_attempt_when_a_job_meets_it(
    app: Flask, logged_in: FlaskClient, server: SftpServerHandle, sftp_username: str
) -> None:
    ctx = context(app)
    sid = sid_of(app, logged_in)
    token = api_token(logged_in)
    server.set_password(sftp_username, "changed-by-the-administrator")
    attempts = server.auth_attempts[sftp_username]
    started = logged_in.post("/api/sites/SITE-A/qc", headers={"X-CSRFToken": token})
    job = ctx.jobs.get(started.get_json()["job"], sid)
    wait_until(job.ended)
    assert job.error is not None and job.result is None
    # The login ended with that refusal: the next requests are 401 without a server attempt.
    assert logged_in.get("/api/sites").status_code == 401
    assert logged_in.get("/").status_code == 302
    assert logged_in.get(f"/api/jobs/{job.id}").status_code == 401
    assert server.auth_attempts[sftp_username] == attempts + 1
    assert len(ctx.sessions) == 0


def test_previews_at_once_after_a_password_change_cost_one_attempt(
    app: Flask, logged_in: FlaskClient, server: SftpServerHandle, sftp_username: str
) -> None:
    job_id = finished_job(logged_in)
    cookie = logged_in.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None and context(app).held.open_count() == 0
    server.set_password(sftp_username, "changed-by-the-administrator")
    attempts = server.auth_attempts[sftp_username]
    photos = ["Antenna A/DJI_0001.JPG", "Antenna A/DJI_0002.JPG", "Antenna A/DJI_0003.JPG"]
    wanted = [(p, size) for p in photos for size in ("thumb", "large")] * 2

    def tab(item: tuple[str, str]) -> int:
        client = app.test_client()  # another tab of the same login
        client.set_cookie(cookie.key, cookie.value)
        return preview(client, job_id, *item)

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(tab, wanted))
    assert set(statuses) == {401}
    assert server.auth_attempts[sftp_username] == attempts + 1
    assert context(app).held.open_count() == 0
