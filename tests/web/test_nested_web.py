"""A drone card copied as it is, through the web app: photos below the folders are checked,
previewed, exported and cached by their deeper paths; the result document, the QC page's data
and the printable report show how many came from subfolders and the other files."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from integration.test_nested_folders import OTHERS, PHOTOS, SITE, add_links, make_card
from qc_tool.demo.sftp_server import SftpServerHandle

from web.support import api_token, wait_for_job

DEEP_PHOTO = "Card/DCIM/100MEDIA/DJI_0001.JPG"


@pytest.fixture
def sites_dir(sftp_root: Path) -> Path:
    """``/sites`` on the server: the card site, links and all."""
    make_card(sftp_root / "sites" / SITE)
    add_links(sftp_root / "sites" / SITE)
    return sftp_root / "sites"


def _qc(client: FlaskClient) -> tuple[str, dict[str, object]]:
    response = client.post(f"/api/sites/{SITE}/qc", headers={"X-CSRFToken": api_token(client)})
    assert response.status_code == 202, response.get_data(as_text=True)
    job_id = response.get_json()["job"]
    job = wait_for_job(client, job_id)
    assert job["state"] == "done" and job["checks_state"] == "done", job
    return job_id, job


def test_photos_below_a_folder_are_checked_previewed_exported_and_cached(
    logged_in: FlaskClient, server: SftpServerHandle
) -> None:
    job_id, job = _qc(logged_in)
    result = job["result"]
    assert isinstance(result, dict)
    card = next(f for f in result["folders"] if f["name"] == "Card")
    assert (card["images"], card["in_subfolders"], card["other_files"]) == (8, 7, 3)
    images = {i["path"]: i for i in result["images"]}
    assert set(images) == {*PHOTOS, "Plain/DJI_0001.JPG"}
    assert images[DEEP_PHOTO]["checks"] is not None  # read and measured by its deeper path

    preview = logged_in.get(
        f"/sites/{SITE}/qc/{job_id}/preview", query_string={"path": DEEP_PHOTO, "size": "thumb"}
    )
    assert preview.status_code == 200 and preview.mimetype.startswith("image/")
    opened = server.files_opened
    through_link = logged_in.get(
        f"/sites/{SITE}/qc/{job_id}/preview",
        query_string={"path": "Card/DCIM/100MEDIA/Loop/TOP_0001.JPG"},
        headers={"Accept": "application/json"},
    )
    assert through_link.status_code == 404  # never listed, so never asked for
    assert server.files_opened == opened

    for kind in ("csv", "geojson", "kml", "gpx", "odm", "rejected", "report"):
        export = logged_in.get(f"/sites/{SITE}/qc/{job_id}/export/{kind}")
        assert export.status_code == 200, (kind, export.get_data(as_text=True))
    rows = csv.DictReader(io.StringIO(logged_in.get(f"/sites/{SITE}/qc/{job_id}/export/csv").text))
    assert {r["path"]: r["folder"] for r in rows}[DEEP_PHOTO] == "Card"
    report = logged_in.get(f"/sites/{SITE}/qc/{job_id}/export/report").text
    assert '<th class="num">In subfolders</th>' in report
    for path in OTHERS:
        assert f"<li>{path} (" in report
    assert "Card/DCIM/100MEDIA/Loop: not searched, a symbolic link: not followed" in report

    _, again = _qc(logged_in)  # the second QC takes every photo from the cache
    stats = again["result"]["stats"]  # type: ignore[index]
    assert stats["cached"] == len(PHOTOS) + 1
