"""The result document is built a bounded number of times at once, however many ask for it."""

from __future__ import annotations

import threading
import time
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from qc_tool.services.jobs import Job
from qc_tool.web.api import DOCUMENTS_KEY, MAX_DOCUMENTS_AT_ONCE

from web.support import api_token, wait_for_job

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


def _wait_until(condition: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_many_requests_for_a_document_build_at_most_a_few_at_once(
    app: Flask, logged_in: FlaskClient, monkeypatch: Any
) -> None:
    started = logged_in.post("/api/sites/SITE-A/qc", headers={"X-CSRFToken": api_token(logged_in)})
    job_id = started.get_json()["job"]
    expected = wait_for_job(logged_in, job_id)
    assert expected["state"] == "done"

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
    monkeypatch.setitem(app.extensions, DOCUMENTS_KEY, slots)
    cookie = logged_in.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None
    answers: list[tuple[int, Any]] = []

    def ask() -> None:
        client = app.test_client()
        client.set_cookie(cookie.key, cookie.value)
        response = client.get(f"/api/jobs/{job_id}")
        with lock:
            answers.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=ask) for _ in range(REQUESTS)]
    for thread in threads:
        thread.start()
    _wait_until(
        lambda: (
            len(entered) == MAX_DOCUMENTS_AT_ONCE
            and slots.waiting == REQUESTS - MAX_DOCUMENTS_AT_ONCE
        ),
        "two builds running and the other requests waiting for them",
    )
    # Let the builds finish one at a time; each finished one lets exactly one more in.
    for released in range(REQUESTS):
        _wait_until(lambda n=released: len(entered) > n, "the next build to start")
        entered[released].set()
    for thread in threads:
        thread.join(WAIT_S)
    assert building["most"] == MAX_DOCUMENTS_AT_ONCE
    assert [status for status, _ in answers] == [200] * REQUESTS
    assert all(body == expected for _, body in answers)
