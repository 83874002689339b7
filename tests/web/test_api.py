"""The JSON API: sites, starting a scan, polling it, cancelling it; only for its owner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from qc_tool.demo.sftp_server import SftpServerHandle
from qc_tool.services import jobs as jobs_module
from qc_tool.services.logins.sessions import Credentials
from waiting import wait_until

from web.support import (
    OTHER_PASSWORD,
    OTHER_USERNAME,
    api_token,
    context,
    gps_jpeg,
    log_in,
    wait_for_job,
)


def start_scan(client: FlaskClient, site: str) -> str:
    response = client.post(f"/api/sites/{site}/qc", headers={"X-CSRFToken": api_token(client)})
    assert response.status_code == 202, response.get_data(as_text=True)
    job_id: str = response.get_json()["job"]
    assert response.headers["Location"] == f"/api/jobs/{job_id}"
    return job_id


def by_path(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {image["path"]: image for image in result["images"]}


@pytest.mark.parametrize("path", ["/api/sites", "/api/jobs/abc"])
def test_api_needs_a_login(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 401
    assert response.get_json() == {"error": "not_logged_in", "message": "please log in"}


def test_sites_are_listed_with_their_folder_counts(logged_in: FlaskClient) -> None:
    response = logged_in.get("/api/sites")
    assert response.status_code == 200
    assert response.get_json() == [
        {"name": "SITE-A", "folders": 2},
        {"name": "SITE-B", "folders": 1},
    ]


def test_a_scan_runs_to_done_with_exact_counts(logged_in: FlaskClient) -> None:
    job = wait_for_job(logged_in, start_scan(logged_in, "SITE-A"))
    assert job["state"] == "done", job
    assert (job["done"], job["total"], job["gps_points"], job["error"]) == (7, 7, 5, None)
    result = job["result"]
    assert result["site"] == "SITE-A"
    # The photo checks ran after the GPS pass: every readable photo has its checks.
    assert job["checks_state"] == "done" and job["checks"]["done"] == job["checks"]["total"] == 6
    failures = {f["name"]: f.pop("failures") for f in result["folders"]}
    assert set(failures) == {"Antenna A", "Tower base"}
    none: dict[str, Any] = {"in_subfolders": 0, "other_files": 0, "others": [], "not_searched": []}
    notes = {"path": "Tower base/notes.txt", "size": 25}  # web/conftest.py's SITE_A
    assert result["folders"] == [
        {"name": "Antenna A", "images": 3, "gps_points": 3, "missing_gps": 0, "errors": 0, **none},
        {
            "name": "Tower base",
            "images": 4,
            "gps_points": 2,
            "missing_gps": 1,
            "errors": 1,
            **none,
            "other_files": 1,  # notes.txt: not a photo, so counted and listed, never read
            "others": [notes],
        },
    ]
    images = by_path(result)
    assert len(images) == 7 and "Tower base/notes.txt" not in images
    first = images["Antenna A/DJI_0001.JPG"]
    assert first["lat"] == pytest.approx(48.1, abs=1e-6)
    assert first["lon"] == pytest.approx(11.5, abs=1e-6)
    assert first["taken"] == "2024-05-01T10:00:02"
    assert images["Tower base/DJI_0102.JPG"]["gps_note"] == "no GPS tags"
    assert images["Tower base/DJI_0103.JPG"]["error"].startswith("not a JPEG")
    assert result["stats"]["cached"] == 0


def test_a_second_scan_comes_from_the_cache(logged_in: FlaskClient) -> None:
    first = wait_for_job(logged_in, start_scan(logged_in, "SITE-A"))
    second = wait_for_job(logged_in, start_scan(logged_in, "SITE-A"))
    assert second["state"] == "done"
    assert second["result"]["stats"]["cached"] == 7
    assert second["result"]["folders"] == first["result"]["folders"]


def test_a_rescan_of_an_unchanged_site_costs_no_login(
    app: Flask, logged_in: FlaskClient, server: SftpServerHandle, sftp_username: str
) -> None:
    """The job borrows the login's kept connection: the second QC neither logs in nor opens."""
    job_id = start_scan(logged_in, "SITE-A")
    wait_for_job(logged_in, job_id)
    preview = logged_in.get(
        f"/sites/SITE-A/qc/{job_id}/preview?path=Antenna%20A/DJI_0001.JPG&size=thumb",
        headers={"Accept": "application/json"},
    )
    assert preview.status_code == 200  # the login's previews keep a connection
    logins = server.auth_attempts[sftp_username]
    second = wait_for_job(logged_in, start_scan(logged_in, "SITE-A"))
    assert second["state"] == "done"
    assert second["result"]["stats"]["cached"] == 7
    assert server.auth_attempts[sftp_username] == logins
    assert context(app).held.open_count() == 1  # given back for the next click or QC


def test_starting_a_scan_needs_the_csrf_header(
    logged_in: FlaskClient, server: SftpServerHandle
) -> None:
    before = server.connections
    response = logged_in.post("/api/sites/SITE-A/qc")
    assert response.status_code == 400
    assert response.get_json()["error"] == "csrf_failed"
    assert server.connections == before


def test_a_missing_site_fails_the_job_not_the_app(logged_in: FlaskClient) -> None:
    job = wait_for_job(logged_in, start_scan(logged_in, "NO-SUCH-SITE"))
    assert job["state"] == "failed"
    assert "NO-SUCH-SITE" in job["error"]
    assert job["result"] is None


@pytest.mark.parametrize(
    "site",
    [
        "..",
        "%2e%2e",
        "%2E%2E",
        ".ssh",
        "..%5C..%5Cetc",  # backslashes
        "a%5Cb",
        "%00",
        "SITE-A%00",
        "%2Fetc",  # an encoded absolute path
        "..%2F..%2Fetc",
        "/etc",  # "//etc" after the prefix
        "%2e%2e%2f",
    ],
)
def test_path_traversal_is_refused_before_the_server(
    app: Flask, logged_in: FlaskClient, server: SftpServerHandle, site: str
) -> None:
    token = api_token(logged_in)
    before = (server.connections, server.files_opened)
    for path in (f"/api/sites/{site}/qc", f"/sites/{site}/qc"):
        response = logged_in.post(path, headers={"X-CSRFToken": token})
        assert response.status_code in (400, 404), (path, response.status_code)
    assert logged_in.get(f"/sites/{site}/qc/abc").status_code in (400, 404)
    assert (server.connections, server.files_opened) == before
    assert logged_in.get("/api/sites").status_code == 200  # still logged in and working


def test_a_rejected_site_name_says_why(logged_in: FlaskClient) -> None:
    response = logged_in.post("/api/sites/%2e%2e/qc", headers={"X-CSRFToken": api_token(logged_in)})
    assert response.status_code == 400
    assert response.get_json()["error"] == "path_rejected"


def test_another_users_job_is_not_found(app: Flask, logged_in: FlaskClient) -> None:
    job_id = start_scan(logged_in, "SITE-B")
    wait_for_job(logged_in, job_id)
    other = app.test_client()
    assert log_in(other, OTHER_USERNAME, OTHER_PASSWORD).status_code == 303
    token = api_token(other)
    assert other.get(f"/api/jobs/{job_id}").status_code == 404
    assert (
        other.post(f"/api/jobs/{job_id}/cancel", headers={"X-CSRFToken": token}).status_code == 404
    )
    assert other.get(f"/sites/SITE-B/qc/{job_id}").status_code == 404
    assert logged_in.get(f"/api/jobs/{job_id}").status_code == 200  # still its owner's


def test_unknown_job_is_not_found(logged_in: FlaskClient) -> None:
    response = logged_in.get("/api/jobs/does-not-exist")
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


def test_cancel_marks_the_job_cancelled(app: Flask, logged_in: FlaskClient) -> None:
    job_id = start_scan(logged_in, "SITE-A")
    response = logged_in.post(
        f"/api/jobs/{job_id}/cancel", headers={"X-CSRFToken": api_token(logged_in)}
    )
    assert response.status_code == 200
    assert response.get_json()["id"] == job_id
    final = wait_for_job(logged_in, job_id)
    # A tiny scan may finish before the cancel lands; either way it ends and the flag is set.
    assert final["state"] in ("cancelled", "done")
    assert _job(app, logged_in, job_id).cancelled()


def _job(app: Flask, client: FlaskClient, job_id: str) -> Any:
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None
    return context(app).jobs.get(job_id, serializer.loads(cookie.value)["sid"])


def test_unknown_api_paths_answer_json(logged_in: FlaskClient) -> None:
    response = logged_in.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


def test_a_second_qc_of_a_site_by_the_same_user_waits_for_the_first_and_reads_its_cache(
    app: Flask, logged_in: FlaskClient, sftp_username: str, sftp_password: str
) -> None:
    other = app.test_client()  # the same user, logged in a second time (another browser)
    assert log_in(other, sftp_username, sftp_password).status_code == 303
    first, second = start_scan(logged_in, "SITE-A"), start_scan(other, "SITE-A")
    done = [wait_for_job(logged_in, first), wait_for_job(other, second)]
    assert [d["state"] for d in done] == ["done", "done"]
    stats = [(d["result"]["stats"]["cached"], d["result"]["check_stats"]["cached"]) for d in done]
    assert stats == [(0, 0), (7, 6)]  # the second read nothing the first had read


def test_one_users_forty_starts_are_capped_and_another_users_qc_runs_meanwhile(
    app: Flask,
    logged_in: FlaskClient,
    sites_dir: Path,
    sftp_username: str,
    sftp_password: str,
) -> None:
    (sites_dir / "SITE-C" / "F").mkdir(parents=True)
    (sites_dir / "SITE-C" / "F" / "DJI_0001.JPG").write_bytes(gps_jpeg(48.2, 11.6))
    ctx = context(app)
    creds = Credentials(sftp_username, sftp_password)
    held = [ctx.site_lock_key(creds, site) for site in ("SITE-A", "SITE-B")]
    for key in held:  # as if another QC of the site were running: the first user's jobs wait
        assert ctx.site_locks.acquire(key, lambda: False)
    try:
        token = api_token(logged_in)
        sites = ["SITE-A", "SITE-B", *(f"SITE-{n}" for n in range(38))]
        answers = [
            logged_in.post(f"/api/sites/{site}/qc", headers={"X-CSRFToken": token})
            for site in sites
        ]
        assert [a.status_code for a in answers] == [202] * 2 + [429] * 38
        mine = [a.get_json()["job"] for a in answers[:2]]
        assert answers[2].get_json() == {
            "error": "too_many_jobs",
            "message": "You already have 2 QC runs going (SITE-A, SITE-B); wait for one to "
            "finish, or cancel one, then start this one again.",
        }
        assert int(answers[2].headers["Retry-After"]) > 0
        page = logged_in.post("/sites/SITE-X/qc", data={"csrf_token": token})  # the View QC form
        assert page.status_code == 429 and "2 QC runs going" in page.get_data(as_text=True)
        assert start_scan(logged_in, "SITE-A") == mine[0]  # View QC again: the same QC
        other = app.test_client()
        assert log_in(other, OTHER_USERNAME, OTHER_PASSWORD).status_code == 303
        theirs = wait_for_job(other, start_scan(other, "SITE-C"))
        assert (theirs["state"], theirs["gps_points"]) == ("done", 1)
        for job_id in mine:  # still held, while the other user's QC ran to its end
            state = logged_in.get(f"/api/jobs/{job_id}/state").get_json()
            assert state["state"] == "running" and state["waiting"].startswith("another QC")
    finally:
        for key in held:
            ctx.site_locks.release(key)
    assert [wait_for_job(logged_in, job_id)["state"] for job_id in mine] == ["done", "done"]


def test_one_users_many_jobs_never_evict_another_users_finished_job(
    app: Flask, logged_in: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs_module, "MAX_JOBS_KEPT", 4)  # small, so six jobs go past it
    monkeypatch.setattr(jobs_module, "KEEP_PER_LOGIN", 2)
    other = app.test_client()
    assert log_in(other, OTHER_USERNAME, OTHER_PASSWORD).status_code == 303
    theirs = start_scan(other, "SITE-B")
    assert wait_for_job(other, theirs)["state"] == "done"
    mine = []
    for _ in range(6):
        mine.append(start_scan(logged_in, "SITE-A"))
        assert wait_for_job(logged_in, mine[-1])["state"] == "done"
    paths = [
        f"/api/jobs/{theirs}",
        f"/sites/SITE-B/qc/{theirs}",
        f"/sites/SITE-B/qc/{theirs}/export/csv",
    ]
    assert [other.get(path).status_code for path in paths] == [200] * 3
    # The user's own oldest go, and only those; the last goes just after its job says it is done.
    wait_until(
        lambda: [_status(logged_in, job_id) for job_id in mine] == [404] * 4 + [200] * 2,
        message="the user's four oldest jobs to go and the newest two to stay",
    )
    assert [other.get(path).status_code for path in paths] == [200] * 3


def _status(client: FlaskClient, job_id: str) -> int:
    return client.get(f"/api/jobs/{job_id}/state").status_code
