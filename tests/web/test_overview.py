"""The sites page shows each site's last QC from the cache; the site profile checks folders."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from web.support import MakeApp, api_token, log_in, wait_for_job


def run_qc(client: FlaskClient, site: str) -> dict[str, object]:
    response = client.post(f"/api/sites/{site}/qc", headers={"X-CSRFToken": api_token(client)})
    assert response.status_code == 202
    return wait_for_job(client, response.get_json()["job"])


def last_result(page: str, site: str) -> str:
    row = page.split(f'<td class="site-name">{site}</td>', 1)[1].split("</tr>", 1)[0]
    cell = row.split('<td class="last-run">', 1)[1].split("</td>", 1)[0]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", cell)).strip()


def test_the_last_result_is_shown_from_the_cache_in_a_later_session(
    make_app: MakeApp, sftp_username: str, sftp_password: str
) -> None:
    first = make_app().test_client()
    log_in(first, sftp_username, sftp_password)
    assert last_result(first.get("/").get_data(as_text=True), "SITE-A") == "never checked"
    job = run_qc(first, "SITE-A")
    assert job["state"] == "done"
    verdict = job["result"]["verdict"]  # type: ignore[index]

    # A new app on the same cache (a restart) and a new login: nothing is scanned again.
    later = make_app().test_client()
    log_in(later, sftp_username, sftp_password)
    text = last_result(later.get("/").get_data(as_text=True), "SITE-A")
    # The sites page shows the verdict the QC page showed, word for word.
    assert verdict["label"] == "Re-fly needed"
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d UTC: Re-fly needed " + re.escape(verdict["detail"]), text
    ), text
    assert last_result(later.get("/").get_data(as_text=True), "SITE-B") == "never checked"


def test_the_site_profile_calls_out_missing_and_short_folders(
    make_app: MakeApp, sftp_username: str, sftp_password: str, tmp_path: Path
) -> None:
    profile = tmp_path / "site.json"
    profile.write_text(
        json.dumps({"folders": ["Antenna *", {"name": "Tower base", "min_images": 5}, "Cabinet"]})
    )
    client = make_app(QC_SITE_PROFILE=profile, QC_CHECKS=0).test_client()
    log_in(client, sftp_username, sftp_password)
    structure = run_qc(client, "SITE-A")["result"]["structure"]  # type: ignore[index]
    assert structure == {
        "ok": False,
        "missing": ["Cabinet"],
        "too_few": [{"folder": "Tower base", "images": 4, "minimum": 5}],
        "unexpected": [],
        "messages": [
            "Missing folder: Cabinet",
            "Folder Tower base has 4 photos (at least 5 expected)",
        ],
    }
    page = client.get("/").get_data(as_text=True)
    assert "1 expected folder missing; 1 folder with too few photos" in last_result(page, "SITE-A")


def test_a_bad_site_profile_stops_start_up_with_the_reason(
    make_app: MakeApp, tmp_path: Path
) -> None:
    profile = tmp_path / "site.json"
    profile.write_text('{"folders": "Tower"}')
    with pytest.raises(Exception, match="cannot use the site profile .*folders must be a list"):
        make_app(QC_SITE_PROFILE=profile)
