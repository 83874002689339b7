"""Odd names through the web app: a site whose name is not UTF-8 is shown escaped and cannot be
opened, the other sites stay usable; a QC skips odd folders and files with their reasons and
every page, document and export shows them escaped."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from names_support import BAD_FILES, BAD_FOLDERS, BAD_SITE_SHOWN, OK_SITE, SITE, make_odd_sites
from qc_tool.demo.sftp_server import SftpServerHandle

from web.support import api_token, wait_for_job

CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # not tab, LF or CR
NOT_UTF8 = "the name is not UTF-8 (shown escaped)"


@pytest.fixture
def sites_dir(sftp_root: Path) -> Path:
    """``/sites`` on the server: the odd-names tree instead of the usual two sites."""
    make_odd_sites(sftp_root / "sites")
    return sftp_root / "sites"


def test_the_sites_page_shows_a_site_whose_name_is_not_utf8_escaped_and_not_clickable(
    logged_in: FlaskClient,
) -> None:
    response = logged_in.get("/")
    assert response.status_code == 200, response.get_data(as_text=True)
    page = response.get_data(as_text=True)
    assert f'<td class="site-name">{BAD_SITE_SHOWN}</td>' in page
    assert NOT_UTF8 in page
    forms = re.findall(r'<form method="post" action="([^"]+)"', page)
    assert forms == [f"/sites/{SITE}/qc", f"/sites/{OK_SITE}/qc"]


def test_the_sites_api_lists_a_site_whose_name_is_not_utf8_with_the_reason(
    logged_in: FlaskClient,
) -> None:
    response = logged_in.get("/api/sites")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == [
        {"name": SITE, "folders": 6},
        {"name": OK_SITE, "folders": 1},
        {"name": BAD_SITE_SHOWN, "folders": 0, "problem": NOT_UTF8},
    ]


def test_the_escaped_site_name_cannot_be_started(
    logged_in: FlaskClient, server: SftpServerHandle
) -> None:
    before = server.connections
    response = logged_in.post(
        "/api/sites/%5Cxe9t%5Cxe9/qc", headers={"X-CSRFToken": api_token(logged_in)}
    )
    assert response.status_code == 400
    assert server.connections == before


def test_a_qc_skips_odd_folders_and_files_and_every_rendering_shows_them_escaped(
    logged_in: FlaskClient, server: SftpServerHandle
) -> None:
    response = logged_in.post(
        f"/api/sites/{SITE}/qc", headers={"X-CSRFToken": api_token(logged_in)}
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    job_id = response.get_json()["job"]
    job = wait_for_job(logged_in, job_id)
    assert job["state"] == "done" and job["checks_state"] == "done", job
    result = job["result"]
    folders = {f["name"]: f for f in result["folders"]}
    for shown, reason in BAD_FOLDERS.values():
        assert folders[shown]["skipped"] == reason
    assert "skipped" not in folders["Tower"] and folders["Tower"]["images"] == 6
    images = {i["path"]: i for i in result["images"]}
    for shown, reason in BAD_FILES.values():
        assert images[f"Tower/{shown}"]["error"] == reason
        assert images[f"Tower/{shown}"]["checks"] is None  # never read, so never checked
    assert job["checks"]["done"] == 4  # the four good photos

    # The QC page, the preview of an odd file (refused without opening it), every export.
    assert logged_in.get(f"/sites/{SITE}/qc/{job_id}").status_code == 200
    opened = server.files_opened
    shown = BAD_FILES[b"\xff\xfe\xc0.JPG"][0]
    preview = logged_in.get(
        f"/sites/{SITE}/qc/{job_id}/preview",
        query_string={"path": f"Tower/{shown}"},
        headers={"Accept": "application/json"},
    )
    assert preview.status_code == 422 and NOT_UTF8 in preview.get_json()["message"]
    for shown, reason in BAD_FILES.values():  # every odd name: the same clear refusal
        for accept in ("image/avif,image/webp,*/*", "text/html"):  # as an <img>, as a page
            refused = logged_in.get(
                f"/sites/{SITE}/qc/{job_id}/preview",
                query_string={"path": f"Tower/{shown}"},
                headers={"Accept": accept},
            )
            assert refused.status_code == 422, (shown, accept, refused.get_data(as_text=True))
    assert server.files_opened == opened
    for kind in ("csv", "geojson", "kml", "gpx", "odm", "rejected", "report"):
        export = logged_in.get(f"/sites/{SITE}/qc/{job_id}/export/{kind}")
        assert export.status_code == 200, (kind, export.get_data(as_text=True))
        text = export.get_data(as_text=True)
        assert not CONTROL.search(text), (kind, CONTROL.search(text))
    rejected = logged_in.get(f"/sites/{SITE}/qc/{job_id}/export/rejected").get_data(as_text=True)
    for shown, reason in BAD_FILES.values():
        assert f"Tower/{shown}" in rejected and reason in rejected
    report = logged_in.get(f"/sites/{SITE}/qc/{job_id}/export/report").get_data(as_text=True)
    for shown, reason in BAD_FOLDERS.values():
        assert f'<tr class="skipped"><td>{shown}</td>' in report
        assert f"skipped: {reason}" in report
    geojson = json.loads(logged_in.get(f"/sites/{SITE}/qc/{job_id}/export/geojson").get_data())
    assert len([f for f in geojson["features"] if f["geometry"]["type"] == "Point"]) == 4
