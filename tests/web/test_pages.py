"""The HTML pages: sites with a "View QC" button, the QC page while running and when done."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from qc_tool import FRONTEND_DIR
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


def page_data(page: str) -> dict[str, str]:
    """The ``data-`` attributes of the QC page's root element: where its script reads from."""
    root = re.search(r'<div id="qc"([^>]*)>', page)
    assert root, "no QC root element"
    return dict(re.findall(r'data-([\w-]+)="([^"]*)"', root.group(1)))


def test_view_qc_starts_a_scan_and_its_page_shows_the_results(logged_in: FlaskClient) -> None:
    job_id = view_qc(logged_in, "SITE-A")
    assert wait_for_job(logged_in, job_id)["state"] == "done"
    page = logged_in.get(f"/sites/SITE-A/qc/{job_id}").get_data(as_text=True)
    # The page is drawn by its script from the job's document (the same code while the scan
    # runs and after it); tests/browser/ check what it shows. Here: it is pointed at this job.
    data = page_data(page)
    assert data["state"] == "done" and data["scan-ready"] == "true"
    assert data["result-url"] == f"/api/jobs/{job_id}"
    assert data["events-url"] == f"/api/jobs/{job_id}/events"
    assert data["preview-url"] == f"/sites/SITE-A/qc/{job_id}/preview"
    assert data["export-url"] == f"/sites/SITE-A/qc/{job_id}/export/"
    assert 'id="map"' in page and "/vendor/leaflet/leaflet.js" in page
    assert '<script type="module" src="/static/js/qc/main.js"></script>' in page
    assert 'data-tile-url="https://tile.openstreetmap.org/{z}/{x}/{y}.png"' in page
    assert '<progress id="progress-bar"' not in page  # a finished job has no progress
    # What the page draws: the document at its result URL, with the totals and the checks.
    job = logged_in.get(data["result-url"]).get_json()
    folders = {f["name"]: f for f in job["result"]["folders"]}
    assert sum(f["images"] for f in folders.values()) == 7
    assert sum(f["gps_points"] for f in folders.values()) == 5
    assert sum(f["missing_gps"] for f in folders.values()) == 1
    assert sum(f["errors"] for f in folders.values()) == 1
    assert set(folders) == {"Antenna A", "Tower base"}
    # The photo checks followed: the six readable photos share one picture, so each is a
    # near-duplicate of the others, and the document says so per photo and per folder.
    failed = [i for i in job["result"]["images"] if i["checks"] and not i["checks"]["valid"]]
    assert len(failed) == 6
    assert all(
        any(o["message"].startswith("Near-duplicate of") for o in i["checks"]["outcomes"])
        for i in failed
    )
    assert folders["Antenna A"]["failures"].get("near_duplicate") == 3


def test_with_checks_off_the_page_shows_the_gps_results_only(
    make_app: MakeApp, sftp_username: str, sftp_password: str
) -> None:
    client = make_app(QC_CHECKS=0).test_client()
    log_in(client, sftp_username, sftp_password)
    job_id = view_qc(client, "SITE-A")
    job = wait_for_job(client, job_id)
    assert (job["state"], job["checks_state"]) == ("done", "off")
    page = client.get(f"/sites/SITE-A/qc/{job_id}").get_data(as_text=True)
    assert 'id="map"' in page and page_data(page)["checks-state"] == "off"
    assert "check_stats" not in job["result"]  # so the page draws no checks section
    assert all(not image.get("checks") for image in job["result"]["images"])


def test_qc_page_of_a_running_scan_shows_progress_and_follows_the_events(
    logged_in: FlaskClient, server: SftpServerHandle
) -> None:
    job_id = view_qc(logged_in, "SITE-A")
    page = logged_in.get(f"/sites/SITE-A/qc/{job_id}").get_data(as_text=True)
    if 'data-state="running"' in page:  # the tiny scan may already be over
        assert '<progress id="progress-bar"' in page
        assert 'id="cancel"' in page
        assert '<form id="rescan"' in page and "hidden>" in page.split('<form id="rescan"')[1]
        data = page_data(page)
        assert data["events-url"] == f"/api/jobs/{job_id}/events"
        assert data["state-url"] == f"/api/jobs/{job_id}/state"  # the polling fallback
        assert data["cancel-url"] == f"/api/jobs/{job_id}/cancel"
    wait_for_job(logged_in, job_id)


def test_failed_scan_page_offers_a_rescan_and_its_job_says_why(logged_in: FlaskClient) -> None:
    job_id = view_qc(logged_in, "NO-SUCH-SITE")
    wait_for_job(logged_in, job_id)
    page = logged_in.get(f"/sites/NO-SUCH-SITE/qc/{job_id}").get_data(as_text=True)
    data = page_data(page)
    assert (data["state"], data["scan-ready"]) == ("failed", "false")
    assert "NO-SUCH-SITE" in page and "Scan again" in page
    rescan = page.split('<form id="rescan"', 1)[1].split(">", 1)[0]
    assert "hidden" not in rescan
    # The page shows the job's error, which names the site that is not there.
    job = logged_in.get(data["result-url"]).get_json()
    assert job["state"] == "failed" and job["result"] is None
    assert "NO-SUCH-SITE" in job["error"]


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
    assert client.get("/static/css/app.css").status_code == 200
    modules = sorted((FRONTEND_DIR / "static" / "js" / "qc").glob("*.js"))
    assert modules
    for module in modules:
        response = client.get(f"/static/js/qc/{module.name}")
        assert response.status_code == 200, module.name
        # Browsers refuse a module script served with a non-JavaScript type.
        assert response.mimetype == "text/javascript", (module.name, response.mimetype)


def test_the_qc_modules_import_only_each_other() -> None:
    """Every import of the page's modules resolves to a file that is there (no build step)."""
    folder = FRONTEND_DIR / "static" / "js" / "qc"
    for module in folder.glob("*.js"):
        for target in re.findall(r'\bfrom "([^"]+)";', module.read_text()):
            assert target.startswith("./"), f"{module.name} imports {target} from outside"
            assert (folder / target).is_file(), f"{module.name} imports missing {target}"
