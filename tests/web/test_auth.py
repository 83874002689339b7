"""Logging in and out: one password attempt per login, clear refusals, nothing secret in cookies."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import asyncssh
import pytest
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import base64_decode
from qc_tool.demo.sftp_server import SftpServerHandle

from web.support import MakeApp, api_token, context, csrf_token, log_in


def session_cookie(app: Flask, client: FlaskClient) -> str:
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None
    return cookie.value


def decoded_session(app: Flask, client: FlaskClient) -> dict[str, object]:
    """What anyone holding the cookie can read: it is signed, not encrypted."""
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    data: dict[str, object] = serializer.loads(session_cookie(app, client))
    return data


def raw_payload(cookie: str) -> bytes:
    """The cookie's payload decoded by hand (base64, zlib when it starts with a dot)."""
    import zlib

    compressed = cookie.startswith(".")
    payload = base64_decode(cookie.lstrip(".").split(".")[0])
    return zlib.decompress(payload) if compressed else payload


def test_login_page_is_a_form_with_a_csrf_token(client: FlaskClient) -> None:
    page = client.get("/login").get_data(as_text=True)
    assert '<meta name="csrf-token"' in page
    assert 'name="csrf_token"' in page
    assert 'type="password"' in page


def test_right_password_logs_in_and_shows_the_sites(
    app: Flask,
    client: FlaskClient,
    server: SftpServerHandle,
    sftp_username: str,
    sftp_password: str,
) -> None:
    response = log_in(client, sftp_username, sftp_password)
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    assert server.auth_attempts[sftp_username] == 1
    assert len(context(app).sessions) == 1
    page = client.get("/").get_data(as_text=True)
    assert "SITE-A" in page and "SITE-B" in page


def test_session_cookie_holds_neither_username_nor_password(
    app: Flask, logged_in: FlaskClient, sftp_username: str, sftp_password: str
) -> None:
    data = decoded_session(app, logged_in)
    assert set(data) <= {"sid", "csrf_token"}
    assert isinstance(data["sid"], str) and len(data["sid"]) >= 32
    for text in (json.dumps(data), raw_payload(session_cookie(app, logged_in)).decode()):
        assert sftp_username not in text
        assert sftp_password not in text


def test_wrong_password_is_refused_clearly_and_costs_one_attempt(
    app: Flask, client: FlaskClient, server: SftpServerHandle, sftp_username: str
) -> None:
    response = log_in(client, sftp_username, "not-the-password")
    page = response.get_data(as_text=True)
    assert response.status_code == 401
    assert "Wrong username or password" in page
    assert "not-the-password" not in page
    assert f'value="{sftp_username}"' in page  # the username is kept for a second try
    assert server.auth_attempts[sftp_username] == 1
    assert len(context(app).sessions) == 0


def _other_key_line(server: SftpServerHandle) -> str:
    key = asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh").decode()
    return f"[{server.host}]:{server.port} {key.strip()}\n"


@pytest.mark.parametrize(
    ("known_hosts_text", "says"),
    [("", "unknown"), (None, "CHANGED")],
    ids=["unknown-key", "changed-key"],
)
def test_unverified_host_key_is_refused_before_any_password(
    make_app: MakeApp,
    server: SftpServerHandle,
    tmp_path: Path,
    sftp_username: str,
    sftp_password: str,
    known_hosts_text: str | None,
    says: str,
) -> None:
    known_hosts = tmp_path / "other_known_hosts"
    known_hosts.write_text(
        _other_key_line(server) if known_hosts_text is None else known_hosts_text
    )
    app = make_app(QC_KNOWN_HOSTS=known_hosts)
    client = app.test_client()
    response = log_in(client, sftp_username, sftp_password)
    page = response.get_data(as_text=True)
    assert response.status_code == 502
    assert "could not be verified" in page and "password was not sent" in page
    assert says in page
    assert sum(server.auth_attempts.values()) == 0
    assert len(context(app).sessions) == 0


def test_unreachable_server_is_reported_clearly(
    make_app: MakeApp, sftp_username: str, sftp_password: str
) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = make_app(QC_SFTP_PORT=port).test_client()
    response = log_in(client, sftp_username, sftp_password)
    page = response.get_data(as_text=True)
    assert response.status_code == 503
    assert "cannot be reached" in page
    assert sftp_password not in page


def test_login_without_csrf_token_is_refused_before_the_server(
    client: FlaskClient, server: SftpServerHandle, sftp_username: str, sftp_password: str
) -> None:
    client.get("/login")
    response = client.post("/login", data={"username": sftp_username, "password": sftp_password})
    assert response.status_code == 400
    assert server.connections == 0


def test_empty_password_never_reaches_the_server(
    client: FlaskClient, server: SftpServerHandle, sftp_username: str
) -> None:
    response = client.post(
        "/login",
        data={"username": sftp_username, "password": "", "csrf_token": csrf_token(client)},
    )
    assert response.status_code == 400
    assert "Enter your SFTP username and password" in response.get_data(as_text=True)
    assert server.connections == 0


def test_logout_wipes_the_credentials_and_the_old_cookie_stops_working(
    app: Flask, logged_in: FlaskClient
) -> None:
    old_cookie = session_cookie(app, logged_in)
    assert logged_in.get("/api/jobs/none").status_code == 404  # logged in: the job is unknown
    response = logged_in.post("/logout", data={"csrf_token": api_token(logged_in)})
    assert response.status_code == 303
    assert response.headers["Location"] == "/login"
    assert len(context(app).sessions) == 0
    assert logged_in.get("/api/sites").status_code == 401
    logged_in.set_cookie(app.config["SESSION_COOKIE_NAME"], old_cookie)  # replay the old cookie
    response = logged_in.get("/api/sites")
    assert response.status_code == 401
    assert response.get_json()["error"] == "not_logged_in"


def test_logout_needs_a_csrf_token(app: Flask, logged_in: FlaskClient) -> None:
    assert logged_in.post("/logout").status_code == 400
    assert len(context(app).sessions) == 1


def test_logout_cancels_the_users_scans(app: Flask, logged_in: FlaskClient) -> None:
    token = api_token(logged_in)
    job_id = logged_in.post("/api/sites/SITE-A/qc", headers={"X-CSRFToken": token}).get_json()[
        "job"
    ]
    sid = decoded_session(app, logged_in)["sid"]
    assert isinstance(sid, str)
    job = context(app).jobs.get(job_id, sid)
    logged_in.post("/logout", data={"csrf_token": token})
    assert job.cancelled()


def test_pages_send_logged_out_users_to_the_login_form(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"


def test_logged_in_user_visiting_login_goes_to_the_sites(logged_in: FlaskClient) -> None:
    response = logged_in.get("/login")
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_a_password_changed_on_the_server_ends_the_login(
    app: Flask, logged_in: FlaskClient, server: SftpServerHandle, sftp_username: str
) -> None:
    sid = decoded_session(app, logged_in)["sid"]
    creds = context(app).sessions.get(str(sid))
    assert creds is not None
    creds.password = "changed-on-the-server"  # as if the server's password had been changed
    response = logged_in.get("/")
    assert response.status_code == 401
    assert "wrong username or password" in response.get_data(as_text=True)
    assert len(context(app).sessions) == 0
    assert logged_in.get("/login").status_code == 200  # the form again, not a redirect loop
