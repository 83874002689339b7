"""Background QC jobs: started by a request, run on a worker thread, followed by their owner.

A job has two passes: the GPS scan, whose result is published as soon as it is ready, and
then the photo checks. Everything a job does is also written to its event log (numbered,
append-only), which the live page streams and a reconnecting client resumes from.

Logins share the workers fairly: each may have a few jobs queued or running, takes its turn
with the others, and keeps its own finished jobs, which hold their results compressed.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from qc_tool.domain.models import Progress, RemoteFile, ScanResult
from qc_tool.domain.structure import StructureReport
from qc_tool.domain.verdict import ChecksState
from qc_tool.errors import NotFound, QCError, TooManyJobs
from qc_tool.services.checks.result import result_document
from qc_tool.services.checks.run import CheckProgress, CheckReport
from qc_tool.services.progress import Rate

log = logging.getLogger(__name__)

JobRunner = Callable[["Job"], None]
KEEP_FINISHED_S = 6 * 3600  # finished jobs stay readable this long
KEEP_PER_LOGIN = 20  # finished jobs kept per login; its oldest go first, never another login's
MAX_JOBS_KEPT = 200  # in all: past it, the login keeping the most loses its oldest
RETRY_AFTER_S = 10  # what a login at its cap of jobs is told to wait before trying again
PROGRESS_EVENT_S = 0.25  # at most this often a progress event (image events are not thinned)


@dataclass(frozen=True, slots=True)
class JobEvent:
    id: int  # 1, 2, 3 ... in the order they happened
    kind: str  # progress | image | scan | checks_progress | checks | state
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Packed:
    """One JSON value kept as compressed bytes: what a finished job holds instead of objects.

    A finished QC of 6,000 photos held 12.4 MB of objects (result, check report, event log);
    packed, about 0.7 MB (docs/reliability.md, "Fair share").
    """

    blob: bytes

    @classmethod
    def of(cls, value: Any) -> Packed:
        return cls(zlib.compress(json.dumps(value, separators=(",", ":")).encode()))

    def unpack(self) -> Any:
        return json.loads(self.json_bytes())

    def json_bytes(self) -> bytes:
        """The JSON text itself, for a response that embeds it without parsing it."""
        return zlib.decompress(self.blob)


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
    # Set when the GPS pass is done, before the checks run; once the job has ended it is
    # packed with the report and structure into the document (see ``_pack``) and is None.
    result: ScanResult | None = None
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
    # What an ended job keeps instead of its objects: the document, the listed files (what
    # a preview needs) and the event log, each compressed JSON.
    _document: Packed | None = None
    _files: Packed | None = None
    _packed_events: Packed | None = None
    _event_count: int = 0

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
        failed = sum(c.valid is False for c in report.images)
        self._emit("checks", {"images": len(report.images), "failed": failed})

    def checks_failed(self, message: str) -> None:
        self.checks_error = message
        self.checks_state = "cancelled" if self.cancelled() else "failed"

    # -- read by the views ------------------------------------------------------------------

    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    @property
    def going(self) -> bool:
        """Queued or running: over as soon as its final state is set, while it is packed."""
        return self.state in ("queued", "running")

    @property
    def public_state(self) -> str:
        """The state users see: a queued job is simply running."""
        return "running" if self.state == "queued" else self.state

    def events_after(self, last_id: int, timeout: float) -> list[JobEvent]:
        """Events newer than ``last_id``; waits up to ``timeout`` s for one if there are none."""
        with self._changed:
            if len(self._events) <= last_id and not self._ended():
                self._changed.wait(timeout)
            packed, count = self._packed_events, self._event_count
            if packed is None:
                return self._events[max(0, last_id) :]
        if last_id >= count:
            return []
        rows = packed.unpack()[max(0, last_id) :]
        return [JobEvent(n, kind, data) for n, (kind, data) in enumerate(rows, max(0, last_id) + 1)]

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
            "scan_ready": self.scan_ready,
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

    @property
    def scan_ready(self) -> bool:
        """The GPS pass's result is there (kept packed once the job has ended)."""
        return self.result is not None or self._document is not None

    def document(self) -> dict[str, Any] | None:
        """The result document: the scan, with per-image checks once they are done."""
        with self._changed:  # one consistent view, whether or not the job is being packed
            packed, result, report, structure = (
                self._document,
                self.result,
                self.report,
                self.structure,
            )
        if packed is not None:
            document: dict[str, Any] = packed.unpack()
            return document
        if result is None:
            return None
        return result_document(result, report, structure, _VERDICT_STATE[self.checks_state])

    def listed_file(self, path: str) -> RemoteFile | None:
        """The file at ``path`` as the GPS pass listed it; None if it did not list it."""
        with self._changed:
            files, result = self._files, self.result
        if files is not None:
            return next((RemoteFile(*f) for f in files.unpack() if f[0] == path), None)
        if result is None:
            return None
        return next((i.file for i in result.images if i.path == path), None)

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
        last = JobEvent(len(self._events) + 1, "state", self.state_json())
        packed = self._pack(last)
        with self._changed:
            self.finished = time.time()
            self._events.append(last)
            if packed is not None:  # from now on readers unpack; the objects can go
                self._document, self._files, self._packed_events = packed
                self._event_count = last.id
                self.result = self.report = self.structure = None
                self._events = []
            self._changed.notify_all()

    def _pack(self, last: JobEvent) -> tuple[Packed | None, Packed | None, Packed] | None:
        """The ended job's document, listed files and events (ending with ``last``), packed.

        Runs on the job's thread once nothing else writes to the job; None (keep the
        objects) if something in them does not serialize, which would be a bug.
        """
        try:
            result = self.result
            document = self.document()
            files = [[i.path, i.size, i.mtime] for i in result.images] if result else None
            events = [[e.kind, e.data] for e in [*self._events, last]]
            return (
                None if document is None else Packed.of(document),
                None if files is None else Packed.of(files),
                Packed.of(events),
            )
        except (TypeError, ValueError):
            log.exception("QC job %s: cannot pack its results; keeping them unpacked", self.id)
            return None


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
    """Runs at most ``max_jobs`` jobs at once; only a job's owner can see or cancel it.

    Fair share between logins (owners): each has at most ``per_login`` jobs queued or running,
    a free worker takes the queued job of the login with the fewest running that has waited
    longest for its turn, and each keeps its own last KEEP_PER_LOGIN finished jobs. Forty
    starts by one login thus cost another login nothing: not a place in the queue, not a
    finished job.
    """

    def __init__(self, max_jobs: int = 4, per_login: int = 2) -> None:
        if max_jobs < 1 or per_login < 1:
            raise ValueError("QC_MAX_JOBS and QC_MAX_JOBS_PER_LOGIN must be at least 1")
        self._executor = ThreadPoolExecutor(max_workers=max_jobs, thread_name_prefix="qc-job")
        self._max_jobs = max_jobs
        self._per_login = per_login
        self._jobs: dict[str, Job] = {}
        self._queue: list[tuple[Job, JobRunner]] = []  # waiting for a worker, oldest first
        self._turns: dict[str, int] = {}  # owner -> the turn it last got a worker
        self._turn = 0
        self._lock = threading.Lock()

    def start(self, owner: str, site: str, runner: JobRunner, *, checks: bool = True) -> Job:
        """Queue QC of ``site``; if the login's QC of it is still going, that job instead.

        Raises TooManyJobs when the login already has ``per_login`` jobs queued or running.
        """
        with self._lock:
            self._forget_old()
            going = [j for j in self._jobs.values() if j.owner == owner and j.going]
            again = [j for j in going if j.site == site and not j.cancelled()]
            if again:  # a second click on View QC: the page of the QC already under way
                return again[0]
            if len(going) >= self._per_login:
                raise TooManyJobs(_too_many_message(going), retry_after=RETRY_AFTER_S)
            job = Job(id=secrets.token_urlsafe(12), owner=owner, site=site, checks_wanted=checks)
            job.waiting = f"its turn ({self._max_jobs} QC runs at a time on this server)"
            self._jobs[job.id] = job
            self._queue.append((job, runner))
        self._executor.submit(self._run_next)  # one worker turn per queued job
        return job

    def _run_next(self) -> None:
        """A worker is free: run the queued job whose login is next in turn."""
        with self._lock:
            if not self._queue:
                return  # the job this turn was for was cancelled while queued
            entry = min(self._queue, key=self._turn_order)  # the oldest of equals
            self._queue.remove(entry)
            job, runner = entry
            self._turn += 1
            self._turns[job.owner] = self._turn
            job.state, job.waiting = "running", None
        self._run(job, runner)

    def _turn_order(self, entry: tuple[Job, JobRunner]) -> tuple[int, int]:
        """Logins with fewer jobs running first, then the one whose last turn is oldest."""
        owner = entry[0].owner
        running = sum(j.owner == owner and j.state == "running" for j in self._jobs.values())
        return running, self._turns.get(owner, 0)

    def _run(self, job: Job, runner: JobRunner) -> None:
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
        with self._lock:
            self._forget_old()

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
        self._end_queued({job})
        return job

    def cancel_all(self, owner: str) -> None:
        with self._lock:
            jobs = {j for j in self._jobs.values() if j.owner == owner}
        for job in jobs:
            job.cancel_event.set()
        self._end_queued(jobs)

    def latest_for(self, owner: str, site: str) -> Job | None:
        with self._lock:
            mine = [j for j in self._jobs.values() if j.owner == owner and j.site == site]
        return max(mine, key=lambda j: j.created) if mine else None

    def shutdown(self) -> None:
        with self._lock:
            jobs = set(self._jobs.values())
        for job in jobs:
            job.cancel_event.set()
        self._end_queued(jobs)
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _end_queued(self, jobs: set[Job]) -> None:
        """Cancelled jobs no worker has taken yet end now, so they hold no place in the queue."""
        with self._lock:
            ended = [entry for entry in self._queue if entry[0] in jobs]
            for entry in ended:
                self._queue.remove(entry)
        for job, _ in ended:
            job._end("cancelled")

    def _forget_old(self) -> None:
        """Drop finished jobs: past their time, past KEEP_PER_LOGIN of their own login, and past
        MAX_JOBS_KEPT in all, from the login that keeps the most (the lock is held)."""
        now = time.time()
        kept: dict[str, list[Job]] = {}  # owner -> finished jobs, oldest first
        for job in sorted(self._jobs.values(), key=lambda j: j.created):
            if job.finished is None:
                continue
            if now - job.finished > KEEP_FINISHED_S:
                del self._jobs[job.id]
            else:
                kept.setdefault(job.owner, []).append(job)
        for finished in kept.values():
            while len(finished) > KEEP_PER_LOGIN:
                del self._jobs[finished.pop(0).id]
        while len(self._jobs) > MAX_JOBS_KEPT and any(kept.values()):
            del self._jobs[max(kept.values(), key=len).pop(0).id]
        owners = {j.owner for j in self._jobs.values()}
        for owner in set(self._turns) - owners:
            del self._turns[owner]


def _too_many_message(going: list[Job]) -> str:
    sites = ", ".join(sorted(j.site for j in going))
    return (
        f"You already have {len(going)} QC runs going ({sites}); wait for one to finish, or "
        "cancel one, then start this one again."
    )
