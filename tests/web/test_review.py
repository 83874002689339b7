"""Previews and exports of a job: only its owner, only photos it listed, every format parses."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import xml.etree.ElementTree as ET
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from qc_tool.demo.sftp_server import SftpServerHandle

from web.support import (
    OTHER_PASSWORD,
    OTHER_USERNAME,
    api_token,
    context,
    log_in,
    wait_for_job,
)


def finished_job(client: FlaskClient, site: str = "SITE-A") -> str:
    response = client.post(f"/api/sites/{site}/qc", headers={"X-CSRFToken": api_token(client)})
    job_id: str = response.get_json()["job"]
    assert wait_for_job(client, job_id)["state"] == "done"
    return job_id


JSON = {"Accept": "application/json"}  # errors as JSON, as a script fetching them asks


def preview_url(job_id: str, path: str, size: str = "large", site: str = "SITE-A") -> str:
    return f"/sites/{site}/qc/{job_id}/preview?path={quote(path)}&size={size}"


def test_a_preview_is_a_small_jpeg_and_one_login_serves_many(
    logged_in: FlaskClient, server: SftpServerHandle, sftp_username: str
) -> None:
    job_id = finished_job(logged_in)
    logins = server.auth_attempts[sftp_username]
    for path in ("Antenna A/DJI_0001.JPG", "Antenna A/DJI_0002.JPG", "Tower base/DJI_0100.JPG"):
        response = logged_in.get(preview_url(job_id, path), headers=JSON)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.mimetype == "image/jpeg"
        assert response.headers["Cache-Control"] == "private, max-age=3600"
        with Image.open(io.BytesIO(response.data)) as image:
            assert image.format == "JPEG" and image.size == (32, 24)  # never enlarged
    assert server.auth_attempts[sftp_username] == logins + 1  # the kept connection


def test_a_file_that_is_not_an_image_gets_a_clear_error(logged_in: FlaskClient) -> None:
    job_id = finished_job(logged_in)
    response = logged_in.get(preview_url(job_id, "Tower base/DJI_0103.JPG"), headers=JSON)
    assert response.status_code == 422
    assert "no image to show" in response.get_json()["message"]


@pytest.mark.parametrize(
    "path",
    [
        "Antenna A/../Tower base/DJI_0100.JPG",
        "../SITE-B/Folder 1/DJI_0001.JPG",
        "/etc/passwd",
        "Antenna A/DJI_0001.JPG\x00.png",
        "Antenna A\\DJI_0001.JPG",
        "Tower base/notes.txt",
        "Antenna A/NOT_LISTED.JPG",
    ],
)
def test_only_a_photo_the_job_listed_can_be_previewed(
    logged_in: FlaskClient, server: SftpServerHandle, path: str
) -> None:
    job_id = finished_job(logged_in)
    opened = server.files_opened
    response = logged_in.get(preview_url(job_id, path), headers=JSON)
    assert response.status_code == 404 and response.get_json()["error"] == "not_found"
    assert server.files_opened == opened  # nothing was asked of the server


def test_a_bad_size_or_a_missing_path_is_a_400(logged_in: FlaskClient) -> None:
    job_id = finished_job(logged_in)
    assert (
        logged_in.get(
            preview_url(job_id, "Antenna A/DJI_0001.JPG", "huge"), headers=JSON
        ).status_code
        == 400
    )
    assert logged_in.get(f"/sites/SITE-A/qc/{job_id}/preview", headers=JSON).status_code == 400


def test_another_users_job_has_no_previews_or_exports(logged_in: FlaskClient) -> None:
    job_id = finished_job(logged_in)
    other = logged_in.application.test_client()
    log_in(other, OTHER_USERNAME, OTHER_PASSWORD)
    assert other.get(preview_url(job_id, "Antenna A/DJI_0001.JPG"), headers=JSON).status_code == 404
    assert other.get(f"/sites/SITE-A/qc/{job_id}/export/csv").status_code == 404
    assert logged_in.get(f"/sites/SITE-B/qc/{job_id}/export/csv").status_code == 404


def test_every_export_downloads_and_parses(logged_in: FlaskClient) -> None:
    job_id = finished_job(logged_in)

    def get(kind: str) -> tuple[str, str]:
        response = logged_in.get(f"/sites/SITE-A/qc/{job_id}/export/{kind}")
        assert response.status_code == 200, response.get_data(as_text=True)
        disposition = response.headers["Content-Disposition"]
        # The printable report opens in the browser; every other format is a file.
        served = "inline" if kind == "report" else "attachment"
        assert disposition.startswith(f'{served}; filename="SITE-A-')
        return response.get_data(as_text=True), disposition

    rows = list(csv.DictReader(io.StringIO(get("csv")[0])))
    assert len(rows) == 7 and {r["path"] for r in rows} >= {"Tower base/DJI_0103.JPG"}
    geojson = json.loads(get("geojson")[0])
    points = [f for f in geojson["features"] if f["geometry"]["type"] == "Point"]
    assert len(points) == 5
    kml = ET.fromstring(get("kml")[0])
    assert len(kml.findall(".//{http://www.opengis.net/kml/2.2}Placemark")) >= 5
    gpx = ET.fromstring(get("gpx")[0])
    assert len(gpx.findall(".//{http://www.topografix.com/GPX/1/1}trkpt")) == 5
    geo_txt = get("odm")[0].splitlines()
    assert geo_txt[0] == "EPSG:4326"
    rejected = get("rejected")[0]
    assert "Tower base/DJI_0103.JPG" in rejected
    report, _ = get("report")
    assert "<html" in report.lower() and "SITE-A" in report


def test_the_printable_report_brings_its_own_strict_policy(logged_in: FlaskClient) -> None:
    job_id = finished_job(logged_in)
    response = logged_in.get(f"/sites/SITE-A/qc/{job_id}/export/report")
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy.replace("'none'", "")


def test_an_unknown_export_is_a_404_naming_the_formats(logged_in: FlaskClient) -> None:
    job_id = finished_job(logged_in)
    response = logged_in.get(f"/sites/SITE-A/qc/{job_id}/export/docx", headers=JSON)
    assert response.status_code == 404
    assert "geojson" in response.get_json()["message"]


def test_a_preview_finding_every_slot_taken_is_told_when_to_retry(
    app: Flask, logged_in: FlaskClient
) -> None:
    job_id = finished_job(logged_in)
    slots = context(app).previews.slots
    slots.wait_s = 0.0  # no waiting in the test: every slot is already taken
    with contextlib.ExitStack() as taken:
        for _ in range(slots.slots):
            taken.enter_context(slots.hold())
        busy = logged_in.get(preview_url(job_id, "Antenna A/DJI_0001.JPG"), headers=JSON)
    assert busy.status_code == 503 and busy.get_json()["error"] == "busy"
    assert busy.headers["Retry-After"] == "2"
    again = logged_in.get(preview_url(job_id, "Antenna A/DJI_0001.JPG"), headers=JSON)
    assert again.status_code == 200 and again.mimetype == "image/jpeg"
