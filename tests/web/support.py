"""Helpers of the web tests: test images, CSRF tokens, logging in, waiting for a job."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from PIL.TiffImagePlugin import IFDRational
from qc_tool.web.deps import QCContext
from waiting import TIMEOUT_S, wait_until

OTHER_USERNAME = "other"
OTHER_PASSWORD = "other-password-2"

MakeApp = Callable[..., Flask]


def gps_jpeg(lat: float | None, lon: float | None, taken: str = "2024:05:01 10:00:00") -> bytes:
    """A tiny JPEG whose EXIF has a camera, a capture time and (unless None) a GPS position."""
    exif = Image.Exif()
    exif[0x010F] = "DJI"  # Make
    exif[0x0110] = "FC6310"  # Model
    exif.get_ifd(0x8769)[0x9003] = taken  # DateTimeOriginal
    if lat is not None and lon is not None:
        gps = exif.get_ifd(0x8825)
        gps[1], gps[2] = ("N" if lat >= 0 else "S"), _dms(lat)
        gps[3], gps[4] = ("E" if lon >= 0 else "W"), _dms(lon)
        gps[5], gps[6] = b"\x00", IFDRational(1234, 10)
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (120, 140, 160)).save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def _dms(value: float) -> tuple[IFDRational, IFDRational, IFDRational]:
    value = abs(value)
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = round(((value - degrees) * 60 - minutes) * 60 * 10_000)
    return IFDRational(degrees, 1), IFDRational(minutes, 1), IFDRational(seconds, 10_000)


def context(app: Flask) -> QCContext:
    ctx = app.extensions["qc"]
    assert isinstance(ctx, QCContext)
    return ctx


_META_TOKEN = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


def sid_of(app: Flask, client: FlaskClient) -> str:
    """The login (session id) a client's cookie carries: the owner of the jobs it starts."""
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    return str(serializer.loads(cookie.value)["sid"])


def csrf_token(client: FlaskClient, page: str = "/login") -> str:
    """The CSRF token a page of this client's session carries in its <meta> tag."""
    response = client.get(page)
    match = _META_TOKEN.search(response.get_data(as_text=True))
    assert match, f"no csrf-token meta tag on {page} ({response.status_code})"
    return match.group(1)


def log_in(client: FlaskClient, username: str, password: str) -> Any:
    """Submit the login form as a browser does (token from the login page)."""
    token = csrf_token(client)
    return client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token}
    )


def api_token(client: FlaskClient) -> str:
    """A CSRF token for a logged-in client, from a page that needs no SFTP connection."""
    return csrf_token(client, "/no-such-page")


def wait_for_job(client: FlaskClient, job_id: str, timeout: float = TIMEOUT_S) -> dict[str, Any]:
    """Poll the job as the QC page does until it leaves the running state; its last answer."""
    last: dict[str, Any] = {}

    def ended() -> dict[str, Any] | None:
        response = client.get(f"/api/jobs/{job_id}")
        assert response.status_code == 200, response.get_data(as_text=True)
        last.update(response.get_json())
        return dict(last) if last["state"] != "running" else None

    return wait_until(
        ended, timeout=timeout, interval=0.05, message=lambda: f"job {job_id} to end: {last}"
    )
