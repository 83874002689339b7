"""Result documents are built a few at a time, and a finished one only once, however many ask."""

from __future__ import annotations

import threading
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from qc_tool.services.jobs import Job
from qc_tool.web.api import DOCUMENTS_KEY, MAX_DOCUMENTS_AT_ONCE, Documents
from waiting import wait_until

from web.support import api_token, context, sid_of, wait_for_job

REQUESTS = 6
WAIT_S = 20.0


class Watched(threading.BoundedSemaphore):
    """The app's semaphore, counting the requests waiting for it."""

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.waiting = 0
        self._count = threading.Lock()

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        with self._count:
            self.waiting += 1
        try:
            return super().acquire(blocking, timeout)
        finally:
            with self._count:
                self.waiting -= 1


def _finished_jobs(client: FlaskClient, count: int) -> dict[str, dict[str, Any]]:
    """``count`` finished QC jobs of SITE-A (all but the first from the cache): id -> document."""
    jobs = {}
    for _ in range(count):
        started = client.post("/api/sites/SITE-A/qc", headers={"X-CSRFToken": api_token(client)})
        job_id = started.get_json()["job"]
        jobs[job_id] = wait_for_job(client, job_id)
        assert jobs[job_id]["state"] == "done"
    return jobs


def _as_owner(app: Flask, owner: FlaskClient) -> FlaskClient:
    """Another client (one per thread) with the owner's login."""
    cookie = owner.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None
    client = app.test_client()
    client.set_cookie(cookie.key, cookie.value)
    return client


def test_many_requests_for_documents_build_at_most_a_few_at_once(
    app: Flask, logged_in: FlaskClient, monkeypatch: Any
) -> None:
    jobs = _finished_jobs(logged_in, REQUESTS)
    app.extensions[DOCUMENTS_KEY] = Documents()  # forget the documents the waits built
    lock = threading.Lock()
    entered: list[threading.Event] = []  # one per build, set to let that build finish
    building = {"now": 0, "most": 0}
    original = Job.to_json

    def held_to_json(self: Job) -> dict[str, Any]:
        go = threading.Event()
        with lock:
            entered.append(go)
            building["now"] += 1
            building["most"] = max(building["most"], building["now"])
        go.wait(WAIT_S)
        with lock:
            building["now"] -= 1
        return original(self)

    monkeypatch.setattr(Job, "to_json", held_to_json)
    slots = Watched(MAX_DOCUMENTS_AT_ONCE)
    monkeypatch.setattr(app.extensions[DOCUMENTS_KEY], "slots", slots)
    answers: dict[str, tuple[int, Any]] = {}

    def ask(job_id: str) -> None:
        response = _as_owner(app, logged_in).get(f"/api/jobs/{job_id}")
        with lock:
            answers[job_id] = (response.status_code, response.get_json())

    threads = [threading.Thread(target=ask, args=(job_id,)) for job_id in jobs]
    for thread in threads:
        thread.start()
    wait_until(
        lambda: (
            len(entered) == MAX_DOCUMENTS_AT_ONCE
            and slots.waiting == REQUESTS - MAX_DOCUMENTS_AT_ONCE
        ),
        message="two builds running and the other requests waiting for them",
    )
    # Let the builds finish one at a time; each finished one lets exactly one more in.
    for released in range(REQUESTS):
        wait_until(lambda n=released: len(entered) > n, message="the next build to start")
        entered[released].set()
    for thread in threads:
        thread.join(WAIT_S)
    assert building["most"] == MAX_DOCUMENTS_AT_ONCE
    assert answers == {job_id: (200, document) for job_id, document in jobs.items()}


def test_a_finished_jobs_document_is_built_once_and_its_bytes_shared(
    app: Flask, logged_in: FlaskClient, monkeypatch: Any
) -> None:
    (job_id, document), *_ = _finished_jobs(logged_in, 1).items()
    # A job says "done" a moment before it has ended, and only an ended job's document is
    # kept: wait for that, as this test is about the kept document.
    job = context(app).jobs.get(job_id, sid_of(app, logged_in))
    wait_until(job.ended, message="the job to end")
    app.extensions[DOCUMENTS_KEY] = Documents()
    builds = []
    original = Job.to_json

    def counted(self: Job) -> dict[str, Any]:
        builds.append(self.id)
        return original(self)

    monkeypatch.setattr(Job, "to_json", counted)
    bodies = [logged_in.get(f"/api/jobs/{job_id}") for _ in range(5)]
    assert builds == [job_id]
    assert all(b.status_code == 200 and b.get_json() == document for b in bodies)
    assert bodies[0].mimetype == "application/json"
    other = _as_owner(app, logged_in)
    assert other.get(f"/api/jobs/{job_id}").get_json() == document and builds == [job_id]
