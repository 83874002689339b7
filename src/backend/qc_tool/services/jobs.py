"""Background QC jobs: started by a request, run on a worker thread, followed by their owner.

A job has two passes: the GPS scan, whose result is published as soon as it is ready, and
then the photo checks. Everything a job does is also written to its event log (numbered,
append-only), which the live page streams and a reconnecting client resumes from.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from qc_tool.domain.models import Progress, ScanResult
from qc_tool.domain.structure import StructureReport
from qc_tool.domain.verdict import ChecksState
from qc_tool.errors import NotFound, QCError
from qc_tool.services.check_report import result_document
from qc_tool.services.validation_service import CheckProgress, CheckReport

log = logging.getLogger(__name__)

JobRunner = Callable[["Job"], None]
KEEP_FINISHED_S = 6 * 3600  # finished jobs stay readable this long
MAX_JOBS_KEPT = 200
MIN_RATE_S = 0.5
PROGRESS_EVENT_S = 0.25  # at most this often a progress event (image events are not thinned)


@dataclass(frozen=True, slots=True)
class JobEvent:
    id: int  # 1, 2, 3 ... in the order they happened
    kind: str  # progress | image | scan | checks_progress | checks | state
    data: dict[str, Any]


@dataclass(slots=True)
class Rate:
    """Count, rate and ETA of one pass, measured from its start."""

    done: int = 0
    total: int = 0
    started: float = 0.0
    rate: float = 0.0  # items/s so far
    eta_s: float | None = None

    def update(self, done: int, total: int) -> None:
        if not self.started:
            self.started = time.perf_counter()
        self.done, self.total = done, total
        elapsed = time.perf_counter() - self.started
        # Under half a second a rate is noise (the first photo can come from the cache in
        # microseconds): show none rather than a million photos a second.
        self.rate = done / elapsed if elapsed >= MIN_RATE_S and done else 0.0
        self.eta_s = (total - done) / self.rate if self.rate > 0 else None

    def to_json(self) -> dict[str, Any]:
        return {
            "done": self.done,
            "total": self.total,
            "rate": round(self.rate, 1),
            "eta_s": None if self.eta_s is None else round(self.eta_s, 1),
        }


@dataclass(eq=False)
class Job:
    """One QC run of a site: who asked, how far each pass got, the results or the error."""

    id: str
    owner: str
    site: str
    checks_wanted: bool = True
    state: str = "queued"  # queued | running | done | failed | cancelled
    gps: Rate = field(default_factory=Rate)
    gps_points: int = 0
    folders: dict[str, dict[str, int]] = field(default_factory=dict)  # name -> done, total, gps
    result: ScanResult | None = None  # set when the GPS pass is done, before the checks run
    checks_state: str = "off"  # off | waiting | running | done | failed | cancelled
    checks: Rate = field(default_factory=Rate)
    report: CheckReport | None = None
    structure: StructureReport | None = None  # against the site profile, when there is one
    checks_error: str | None = None
    error: str | None = None
    waiting: str | None = None  # what the job waits for before it can start, if anything
    created: float = field(default_factory=time.time)
    finished: float | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)
    _events: list[JobEvent] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _last_progress: float = 0.0

    def __post_init__(self) -> None:
        if self.checks_wanted:
            self.checks_state = "waiting"

    # -- written by the runner (the job's thread) ---------------------------------------------

    def progress(self, p: Progress) -> None:
        """The GPS pass's progress callback: counts, and the image just read."""
        self.gps.update(p.done, p.total)
        self.gps_points = p.gps_points
        if p.image is not None and p.folder is not None:
            counts = self.folders.setdefault(
                p.folder, {"done": 0, "total": p.folder_total, "gps_points": 0}
            )
            counts["done"] += 1
            counts["gps_points"] += int(p.image.has_gps and p.image.error is None)
            self._emit("image", _image_event(p))
        self._emit_progress("progress", p.done == p.total)

    def scan_finished(self, result: ScanResult, structure: StructureReport | None = None) -> None:
        """Publish the GPS result; the page shows it while the checks run."""
        self.structure = structure
        self.result = result
        self.gps.update(len(result.images), len(result.images))
        self._emit("scan", {"images": len(result.images), "gps_points": result.gps_points})

    def waiting_for(self, what: str | None) -> None:
        """Say what the job waits for (None: it waits no more)."""
        self.waiting = what
        self._emit("state", self.state_json())

    def checks_started(self) -> None:
        self.checks_state = "running"
        self._emit("state", self.state_json())

    def checks_progress(self, p: CheckProgress) -> None:
        self.checks.update(p.done, p.total)
        if p.checked is not None:
            self._emit("checked", p.checked)
        self._emit_progress("checks_progress", p.done == p.total)

    def checks_finished(self, report: CheckReport) -> None:
        self.report = report
        self.checks_state = "cancelled" if self.cancelled() else "done"
        failed = sum(not c.valid for c in report.images)
        self._emit("checks", {"images": len(report.images), "failed": failed})

    def checks_failed(self, message: str) -> None:
        self.checks_error = message
        self.checks_state = "cancelled" if self.cancelled() else "failed"

    # -- read by the views ------------------------------------------------------------------

    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    @property
    def public_state(self) -> str:
        """The state users see: a queued job is simply running."""
        return "running" if self.state == "queued" else self.state

    def events_after(self, last_id: int, timeout: float) -> list[JobEvent]:
        """Events newer than ``last_id``; waits up to ``timeout`` s for one if there are none."""
        with self._changed:
            if len(self._events) <= last_id and not self._ended():
                self._changed.wait(timeout)
            return self._events[max(0, last_id) :]

    def ended(self) -> bool:
        with self._changed:
            return self._ended()

    def state_json(self) -> dict[str, Any]:
        """Everything but the result document: what a progress display needs."""
        return {
            "id": self.id,
            "site": self.site,
            "state": self.public_state,
            "done": self.gps.done,
            "total": self.gps.total,
            "gps_points": self.gps_points,
            "gps": self.gps.to_json(),
            "folders": {name: dict(counts) for name, counts in self.folders.items()},
            "scan_ready": self.result is not None,
            "checks_state": self.checks_state,
            "checks": self.checks.to_json(),
            "checks_error": self.checks_error,
            "waiting": self.waiting,
            "error": self.error,
        }

    def to_json(self) -> dict[str, Any]:
        out = self.state_json()
        out["result"] = self.document()
        return out

    def document(self) -> dict[str, Any] | None:
        """The result document: the scan, with per-image checks once they are done."""
        if self.result is None:
            return None
        return result_document(
            self.result, self.report, self.structure, _VERDICT_STATE[self.checks_state]
        )

    # -- internals --------------------------------------------------------------------------

    def _ended(self) -> bool:
        return self.finished is not None

    def _emit(self, kind: str, data: dict[str, Any]) -> None:
        with self._changed:
            self._events.append(JobEvent(len(self._events) + 1, kind, data))
            self._changed.notify_all()

    def _emit_progress(self, kind: str, last: bool) -> None:
        now = time.monotonic()
        if last or now - self._last_progress >= PROGRESS_EVENT_S:
            self._last_progress = now
            self._emit(kind, self.state_json())

    def _end(self, state: str) -> None:
        self.state = state
        if self.checks_state in ("waiting", "running"):
            self.checks_state = "cancelled" if self.cancelled() else "off"
        with self._changed:
            self.finished = time.time()
            self._events.append(JobEvent(len(self._events) + 1, "state", self.state_json()))
            self._changed.notify_all()


# The job's checks_state as the verdict reads it: checks that never started were not run.
_VERDICT_STATE: dict[str, ChecksState] = {
    "off": "not_run",
    "waiting": "running",
    "running": "running",
    "done": "done",
    "failed": "failed",
    "cancelled": "cancelled",
}


def _image_event(p: Progress) -> dict[str, Any]:
    image = p.image
    assert image is not None
    return {
        "path": image.path,
        "folder": image.folder,
        "lat": image.lat,
        "lon": image.lon,
        "alt": image.alt,
        "taken": image.taken,
        "error": image.error,
    }


class SiteLocks:
    """One QC of a site at a time per server: the next one waits, then finds the cache warm.

    Twenty users opening the same site at once otherwise each read and measured all of it
    (89.8 s for all of them in the load test, against 26.4 s one after another).
    """

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._lock = threading.Lock()

    def acquire(self, key: tuple[str, str], cancelled: Callable[[], bool]) -> bool:
        """Wait for ``key``; False if the job was cancelled while waiting."""
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        while not lock.acquire(timeout=0.2):
            if cancelled():
                return False
        return True

    def release(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._locks[key].release()


class JobManager:
    """Runs at most ``max_jobs`` jobs at once; only a job's owner can see or cancel it."""

    def __init__(self, max_jobs: int = 4) -> None:
        self._executor = ThreadPoolExecutor(max_workers=max_jobs, thread_name_prefix="qc-job")
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def start(self, owner: str, site: str, runner: JobRunner, *, checks: bool = True) -> Job:
        job = Job(id=secrets.token_urlsafe(12), owner=owner, site=site, checks_wanted=checks)
        with self._lock:
            self._forget_old()
            self._jobs[job.id] = job
        self._executor.submit(self._run, job, runner)
        return job

    def _run(self, job: Job, runner: JobRunner) -> None:
        job.state = "running"
        try:
            runner(job)
            # A job cancelled after its GPS pass keeps that result: it is done, checks cancelled.
            end = "cancelled" if job.cancelled() and job.result is None else "done"
        except QCError as exc:
            job.error, end = exc.message, "cancelled" if job.cancelled() else "failed"
        except Exception as exc:  # a bug fails this job, not the worker thread or other jobs
            log.exception("QC job %s failed", job.id)
            job.error, end = f"internal error: {type(exc).__name__}", "failed"
        job._end(end)

    def get(self, job_id: str, owner: str) -> Job:
        """The job, if ``owner`` started it; another user's job is reported as not found."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None or job.owner != owner:
            raise NotFound("no such job")
        return job

    def cancel(self, job_id: str, owner: str) -> Job:
        job = self.get(job_id, owner)
        job.cancel_event.set()
        return job

    def cancel_all(self, owner: str) -> None:
        with self._lock:
            jobs = [j for j in self._jobs.values() if j.owner == owner]
        for job in jobs:
            job.cancel_event.set()

    def latest_for(self, owner: str, site: str) -> Job | None:
        with self._lock:
            mine = [j for j in self._jobs.values() if j.owner == owner and j.site == site]
        return max(mine, key=lambda j: j.created) if mine else None

    def shutdown(self) -> None:
        with self._lock:
            for job in self._jobs.values():
                job.cancel_event.set()
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _forget_old(self) -> None:
        now = time.time()
        for job_id, job in list(self._jobs.items()):
            if job.finished is not None and now - job.finished > KEEP_FINISHED_S:
                del self._jobs[job_id]
        if len(self._jobs) > MAX_JOBS_KEPT:
            finished = sorted(
                (j for j in self._jobs.values() if j.finished is not None), key=lambda j: j.created
            )
            for job in finished[: len(self._jobs) - MAX_JOBS_KEPT]:
                del self._jobs[job.id]
