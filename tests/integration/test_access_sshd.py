"""Two users of one OpenSSH server: what one may read, the other must not get from the tool.

User A owns three photos of mode 0600 in a site that also holds one photo anyone may read. A
runs QC (GPS pass and checks) and looks at a preview; then B, who can list the folder but not
read A's photos, does the same through the same app (one cache, one preview cache). B must get
"permission denied" for each of A's photos and none of A's positions, camera or check values,
no preview of them, and a sites page that shows B's own last result, never A's.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from qc_tool import create_app
from sshd import SshdHandle
from web.support import api_token, context, gps_jpeg, log_in, wait_for_job

SITE = "SITE-P"
PRIVATE = [f"Tower/DJI_000{n}.JPG" for n in (1, 2, 3)]  # A's, mode 0600
PUBLIC = "Tower/DJI_0004.JPG"  # mode 0644: both may read it


@pytest.fixture(scope="module")
def server(sshd: Any, tmp_path_factory: pytest.TempPathFactory) -> SshdHandle:
    data = tmp_path_factory.mktemp("access-sites")
    for n, rel in enumerate([*PRIVATE, PUBLIC]):
        path = data / SITE / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gps_jpeg(47.37 + n / 1000, 8.54 + n / 1000, f"2024:06:0{n + 1} 10:00:00"))
    handle: SshdHandle = sshd(data)
    if handle.other is None:
        message = "no second sshd test user: run .ci/setup_sshd_user.sh"
        if os.environ.get("QC_REQUIRE_SSHD") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    for rel in PRIVATE:  # the copy is owned by A (the first test user), as on a real server
        (handle.data_dir / SITE / rel).chmod(0o600)
    return handle


@pytest.fixture
def app(server: SshdHandle, tmp_path: Path) -> Iterator[Flask]:
    app = create_app(
        {
            "TESTING": True,
            "QC_SFTP_HOST": server.host,
            "QC_SFTP_PORT": server.port,
            "QC_SITES_ROOT": server.sites_root,
            "QC_KNOWN_HOSTS": server.known_hosts,
            "QC_CACHE_DIR": tmp_path / "cache",
            "QC_SECRET_KEY": "test-secret-key",
            "QC_PRODUCTION": 0,
        }
    )
    yield app
    context(app).close()


def _client(app: Flask, username: str, password: str) -> FlaskClient:
    client = app.test_client()
    response = log_in(client, username, password)
    assert response.status_code == 303, response.get_data(as_text=True)
    return client


def _qc(client: FlaskClient) -> dict[str, Any]:
    response = client.post(f"/api/sites/{SITE}/qc", headers={"X-CSRFToken": api_token(client)})
    assert response.status_code in (201, 202), response.get_data(as_text=True)
    job: dict[str, Any] = wait_for_job(client, response.get_json()["job"])
    assert job["state"] == "done" and job["checks_state"] == "done", job
    return job


def _images(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {image["path"]: image for image in job["result"]["images"]}


def _preview(client: FlaskClient, job: dict[str, Any], path: str) -> Any:
    url = f"/sites/{SITE}/qc/{job['id']}/preview?path={quote(path)}&size=thumb"
    return client.get(url, headers={"Accept": "application/json"})


def _last_result(client: FlaskClient) -> str:
    """The "Last result" cell of the site's row on the sites page, as text."""
    page = client.get("/")
    assert page.status_code == 200, page.get_data(as_text=True)
    html = page.get_data(as_text=True)
    row = re.search(
        rf'<td class="site-name">{SITE}</td>.*?<td class="last-run">(.*?)</td>', html, re.DOTALL
    )
    assert row, html
    return " ".join(re.sub(r"<[^>]+>", " ", row.group(1)).split())


@pytest.fixture
def users(app: Flask, server: SshdHandle) -> tuple[FlaskClient, FlaskClient]:
    """A (owns the private photos) and B, each logged in to the same app."""
    assert server.other is not None
    return _client(app, server.username, server.password), _client(app, *server.other)


def _a_reads_everything(a: FlaskClient) -> dict[str, Any]:
    """A's QC: positions, camera and check values of every photo, A's own photos included."""
    job = _qc(a)
    for path in PRIVATE:
        image = _images(job)[path]
        assert image["error"] is None and image["lat"] is not None and image["camera"], image
        assert image["checks"] is not None, image
    return job


def test_a_second_user_gets_no_position_camera_or_check_value_of_an_unreadable_photo(
    users: tuple[FlaskClient, FlaskClient],
) -> None:
    a, b = users
    seen_by_a = _images(_a_reads_everything(a))
    job_b = _qc(b)  # the same app, the same cache, read as B
    seen_by_b = _images(job_b)
    for path in PRIVATE:
        image = seen_by_b[path]
        assert (image["error"] or "").startswith("permission denied"), image
        assert image["cached"] is False
        leaked = {k: image[k] for k in ("lat", "lon", "alt", "taken", "camera") if image[k]}
        assert leaked == {}, f"{path}: {leaked}"
        assert image["checks"] is None, image  # no check values either
    public = seen_by_b[PUBLIC]
    assert public["error"] is None and public["lat"] == seen_by_a[PUBLIC]["lat"]
    assert public["cached"] is False  # B read it as B: A's reading of it is not B's
    assert job_b["result"]["stats"]["cached"] == 0
    assert job_b["result"]["check_stats"]["cached"] == 0, "A's measures were given to B"


def test_a_second_user_gets_no_preview_of_an_unreadable_photo(
    users: tuple[FlaskClient, FlaskClient],
) -> None:
    a, b = users
    job_a = _a_reads_everything(a)
    shown_to_a = _preview(a, job_a, PRIVATE[0])
    assert shown_to_a.status_code == 200 and shown_to_a.mimetype == "image/jpeg"
    with Image.open(io.BytesIO(shown_to_a.data)) as shown:
        assert shown.format == "JPEG"
    job_b = _qc(b)
    for path in PRIVATE:
        refused = _preview(b, job_b, path)
        assert 400 <= refused.status_code < 500, (path, refused.status_code)
        assert refused.data != shown_to_a.data and refused.mimetype == "application/json"
        assert "permission denied" in refused.get_json()["message"]
    assert _preview(b, job_b, PUBLIC).status_code == 200  # what B may read, B may see


def test_the_sites_page_shows_each_user_their_own_last_result(
    users: tuple[FlaskClient, FlaskClient],
) -> None:
    a, b = users
    _a_reads_everything(a)
    a_last = _last_result(a)
    assert "4 of 4 photos fail" in a_last, a_last  # A read all four (alike: near duplicates)
    assert _last_result(b) == "never checked", "B was shown A's last result"
    _qc(b)
    b_last = _last_result(b)
    assert "photos fail (3 unreadable" in b_last, b_last
    assert _last_result(a) == a_last  # and B's run did not replace A's
