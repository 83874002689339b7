"""The job's Server-Sent Events: every image and stage, resumable by Last-Event-ID, owner only."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from web.support import OTHER_PASSWORD, OTHER_USERNAME, MakeApp, api_token, log_in, wait_for_job


def start(client: FlaskClient, site: str = "SITE-A") -> str:
    response = client.post(f"/api/sites/{site}/qc", headers={"X-CSRFToken": api_token(client)})
    assert response.status_code == 202
    job_id: str = response.get_json()["job"]
    return job_id


def parse(stream: str) -> list[dict[str, Any]]:
    """The events of an event-stream body, as the browser's EventSource would see them."""
    events = []
    for block in stream.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line.startswith(":") or ":" not in line:
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        if "data" in fields:
            events.append(
                {
                    "id": int(fields["id"]) if "id" in fields else None,
                    "event": fields.get("event", "message"),
                    "data": json.loads(fields["data"]),
                }
            )
    return events


def test_the_stream_carries_every_image_and_stage_then_ends(logged_in: FlaskClient) -> None:
    job_id = start(logged_in)
    wait_for_job(logged_in, job_id)
    response = logged_in.get(f"/api/jobs/{job_id}/events")
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-store"
    events = parse(response.get_data(as_text=True))
    kinds = [e["event"] for e in events]
    images = [e["data"] for e in events if e["event"] == "image"]
    assert sorted(i["path"] for i in images) == sorted(
        [f"Antenna A/DJI_000{n}.JPG" for n in (1, 2, 3)]
        + [f"Tower base/DJI_010{n}.JPG" for n in (0, 1, 2, 3)]
    )
    assert sum(1 for i in images if i["lat"] is not None) == 5
    assert kinds.count("checked") == 6  # one per readable photo, as each is measured
    assert kinds.index("scan") < kinds.index("checks") < len(kinds) - 2
    assert kinds[-2:] == ["state", "end"] and events[-2]["data"]["state"] == "done"
    assert events[-2]["data"]["folders"]["Tower base"] == {"done": 4, "total": 4, "gps_points": 2}
    ids = [e["id"] for e in events if e["id"] is not None]
    assert ids == list(range(1, len(ids) + 1))


def test_a_reconnecting_client_gets_exactly_the_events_it_missed(logged_in: FlaskClient) -> None:
    job_id = start(logged_in)
    wait_for_job(logged_in, job_id)
    everything = parse(logged_in.get(f"/api/jobs/{job_id}/events").get_data(as_text=True))
    resumed = parse(
        logged_in.get(f"/api/jobs/{job_id}/events", headers={"Last-Event-ID": "5"}).get_data(
            as_text=True
        )
    )
    assert resumed == [e for e in everything if e["id"] is None or e["id"] > 5]
    by_query = logged_in.get(f"/api/jobs/{job_id}/events?after=5").get_data(as_text=True)
    assert parse(by_query) == resumed


def test_a_bad_last_event_id_is_a_clear_error(logged_in: FlaskClient) -> None:
    job_id = start(logged_in)
    response = logged_in.get(f"/api/jobs/{job_id}/events", headers={"Last-Event-ID": "x;1"})
    assert response.status_code == 400
    assert "Last-Event-ID" in response.get_json()["message"]
    wait_for_job(logged_in, job_id)


def test_only_the_owner_can_open_the_stream(logged_in: FlaskClient) -> None:
    job_id = start(logged_in)
    wait_for_job(logged_in, job_id)
    other = logged_in.application.test_client()
    log_in(other, OTHER_USERNAME, OTHER_PASSWORD)
    assert other.get(f"/api/jobs/{job_id}/events").status_code == 404
    anonymous = logged_in.application.test_client()
    assert anonymous.get(f"/api/jobs/{job_id}/events").status_code == 401


def test_past_the_stream_cap_a_page_is_told_to_poll_instead(
    make_app: MakeApp, sftp_username: str, sftp_password: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("qc_tool.web.api.MAX_EVENT_STREAMS", 1)
    client = make_app().test_client()
    log_in(client, sftp_username, sftp_password)
    job_id = start(client)
    wait_for_job(client, job_id)
    held = client.get(f"/api/jobs/{job_id}/events", buffered=False)  # open, not yet read
    assert held.status_code == 200
    refused = client.get(f"/api/jobs/{job_id}/events")
    assert refused.status_code == 503
    assert refused.get_json()["error"] == "busy"
    assert client.get(f"/api/jobs/{job_id}/state").status_code == 200  # polling still works
    held.close()  # the first page went away: its thread and its place are free again
    assert client.get(f"/api/jobs/{job_id}/events").status_code == 200
