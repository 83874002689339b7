"""Web hardening. Where a rule covers routes, the routes come from ``app.url_map``, so a route
added later is checked without anyone listing it here: CSRF on every mutating route, owners
only on every job and upload route, hostile path arguments refused before the server, and
the security headers on every page type. Then the login rate limit, the login form's one
server (no SSRF), the cookie, session expiry and logout, and production secret keys.
"""

from __future__ import annotations

import base64
import io
import json
import re
import zipfile
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from qc_tool import create_app
from qc_tool.demo.sftp_server import SftpServerHandle
from qc_tool.web.security import ConfigurationError, weak_key_problem
from werkzeug.routing import Rule
from werkzeug.test import TestResponse

from web.support import (
    OTHER_PASSWORD,
    OTHER_USERNAME,
    MakeApp,
    api_token,
    context,
    csrf_token,
    gps_jpeg,
    log_in,
    wait_for_job,
)

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
OWNED = frozenset({"job_id", "upload_id"})  # arguments naming something one user owns
PATH_ARGUMENTS = frozenset({"site", "folder", "path", "filename"})
PHOTO = "Antenna A/DJI_0001.JPG"  # in SITE-A (tests/web/conftest.py)
UPLOADED_PHOTO = "Base/DJI_0001.JPG"  # in the owner's upload (``_upload``)


# -- fixtures: an app, its owner with a finished job and an upload, and another user -------------


class Owner:
    """The first user, with one finished QC job of SITE-A and one upload."""

    def __init__(self, app: Flask, client: FlaskClient) -> None:
        self.app, self.client = app, client
        token = api_token(client)
        response = client.post("/api/sites/SITE-A/qc", headers={"X-CSRFToken": token})
        assert response.status_code == 202, response.get_data(as_text=True)
        self.job_id: str = response.get_json()["job"]
        assert wait_for_job(client, self.job_id, timeout=60)["state"] == "done"
        self.upload_id = _upload(client)

    def values(self, rule: Rule) -> dict[str, str]:
        """Harmless real values for every argument of ``rule`` (fails on an unknown one)."""
        known = {
            "site": "SITE-A",
            "job_id": self.job_id,
            "upload_id": self.upload_id,
            "kind": "csv",
            "filename": "leaflet.js" if rule.endpoint.startswith("vendor.") else "css/app.css",
        }
        unknown = set(rule.arguments) - set(known)
        assert not unknown, (
            f"{rule.rule} takes {unknown}: decide here what a harmless value, a hostile value "
            "and another user's value of it are, so the checks below cover the new route"
        )
        return {name: known[name] for name in rule.arguments}

    def url(self, rule: Rule, **overrides: str) -> str:
        """The rule's path with real values, and raw ``overrides`` (already URL-encoded)."""
        values = {k: _quote(v) for k, v in self.values(rule).items()}
        values.update(overrides)
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: values[m.group(1)], rule.rule)
        if rule.endpoint == "review.preview":
            path += "?path=" + _quote(PHOTO)
        elif rule.endpoint == "uploads.preview":
            path += "?path=" + _quote(UPLOADED_PHOTO)
        return path


def _quote(value: str) -> str:
    return quote(value, safe="/")


def _upload(client: FlaskClient) -> str:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("SITE-9/Base/DJI_0001.JPG", gps_jpeg(48.2, 11.6))
    form = {
        "zip": (io.BytesIO(archive.getvalue()), "SITE-9.zip"),
        "csrf_token": csrf_token(client, "/uploads"),
    }
    response = client.post("/uploads", data=form, content_type="multipart/form-data")
    assert response.status_code == 303, response.get_data(as_text=True)
    return str(response.headers["Location"]).rsplit("/", 1)[1]


@pytest.fixture
def app(make_app: MakeApp) -> Flask:
    return make_app(QC_PARSE_WORKERS=0)  # checks in threads: no worker processes to start


@pytest.fixture
def owner(app: Flask, logged_in: FlaskClient) -> Owner:
    return Owner(app, logged_in)


@pytest.fixture
def other(app: Flask) -> FlaskClient:
    client = app.test_client()
    assert log_in(client, OTHER_USERNAME, OTHER_PASSWORD).status_code == 303
    return client


def rules(app: Flask, *, methods: frozenset[str] | None = None) -> list[Rule]:
    found = [
        r for r in app.url_map.iter_rules() if methods is None or (r.methods or set()) & methods
    ]
    return sorted(found, key=lambda r: r.rule)


def assert_security_headers(response: TestResponse, where: str) -> None:
    csp = response.headers.get("Content-Security-Policy", "")
    # Scripts only from the app itself (or none at all), never inline, never framed.
    assert "script-src 'self'" in csp or "default-src 'none'" in csp, (where, csp)
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, (where, csp)
    assert "frame-ancestors 'none'" in csp, (where, csp)
    assert response.headers.get("X-Content-Type-Options") == "nosniff", where
    assert response.headers.get("X-Frame-Options") == "DENY", where
    assert response.headers.get("Referrer-Policy") == "same-origin", where


def _send(client: FlaskClient, url: str, method: str, token: str | None) -> TestResponse:
    headers = {"X-CSRFToken": token} if token else {}
    data = {"csrf_token": token} if token else {}
    return client.open(url, method=method, headers=headers, data=data)


# -- Login ----------------------------------------------------------------------------------

# The routes anyone may reach: the login page, the app's own files, the map library.
PUBLIC = {"auth.login", "auth.login_form", "auth.logout", "static", "vendor.leaflet_file"}


def test_every_route_but_the_public_ones_needs_a_login(
    app: Flask, owner: Owner, server: SftpServerHandle
) -> None:
    anonymous = app.test_client()
    guarded = [r for r in rules(app) if r.endpoint not in PUBLIC]
    assert {"pages.sites", "api.job", "review.preview", "uploads.result"} <= {
        r.endpoint for r in guarded
    }
    connections = server.connections
    for rule in guarded:
        url = owner.url(rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            response = anonymous.open(url, method=method, headers={"Accept": "application/json"})
            where = f"{method} {url}"
            # 401, or 400 for a mutating request refused earlier for its missing CSRF token.
            assert response.status_code in (400, 401), (where, response.status_code)
    assert server.connections == connections  # nothing reached the server for them
    # And it holds for views added later: each guarded blueprint checks before any view runs.
    for name in ("pages", "api", "review", "uploads", "uploads_api"):
        hooks = [f.__name__ for f in app.before_request_funcs.get(name, [])]
        assert "_require_login" in hooks, (name, hooks)


# -- CSRF -----------------------------------------------------------------------------------


def test_every_mutating_route_refuses_a_request_without_a_valid_csrf_token(
    app: Flask, owner: Owner, server: SftpServerHandle
) -> None:
    mutating = rules(app, methods=MUTATING)
    endpoints = {r.endpoint for r in mutating}
    assert {
        "auth.login",
        "auth.logout",
        "api.start_qc",
        "pages.start_qc",
        "api.cancel",
    } <= endpoints
    assert "uploads.upload" in endpoints  # exempt from the app-wide hook: checks it itself
    connections, sessions = server.connections, len(context(app).sessions)
    for rule in mutating:
        url = owner.url(rule)
        for method in sorted((rule.methods or set()) & MUTATING):
            for token in (None, "forged-token"):
                response = _send(owner.client, url, method, token)
                where = f"{method} {url} token={token}"
                assert response.status_code == 400, (where, response.status_code)
                body = response.get_data(as_text=True)
                assert "csrf" in body.lower() or "did not come from this site" in body, where
                assert_security_headers(response, where)
    assert server.connections == connections  # no scan, no login, nothing reached the server
    assert len(context(app).sessions) == sessions  # not logged out either
    assert owner.client.get(f"/api/jobs/{owner.job_id}").get_json()["state"] == "done"


def test_a_token_from_another_session_is_refused(
    owner: Owner, other: FlaskClient, server: SftpServerHandle
) -> None:
    connections = server.connections
    foreign = api_token(other)
    response = owner.client.post("/api/sites/SITE-A/qc", headers={"X-CSRFToken": foreign})
    assert response.status_code == 400 and response.get_json()["error"] == "csrf_failed"
    assert server.connections == connections


# -- another user's jobs and uploads --------------------------------------------------------


def test_every_route_of_a_job_or_upload_is_not_found_for_another_user(
    app: Flask, owner: Owner, other: FlaskClient
) -> None:
    owned = [r for r in rules(app) if set(r.arguments) & OWNED]
    endpoints = {r.endpoint for r in owned}
    assert {
        "api.job",
        "api.job_state",
        "api.job_events",
        "api.cancel",
        "pages.qc_page",
    } <= endpoints
    assert {"review.preview", "review.export", "uploads.result"} <= endpoints
    assert {"uploads.preview", "uploads_api.upload_state"} <= endpoints
    token = api_token(other)
    for rule in owned:
        url = owner.url(rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            response = _send(other, url, method, token)
            where = f"{method} {url}"
            assert response.status_code == 404, (where, response.status_code)
            body = response.get_data()
            assert owner.job_id.encode() not in body and b"DJI_0001" not in body, where
            assert not body.startswith((b"PK", b"\xff\xd8")), where  # no ZIP, no JPEG
    # The owner still has both, untouched (the cancel above was refused).
    job = owner.client.get(f"/api/jobs/{owner.job_id}")
    assert job.status_code == 200 and job.get_json()["state"] == "done"
    assert owner.client.get(f"/uploads/{owner.upload_id}").status_code == 200


def test_the_event_stream_is_the_owners_alone(owner: Owner, other: FlaskClient) -> None:
    theirs = other.get(f"/api/jobs/{owner.job_id}/events")
    assert theirs.status_code == 404 and theirs.mimetype == "application/json"
    mine = owner.client.get(f"/api/jobs/{owner.job_id}/events")
    assert mine.status_code == 200 and mine.mimetype == "text/event-stream"
    assert "event: end" in mine.get_data(as_text=True)


# -- hostile path arguments -----------------------------------------------------------------

# As they appear in a URL path: raw, percent-encoded, with NUL, backslashes, absolute paths.
HOSTILE_SEGMENTS = [
    "..",
    "%2e%2e",
    "%2E%2E",
    ".%2e",
    "..%2F..%2Fetc",
    "%2Fetc",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "%00",
    "SITE-A%00",
    "SITE-A%00..",
    "..%5C..%5Cetc",
    "a%5Cb",
    "%5Cetc",
    ".ssh",
]
# As the preview's ?path= query: only a path the job listed may be asked for.
HOSTILE_PHOTOS = [
    "../../../etc/passwd",
    "/etc/passwd",
    "/sites/SITE-A/Antenna A/DJI_0001.JPG",
    "Antenna A/../../SITE-B/Folder 1/DJI_0001.JPG",
    "Antenna A/../Antenna A/DJI_0001.JPG",
    "Antenna A\\DJI_0001.JPG",
    "Antenna A/DJI_0001.JPG\x00.png",
    "%2e%2e/%2e%2e/etc/passwd",
    "",
]


def test_hostile_path_arguments_are_refused_and_never_reach_the_server(
    app: Flask, owner: Owner, server: SftpServerHandle
) -> None:
    with_paths = [r for r in rules(app) if set(r.arguments) & PATH_ARGUMENTS]
    endpoints = {r.endpoint for r in with_paths}
    assert {"api.start_qc", "pages.start_qc", "pages.qc_page", "review.preview"} <= endpoints
    assert {"static", "vendor.leaflet_file"} <= endpoints  # files of this machine's disk
    token = api_token(owner.client)
    before = (server.connections, server.files_opened, server.auth_attempts.total())
    tried = 0
    for rule in with_paths:
        for name in set(rule.arguments) & PATH_ARGUMENTS:
            for hostile in HOSTILE_SEGMENTS + [f"{s}/{s}/etc/passwd" for s in ("..", "%2e%2e")]:
                url = owner.url(rule, **{name: hostile})
                for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                    response = _send(owner.client, url, method, token)
                    where = f"{method} {url}"
                    assert 400 <= response.status_code < 500, (where, response.status_code)
                    assert b"root:" not in response.get_data(), where
                    assert_security_headers(response, where)
                    tried += 1
    after = (server.connections, server.files_opened, server.auth_attempts.total())
    assert after == before, "a hostile path reached the SFTP server"
    assert tried > 100


def test_the_preview_serves_only_photos_the_job_listed(
    owner: Owner, server: SftpServerHandle
) -> None:
    base = f"/sites/SITE-A/qc/{owner.job_id}/preview"
    before = (server.connections, server.files_opened)
    for photo in HOSTILE_PHOTOS:
        response = owner.client.get(base, query_string={"path": photo})
        assert response.status_code in (400, 404), (photo, response.status_code)
        assert response.mimetype != "image/jpeg", photo
    assert (server.connections, server.files_opened) == before
    listed = owner.client.get(base, query_string={"path": PHOTO})  # the control: it works
    assert listed.status_code == 200 and listed.mimetype == "image/jpeg"


# -- security headers -----------------------------------------------------------------------


def test_every_page_type_carries_the_security_headers(
    app: Flask, owner: Owner, client: FlaskClient
) -> None:
    seen = set()
    for rule in rules(app, methods=frozenset({"GET"})):
        url = owner.url(rule)
        response = owner.client.get(url)
        assert response.status_code < 500, (url, response.status_code)
        assert_security_headers(response, url)
        seen.add(rule.endpoint)
    assert {"auth.login_form", "pages.sites", "pages.qc_page", "api.job_events"} <= seen
    # Error pages, JSON errors, redirects and a logged-out visitor's pages too.
    for response, where in (
        (owner.client.get("/no-such-page"), "404 page"),
        (owner.client.get("/api/no-such-thing"), "404 JSON"),
        (owner.client.get("/sites/%2e%2e/qc/x"), "400 page"),
        (client.get("/"), "302 to the login"),
        (client.get("/api/sites"), "401 JSON"),
        (client.get("/login"), "login page"),
    ):
        assert_security_headers(response, where)


# -- login rate limiting --------------------------------------------------------------------


def _login(client: FlaskClient, username: str, password: str, address: str = "10.0.0.1") -> Any:
    token = csrf_token(client)
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        environ_base={"REMOTE_ADDR": address},
    )


def test_failures_from_one_address_are_limited_without_reaching_the_server(
    app: Flask,
    client: FlaskClient,
    server: SftpServerHandle,
    sftp_username: str,
    sftp_password: str,
) -> None:
    for i in range(5):  # QC_LOGIN_MAX_FAILURES default
        assert _login(client, sftp_username, f"wrong-{i}").status_code == 401
    assert server.auth_attempts[sftp_username] == 5
    refused = _login(client, sftp_username, sftp_password)  # even the right password now
    assert refused.status_code == 429
    assert "Too many failed logins" in refused.get_data(as_text=True)
    assert 0 < int(refused.headers["Retry-After"]) <= 900
    assert_security_headers(refused, "429 login")
    other_user = _login(client, OTHER_USERNAME, OTHER_PASSWORD)  # same address, other account
    assert other_user.status_code == 429
    assert server.auth_attempts[sftp_username] == 5 and server.auth_attempts[OTHER_USERNAME] == 0
    assert _login(client, OTHER_USERNAME, OTHER_PASSWORD, "10.0.0.2").status_code == 303


def test_behind_a_trusted_proxy_each_client_has_its_own_address(
    make_app: MakeApp, server: SftpServerHandle, sftp_username: str, sftp_password: str
) -> None:
    client = make_app(QC_TRUSTED_PROXIES=1).test_client()

    def via_proxy(username: str, password: str, forwarded: str) -> Any:
        token = csrf_token(client)
        return client.post(
            "/login",
            data={"username": username, "password": password, "csrf_token": token},
            environ_base={"REMOTE_ADDR": "127.0.0.1"},  # every request comes from the proxy
            headers={"X-Forwarded-For": forwarded},
        )

    # One client guesses five accounts, forging a different first entry each time: only the
    # entry the proxy appended counts, so its sixth guess is refused by its address.
    for i in range(5):
        assert via_proxy(f"guess-{i}", "wrong", f"10.9.9.{i}, 10.0.3.1").status_code == 401
    assert via_proxy("guess-9", "wrong", "10.9.9.9, 10.0.3.1").status_code == 429
    # Another client behind the same proxy is not locked out by the first one's guesses.
    assert via_proxy(sftp_username, sftp_password, "10.0.3.2").status_code == 303


def test_failures_for_one_username_are_limited_from_every_address(
    client: FlaskClient, server: SftpServerHandle, sftp_username: str, sftp_password: str
) -> None:
    for i in range(5):
        assert _login(client, sftp_username, "wrong", f"10.0.1.{i}").status_code == 401
    refused = _login(client, sftp_username.upper(), sftp_password, "10.0.2.1")  # case too
    assert refused.status_code == 429
    assert _login(client, sftp_username, sftp_password, "10.0.2.2").status_code == 429
    assert server.auth_attempts[sftp_username] == 5  # none of the refused ones reached it
    assert server.auth_attempts[sftp_username.upper()] == 0


def test_the_window_ends_the_refusal(
    app: Flask,
    client: FlaskClient,
    server: SftpServerHandle,
    sftp_username: str,
    sftp_password: str,
) -> None:
    limiter = app.extensions["qc"].login_limiter
    now = [1000.0]
    limiter.clock = lambda: now[0]
    for _ in range(5):
        _login(client, sftp_username, "wrong")
    now[0] += 899
    assert _login(client, sftp_username, sftp_password).status_code == 429
    now[0] += 1  # the oldest failure is now 900 s old
    assert _login(client, sftp_username, sftp_password).status_code == 303
    assert server.auth_attempts[sftp_username] == 6


def test_limits_come_from_the_settings_and_only_refused_passwords_count(
    make_app: MakeApp, server: SftpServerHandle, sftp_username: str, sftp_password: str
) -> None:
    app = make_app(QC_LOGIN_MAX_FAILURES=2, QC_LOGIN_WINDOW_S=60)
    client = app.test_client()
    assert _login(client, "", "x").status_code == 400  # never sent: does not count
    assert _login(client, sftp_username, "wrong").status_code == 401
    assert _login(client, sftp_username, sftp_password).status_code == 303  # success clears it
    client.post("/logout", data={"csrf_token": api_token(client)})
    assert _login(client, sftp_username, "wrong", "10.9.9.9").status_code == 401
    assert _login(client, sftp_username, "wrong", "10.9.9.8").status_code == 401
    refused = _login(client, sftp_username, sftp_password, "10.9.9.7")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) <= 60
    assert server.auth_attempts[sftp_username] == 4


def test_an_unreachable_server_is_not_counted_as_a_guess(
    make_app: MakeApp, sftp_username: str, tmp_path: Path
) -> None:
    app = make_app(QC_SFTP_PORT=1, QC_LOGIN_MAX_FAILURES=1, QC_CONNECT_TIMEOUT=2)
    client = app.test_client()
    for _ in range(3):
        assert _login(client, sftp_username, "whatever").status_code == 503


# -- the login form talks to the configured server only (no SSRF) ---------------------------


def test_extra_fields_cannot_point_the_login_at_another_server(
    client: FlaskClient,
    server: SftpServerHandle,
    make_sftp_server: Any,
    tmp_path: Path,
    sftp_username: str,
    sftp_password: str,
) -> None:
    decoy_root = tmp_path / "decoy"
    (decoy_root / "sites").mkdir(parents=True)
    decoy = make_sftp_server(decoy_root, sites_root="/sites")  # same user and password
    page = client.get("/login").get_data(as_text=True)
    fields = re.findall(r'<(?:input|select|textarea)\b[^>]*\bname="([^"]+)"', page)
    assert set(fields) == {"username", "password", "csrf_token"}  # no host to choose
    extra = {
        "host": decoy.host,
        "port": str(decoy.port),
        "server": f"{decoy.host}:{decoy.port}",
        "hostname": decoy.host,
        "sftp_host": decoy.host,
        "QC_SFTP_HOST": decoy.host,
        "QC_SFTP_PORT": str(decoy.port),
        "url": f"sftp://{sftp_username}@{decoy.host}:{decoy.port}/",
    }
    for password, status in (("wrong", 401), (sftp_password, 303)):
        form = {"username": sftp_username, "password": password, "csrf_token": csrf_token(client)}
        response = client.post("/login", data={**form, **extra}, query_string=extra)
        assert response.status_code == status
    assert server.auth_attempts[sftp_username] == 2  # both went to the configured server
    assert decoy.connections == 0 and decoy.auth_attempts.total() == 0


# -- the cookie, expiry, logout -------------------------------------------------------------


def _cookie_payload(value: str) -> dict[str, Any]:
    """What anyone holding the cookie reads without the key: it is signed, not encrypted."""
    compressed = value.startswith(".")
    data = value.lstrip(".").split(".")[0]
    raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    loaded: dict[str, Any] = json.loads(zlib.decompress(raw) if compressed else raw)
    return loaded


def test_no_cookie_of_a_whole_visit_shows_the_username_or_password(
    app: Flask, client: FlaskClient, sftp_username: str, sftp_password: str
) -> None:
    responses = [client.get("/login"), log_in(client, sftp_username, sftp_password)]
    token = api_token(client)
    started = client.post("/api/sites/SITE-A/qc", headers={"X-CSRFToken": token})
    job_id = started.get_json()["job"]
    wait_for_job(client, job_id, timeout=60)
    responses += [started, client.get("/"), client.get(f"/sites/SITE-A/qc/{job_id}")]
    responses.append(client.post("/logout", data={"csrf_token": token}))
    cookies = [c for r in responses for c in r.headers.getlist("Set-Cookie")]
    assert cookies, "the visit set no cookie at all"
    for cookie in cookies:
        name, _, rest = cookie.partition("=")
        assert name == app.config["SESSION_COOKIE_NAME"], cookie  # the only cookie there is
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie, cookie
        value = rest.split(";")[0]
        if value:
            payload = _cookie_payload(value)
            assert set(payload) <= {"sid", "csrf_token"}, payload
            text = json.dumps(payload)
            assert sftp_username not in text and sftp_password not in text
    for response in responses:
        headers = str(response.headers)
        assert sftp_password not in headers and sftp_password not in response.get_data(as_text=True)


def test_production_cookies_are_secure_on_every_response(
    make_app: MakeApp, sftp_username: str, sftp_password: str
) -> None:
    app = make_app(QC_PRODUCTION=1, QC_SECRET_KEY="9f2c1e7a5b3d8046" * 4)
    client = app.test_client()
    responses = [client.get("/login"), log_in(client, sftp_username, sftp_password)]
    responses.append(client.post("/logout", data={"csrf_token": api_token(client)}))
    cookies = [c for r in responses for c in r.headers.getlist("Set-Cookie")]
    assert cookies and all("Secure" in c and "HttpOnly" in c for c in cookies)


def _sid(app: Flask, client: FlaskClient) -> str:
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None
    return str(_cookie_payload(cookie.value)["sid"])


def test_an_idle_login_expires_and_its_password_is_wiped(
    app: Flask, logged_in: FlaskClient, sftp_password: str
) -> None:
    store = context(app).sessions
    now = [store.clock()]
    store.clock = lambda: now[0]
    sid = _sid(app, logged_in)
    creds = store.get(sid)
    assert creds is not None and creds.password == sftp_password
    told: list[str] = []
    store.on_expire = told.append
    idle = 8 * 3600  # QC_SESSION_HOURS default (QC_SESSION_MAX_HOURS: 12)
    for _ in range(2):  # in use: kept alive past one idle period, within the absolute limit
        now[0] += idle * 0.6
        assert logged_in.get("/api/jobs/none").status_code == 404
    now[0] += idle + 1
    response = logged_in.get("/api/sites")
    assert response.status_code == 401
    assert creds.password == "" and len(store) == 0
    assert told == [sid]  # what still runs for the login can be stopped (see on_expire)


def test_logout_wipes_the_password_the_server_held(
    app: Flask, logged_in: FlaskClient, sftp_password: str
) -> None:
    store = context(app).sessions
    creds = store.get(_sid(app, logged_in))
    assert creds is not None and creds.password == sftp_password
    logged_in.post("/logout", data={"csrf_token": api_token(logged_in)})
    assert creds.password == "" and len(store) == 0


# -- production secret keys -----------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "",
        "change-me",
        "CHANGEME",
        "secret",
        "test-secret-key",
        "short-but-random-9f2c",
        "a" * 64,
        "abababababababababababababababab",
    ],
)
def test_production_refuses_a_missing_short_or_placeholder_secret_key(
    key: str, tmp_path: Path
) -> None:
    assert weak_key_problem(key) is not None
    with pytest.raises(ConfigurationError, match="QC_SECRET_KEY"):
        create_app({"QC_PRODUCTION": 1, "QC_SECRET_KEY": key, "QC_CACHE_DIR": tmp_path})


def test_production_starts_with_a_long_random_key(tmp_path: Path) -> None:
    import secrets

    key = secrets.token_hex(32)
    assert weak_key_problem(key) is None
    app = create_app({"QC_PRODUCTION": 1, "QC_SECRET_KEY": key, "QC_CACHE_DIR": tmp_path})
    try:
        assert app.secret_key == key
    finally:
        context(app).close()
