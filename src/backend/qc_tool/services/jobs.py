"""Background scan jobs: started by a request, run on a worker thread, polled by their owner."""

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
from qc_tool.errors import NotFound, QCError

log = logging.getLogger(__name__)

JobRunner = Callable[["Job"], ScanResult]
KEEP_FINISHED_S = 6 * 3600  # finished jobs stay readable this long
MAX_JOBS_KEPT = 200


@dataclass(eq=False)
class Job:
    """One scan: who asked, how far it got, and its result or error."""

    id: str
    owner: str
    site: str
    state: str = "queued"  # queued | running | done | failed | cancelled
    done: int = 0
    total: int = 0
    gps_points: int = 0
    result: ScanResult | None = None
    error: str | None = None
    created: float = field(default_factory=time.time)
    finished: float | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)

    def progress(self, p: Progress) -> None:
        self.done, self.total, self.gps_points = p.done, p.total, p.gps_points

    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def to_json(self) -> dict[str, Any]:
        state = "running" if self.state == "queued" else self.state
        return {
            "id": self.id,
            "site": self.site,
            "state": state,
            "done": self.done,
            "total": self.total,
            "gps_points": self.gps_points,
            "error": self.error,
            "result": self.result.to_json() if self.result is not None else None,
        }


class JobManager:
    """Runs at most ``max_jobs`` scans at once; only a job's owner can see or cancel it."""

    def __init__(self, max_jobs: int = 4) -> None:
        self._executor = ThreadPoolExecutor(max_workers=max_jobs, thread_name_prefix="qc-job")
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def start(self, owner: str, site: str, runner: JobRunner) -> Job:
        job = Job(id=secrets.token_urlsafe(12), owner=owner, site=site)
        with self._lock:
            self._forget_old()
            self._jobs[job.id] = job
        self._executor.submit(self._run, job, runner)
        return job

    def _run(self, job: Job, runner: JobRunner) -> None:
        job.state = "running"
        try:
            job.result = runner(job)
            job.state = "cancelled" if job.cancelled() else "done"
        except QCError as exc:
            job.error, job.state = exc.message, "cancelled" if job.cancelled() else "failed"
        except Exception as exc:  # a bug fails this job, not the worker thread or other jobs
            log.exception("scan job %s failed", job.id)
            job.error, job.state = f"internal error: {type(exc).__name__}", "failed"
        finally:
            job.finished = time.time()

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
