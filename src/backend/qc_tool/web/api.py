"""The JSON API the pages' scripts (and other clients) use; POSTs need the X-CSRFToken header."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, request, url_for
from werkzeug.wrappers import Response

from qc_tool.domain.paths import safe_name
from qc_tool.errors import BadRequest, Busy
from qc_tool.services.jobs import Job
from qc_tool.services.scan.sites import list_sites
from qc_tool.web.auth import current_login, login_required
from qc_tool.web.deps import qc

bp = login_required(Blueprint("api", __name__, url_prefix="/api"))


@bp.get("/sites")
def sites() -> Response:
    login = current_login()
    found = list_sites(qc().connector(login.creds))
    return jsonify([s.to_json() for s in found])


@bp.post("/sites/<site>/qc")
def start_qc(site: str) -> tuple[Response, int, dict[str, str]]:
    """202 and the job: a new one, or the login's QC of this site that is still going."""
    login = current_login()
    site = safe_name(site, "site")  # before anything reaches the server
    ctx = qc()
    job = ctx.jobs.start(
        login.sid, site, ctx.scan_runner(login.sid, site), checks=ctx.checks_enabled
    )
    location = url_for("api.job", job_id=job.id)
    return jsonify({"job": job.id, "url": location}), 202, {"Location": location}


# A result document is built and serialized per request: for 15,000 photos about 28 MB of
# Python objects at once, and 21 MB of JSON (docs/reliability.md). This many are built at
# once, however many requests arrive; the others wait their turn, past the wait they are told
# busy. A finished job's document no longer changes: the last few are kept as bytes, so asking
# again (or many times at once) costs no build and no copy.
MAX_DOCUMENTS_AT_ONCE = 2
DOCUMENTS_KEPT = 4
DOCUMENTS_KEY = "qc_documents"
DOCUMENT_WAIT_S = 60.0


class Documents:
    """Builds result documents a few at a time and keeps the last finished ones' bytes."""

    def __init__(self) -> None:
        self.slots = threading.BoundedSemaphore(MAX_DOCUMENTS_AT_ONCE)
        self._lock = threading.Lock()
        self._finished: OrderedDict[str, bytes] = OrderedDict()

    def response(self, job: Job) -> Response:
        """The job's document as JSON; each response is its own, around shared bytes."""
        return current_app.response_class(self._body(job), mimetype="application/json")

    def _body(self, job: Job) -> bytes:
        final = job.ended()  # read first: a document built before the end is not kept
        if final and (kept := self._kept(job.id)) is not None:
            return kept
        if not self.slots.acquire(timeout=DOCUMENT_WAIT_S):
            raise Busy("Many results are being prepared right now; try again in a moment.")
        try:
            if final and (kept := self._kept(job.id)) is not None:
                return kept  # built by a request that held the slot before this one
            text = current_app.json.dumps(job.to_json(), separators=(",", ":"))  # in the slot
            body = text.encode()
            del text
        finally:
            self.slots.release()
        if final:
            with self._lock:
                self._finished[job.id] = body
                while len(self._finished) > DOCUMENTS_KEPT:
                    self._finished.popitem(last=False)
        return body

    def _kept(self, job_id: str) -> bytes | None:
        with self._lock:
            kept = self._finished.get(job_id)
            if kept is not None:
                self._finished.move_to_end(job_id)
            return kept


@bp.get("/jobs/<job_id>")
def job(job_id: str) -> Response:
    login = current_login()
    found = qc().jobs.get(job_id, login.sid)  # the owner's only: kept bytes are never shared
    documents: Documents = current_app.extensions[DOCUMENTS_KEY]
    return documents.response(found)


@bp.get("/jobs/<job_id>/state")
def job_state(job_id: str) -> dict[str, Any]:
    """Progress without the result document: what a page polls once a second."""
    login = current_login()
    return qc().jobs.get(job_id, login.sid).state_json()


# Each open event stream holds one of gunicorn's threads (gunicorn_conf: 16) until its job
# ends. Past this many at once a stream is refused (503) and the QC page follows its job by
# polling instead (feed.js), so logins, pages and polls always find a free thread: with 20
# pages open and no cap, a login waited 84 s in the load test (docs/reliability.md).
MAX_EVENT_STREAMS = 8
STREAMS_KEY = "qc_event_streams"
HEARTBEAT_S = 15.0  # a comment line this often: proxies keep the stream, dead clients are found
RETRY_MS = 2000


def attach(app: Flask) -> None:
    """The app's stream places and documents; its factory calls this (a blueprint builds nothing)."""
    app.extensions[STREAMS_KEY] = threading.BoundedSemaphore(MAX_EVENT_STREAMS)
    app.extensions[DOCUMENTS_KEY] = Documents()


@bp.get("/jobs/<job_id>/events")
def job_events(job_id: str) -> Response:
    """The job's events as Server-Sent Events, from after ``Last-Event-ID`` (or ``?after=``).

    The stream ends after the job's last event; a client that reconnects with the id of the
    last event it saw gets exactly the ones it missed. Written here rather than with flask-sse,
    which needs a Redis server for its pub/sub: the job log is already in this process.
    """
    login = current_login()
    job = qc().jobs.get(job_id, login.sid)
    after = _last_event_id(request.headers.get("Last-Event-ID") or request.args.get("after"))
    streams: threading.BoundedSemaphore = current_app.extensions[STREAMS_KEY]
    if not streams.acquire(blocking=False):
        raise Busy("too many live progress streams at once; follow the job's state instead")
    response = Response(_stream(job, after), mimetype="text/event-stream")
    response.call_on_close(streams.release)  # the stream ended, or its client went away
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response


def _last_event_id(raw: str | None) -> int:
    if raw is None or raw == "":
        return 0
    if not raw.isdigit() or len(raw) > 9:
        raise BadRequest(f"Last-Event-ID must be an event number, not {raw[:20]!r}")
    return int(raw)


def _stream(job: Job, after: int) -> Iterator[str]:
    yield f"retry: {RETRY_MS}\n\n"
    sent = after
    while True:
        events = job.events_after(sent, timeout=HEARTBEAT_S)
        for event in events:
            yield f"id: {event.id}\nevent: {event.kind}\ndata: {json.dumps(event.data)}\n\n"
            sent = event.id
        if not events:
            if job.ended():
                yield "event: end\ndata: {}\n\n"
                return
            yield ": keep-alive\n\n"


@bp.post("/jobs/<job_id>/cancel")
def cancel(job_id: str) -> dict[str, Any]:
    login = current_login()
    return qc().jobs.cancel(job_id, login.sid).state_json()
