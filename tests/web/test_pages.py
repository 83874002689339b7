"""The HTML pages: sites with a "View QC" button, the QC page while running and when done."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from qc_tool.demo.sftp_server import SftpServerHandle

from web.support import MakeApp, api_token, csrf_token, log_in, wait_for_job


def view_qc(client: FlaskClient, site: str) -> str:
    """Press the site's "View QC" button; returns the job id of the QC page it leads to."""
    token = csrf_token(client, "/")
    response = client.post(f"/sites/{site}/qc", data={"csrf_token": token})
    assert response.status_code == 303
    match = re.fullmatch(rf"/sites/{site}/qc/([\w-]+)", response.headers["Location"])
    assert match, response.headers["Location"]
    return match.group(1)


def test_sites_page_lists_sites_with_folder_counts_and_buttons(logged_in: FlaskClient) -> None:
    page = logged_in.get("/").get_data(as_text=True)
    rows = re.findall(r'<td class="site-name">([^<]+)</td>\s*<td class="num">(\d+)</td>', page)
    assert rows == [("SITE-A", "2"), ("SITE-B", "1")]
    assert page.count("View QC") == 2
    assert 'action="/sites/SITE-A/qc"' in page
    assert "/sites" in page  # the sites root is named


def test_view_qc_starts_a_scan_and_its_page_shows_the_results(logged_in: FlaskClient) -> None:
    job_id = view_qc(logged_in, "SITE-A")
    assert wait_for_job(logged_in, job_id)["state"] == "done"
    page = logged_in.get(f"/sites/SITE-A/qc/{job_id}").get_data(as_text=True)
    totals = {
        label: value
        for value, label in re.findall(
            r'<span class="value">([^<]+)</span><span class="label">([^<]+)</span>', page
        )
    }
    assert totals["images"] == "7"
    assert totals["GPS points"] == "5"
    assert totals["missing GPS"] == "1"
    assert totals["unreadable"] == "1"
    assert totals["connections"] == "1"
    assert totals["from cache"] == "0"
    assert {"scan time", "images/s"} <= set(totals)
    assert '<tr data-folder="Antenna A">' in page and '<tr data-folder="Tower base">' in page
    assert "Tower base/DJI_0102.JPG" in page and "no GPS tags" in page
    assert "Tower base/DJI_0103.JPG" in page and "not a JPEG" in page
    problems = page.split('id="problems"', 1)[1].split("</table>", 1)[0]
    assert "Antenna A/DJI_0001.JPG" not in problems  # only the problem images are listed
    assert 'id="map"' in page and "/vendor/leaflet/leaflet.js" in page
    assert 'data-tile-url="https://tile.openstreetmap.org/{z}/{x}/{y}.png"' in page
    # The photo checks followed: the six readable photos share one picture, so each is a
    # near-duplicate of the others, and the page says so per photo and per folder.
    assert "Photo checks: 6 of 6 photos failed" in page
    failed = page.split('id="failed-photos"', 1)[1].split("</table>", 1)[0]
    assert failed.count("<tr data-path=") == 6 and "Near-duplicate of" in failed
    assert totals["photos failing checks"] == "6"


def test_with_checks_off_the_page_shows_the_gps_results_only(
    make_app: MakeApp, sftp_username: str, sftp_password: str
) -> None:
    client = make_app(QC_CHECKS=0).test_client()
    log_in(client, sftp_username, sftp_password)
    job_id = view_qc(client, "SITE-A")
    job = wait_for_job(client, job_id)
    assert (job["state"], job["checks_state"]) == ("done", "off")
    page = client.get(f"/sites/SITE-A/qc/{job_id}").get_data(as_text=True)
    assert 'id="map"' in page and 'id="checks"' not in page and "Photo checks" not in page


def test_qc_page_of_a_running_scan_shows_progress_and_polls(
    logged_in: FlaskClient, server: SftpServerHandle
) -> None:
    job_id = view_qc(logged_in, "SITE-A")
    page = logged_in.get(f"/sites/SITE-A/qc/{job_id}").get_data(as_text=True)
    if 'data-state="running"' in page:  # the tiny scan may already be over
        assert '<progress id="progress-bar"' in page
        assert "/static/js/progress.js" in page
        assert f'data-job-url="/api/jobs/{job_id}/state"' in page
    wait_for_job(logged_in, job_id)


def test_failed_scan_page_shows_the_error_and_a_rescan_button(logged_in: FlaskClient) -> None:
    job_id = view_qc(logged_in, "NO-SUCH-SITE")
    wait_for_job(logged_in, job_id)
    page = logged_in.get(f"/sites/NO-SUCH-SITE/qc/{job_id}").get_data(as_text=True)
    assert "The scan failed" in page and "NO-SUCH-SITE" in page
    assert "Scan again" in page


def test_sites_page_links_the_last_scan(logged_in: FlaskClient) -> None:
    job_id = view_qc(logged_in, "SITE-B")
    wait_for_job(logged_in, job_id)
    assert f'href="/sites/SITE-B/qc/{job_id}">done</a>' in logged_in.get("/").get_data(as_text=True)


def test_a_job_is_only_shown_under_its_own_site(logged_in: FlaskClient) -> None:
    job_id = view_qc(logged_in, "SITE-B")
    wait_for_job(logged_in, job_id)
    assert logged_in.get(f"/sites/SITE-A/qc/{job_id}").status_code == 404


def test_view_qc_needs_a_csrf_token(logged_in: FlaskClient, server: SftpServerHandle) -> None:
    before = server.connections
    response = logged_in.post("/sites/SITE-A/qc")
    assert response.status_code == 400
    assert "text/html" in response.content_type
    assert server.connections == before


def test_rejected_site_name_gets_an_error_page(logged_in: FlaskClient) -> None:
    response = logged_in.post(
        "/sites/%2e%2e/qc",
        data={"csrf_token": api_token(logged_in)},
        headers={"Accept": "text/html"},
    )
    assert response.status_code == 400
    assert "text/html" in response.content_type
    assert "That request was refused" in response.get_data(as_text=True)


def test_json_clients_get_json_errors_on_pages_too(logged_in: FlaskClient) -> None:
    response = logged_in.get("/sites/SITE-A/qc/nope", headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


def test_leaflet_is_served_by_the_app(client: FlaskClient) -> None:
    js = client.get("/vendor/leaflet/leaflet.js")
    assert js.status_code == 200 and b"Leaflet" in js.data
    assert client.get("/vendor/leaflet/leaflet.css").status_code == 200
    assert client.get("/vendor/leaflet/../../../__init__.py").status_code == 404


def test_static_files_are_served(client: FlaskClient) -> None:
    for name in ("css/app.css", "js/progress.js", "js/map.js"):
        assert client.get(f"/static/{name}").status_code == 200, name
