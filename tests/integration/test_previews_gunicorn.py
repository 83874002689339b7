"""Photo previews through gunicorn, as production serves them: many threads, one kept connection.

gunicorn's gthread worker serves each request on whichever of its 16 threads is free, so one
login's previews arrive on many threads. The login's kept SFTP connection must serve them all
(one at a time), and a photo that cannot be previewed must get the same 4xx whichever thread
answers.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from PIL import Image
from qc_tool.demo.sftp_server import SftpServerHandle
from qc_tool.demo.sites import SiteLayout, generate_site, make_body
from waiting import wait_until

from bench.load import Browser, Gunicorn, app_settings, start_gunicorn

SITE = "40000001"
FOLDER = "Tower-Scans"
LAYOUT = SiteLayout(folders=((FOLDER, 24),))
NOT_A_JPEG = f"{FOLDER}/DJI_9999.JPG"  # PNG bytes under a JPEG name
USERNAME, PASSWORD = "previewer", "previewer-password-7"
PREVIEWS, AT_ONCE = 48, 8
DEADLINE_S = 120.0  # a failure ends the test by then; a passing run takes a few seconds

_META_TOKEN = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
_FORM_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def server(
    make_sftp_server: Callable[..., SftpServerHandle], sftp_root: Path, tmp_path: Path
) -> SftpServerHandle:
    generate_site(sftp_root / "sites", SITE, LAYOUT, body=make_body(LAYOUT))
    png = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 120, 30)).save(png, "PNG")
    (sftp_root / "sites" / SITE / NOT_A_JPEG).write_bytes(png.getvalue())
    return make_sftp_server(sftp_root, {USERNAME: PASSWORD}, sites_root="/sites")


@pytest.fixture
def app(server: SftpServerHandle, tmp_path: Path) -> Any:
    settings = app_settings(
        server.port,
        server.sites_root,
        server.write_known_hosts(tmp_path / "known_hosts"),
        tmp_path / "cache",
        QC_CHECKS="0",  # previews need only the listing: the GPS pass is enough
        QC_PARSE_WORKERS="0",
        QC_CHECK_WORKERS="0",
    )
    app = start_gunicorn(settings, tmp_path / "gunicorn.log")
    yield app
    app.stop()


def logged_in_browser(app: Gunicorn, deadline: float) -> Browser:
    """A browser that has logged in and holds the sites page's CSRF token."""
    b = Browser(app.host, app.port, deadline)
    form = _FORM_TOKEN.search(b.request("GET", "/login").text)
    assert form is not None
    reply = b.request(
        "POST",
        "/login",
        form={"username": USERNAME, "password": PASSWORD, "csrf_token": form.group(1)},
    )
    assert reply.status == 303, reply.text[:300]
    page = b.request("GET", "/")
    token = _META_TOKEN.search(page.text)
    assert page.status == 200 and token is not None
    b.csrf = token.group(1)
    return b


def finished_job(b: Browser, site: str) -> tuple[str, list[str]]:
    """Run View QC of ``site`` and wait for it; the job id and the paths it listed."""
    assert b.csrf is not None
    reply = b.request("POST", f"/api/sites/{site}/qc", headers={"X-CSRFToken": b.csrf})
    assert reply.status == 202, reply.text[:300]
    job = reply.json()["job"]

    def ended() -> dict[str, Any] | None:
        state: dict[str, Any] = b.request("GET", f"/api/jobs/{job}/state").json()
        return state if state["state"] != "running" else None

    state = wait_until(ended, interval=0.05, message=f"job {job} to end")
    assert state["state"] == "done", state
    document = b.request("GET", f"/api/jobs/{job}").json()["result"]
    return job, [image["path"] for image in document["images"]]


def preview_path(site: str, job: str, path: str, size: str) -> str:
    return f"/sites/{site}/qc/{job}/preview?path={quote(path)}&size={size}"


def same_login(b: Browser) -> Browser:
    """Another browser tab of the same login (its own cookie jar, the same cookies)."""
    tab = Browser(b.host, b.port, b.deadline)
    tab.cookies = dict(b.cookies)
    return tab


@pytest.mark.timeout(180)
def test_previews_on_many_threads_share_the_login_connection_and_never_fail_with_5xx(
    app: Gunicorn, server: SftpServerHandle
) -> None:
    b = logged_in_browser(app, time.monotonic() + DEADLINE_S)
    job, paths = finished_job(b, SITE)
    photos = [p for p in paths if p != NOT_A_JPEG]
    assert len(photos) == 24 and NOT_A_JPEG in paths
    # 48 different previews (two sizes of 24 photos), so none comes from the preview cache.
    wanted = [(p, size) for p in photos for size in ("thumb", "large")][:PREVIEWS]

    def fetch(item: tuple[str, str]) -> tuple[int, str]:
        reply = same_login(b).request("GET", preview_path(SITE, job, *item))
        return reply.status, reply.headers.get("Content-Type", "")

    logins = server.auth_attempts[USERNAME]
    with ThreadPoolExecutor(AT_ONCE) as pool:
        replies = list(pool.map(fetch, wanted))
    assert [r for r in replies if r != (200, "image/jpeg")] == []
    assert server.auth_attempts[USERNAME] == logins + 1  # one kept connection served them all

    # Whichever thread answers, a photo that cannot be previewed gets the same clear 4xx.
    answers = []
    for _ in range(4):
        reply = same_login(b).request(
            "GET",
            preview_path(SITE, job, NOT_A_JPEG, "large"),
            headers={"Accept": "application/json"},
        )
        answers.append((reply.status, reply.json()["error"]))
    assert answers == [(422, "unreadable_image")] * 4
