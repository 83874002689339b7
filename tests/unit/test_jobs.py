"""Jobs: two passes, the GPS result published first, an event log a client can resume from."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from qc_tool.domain.models import ImageResult, Progress, ScanResult
from qc_tool.errors import NotFound, RemoteError
from qc_tool.services.jobs import Job, JobManager, Rate, SiteLocks
from qc_tool.services.validation_service import CheckProgress, CheckReport


def _scan(n: int = 3) -> ScanResult:
    images = [ImageResult(path=f"F/{i}.JPG", size=1, mtime=0, lat=1.0, lon=2.0) for i in range(n)]
    return ScanResult(site="S", images=images)


def _gps_pass(job: Job, n: int = 3) -> ScanResult:
    result = _scan(n)
    for i, image in enumerate(result.images, 1):
        job.progress(Progress(i, n, i, "F", image))
    return result


@pytest.fixture
def jobs() -> Iterator[JobManager]:
    manager = JobManager(max_jobs=2)
    yield manager
    manager.shutdown()


def _wait(job: Job) -> None:
    while not job.ended():
        job.events_after(10**9, timeout=1)


def test_the_gps_result_is_published_before_the_checks_run(jobs: JobManager) -> None:
    seen: dict[str, object] = {}
    release = threading.Event()

    def run(job: Job) -> None:
        job.scan_finished(_gps_pass(job))
        job.checks_started()
        release.wait(5)
        job.checks_progress(CheckProgress(3, 3, 10.0, 0.0))
        job.checks_finished(CheckReport("S", folders={"F": Counter()}))

    job = jobs.start("me", "S", run)
    for _ in range(500):  # the checks wait for ``release``, so this sees the middle stage
        if job.result is not None:
            break
        time.sleep(0.01)
    seen["state"], seen["checks"] = job.public_state, job.checks_state
    release.set()
    _wait(job)
    assert seen == {"state": "running", "checks": "running"}
    assert (job.public_state, job.checks_state) == ("done", "done")
    assert job.to_json()["result"]["folders"] == [] and job.report is not None


def test_events_are_numbered_and_a_client_resumes_after_the_last_it_saw(jobs: JobManager) -> None:
    job = jobs.start("me", "S", lambda j: j.scan_finished(_gps_pass(j)), checks=False)
    _wait(job)
    events = job.events_after(0, timeout=0)
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    kinds = [e.kind for e in events]
    assert kinds.count("image") == 3 and kinds[-1] == "state" and "scan" in kinds
    assert events[-1].data["state"] == "done"
    resumed = job.events_after(events[2].id, timeout=0)
    assert resumed == events[3:]
    assert [e.data["path"] for e in events if e.kind == "image"] == [
        "F/0.JPG",
        "F/1.JPG",
        "F/2.JPG",
    ]


def test_cancelling_during_the_checks_keeps_the_gps_result(jobs: JobManager) -> None:
    started = threading.Event()

    def run(job: Job) -> None:
        job.scan_finished(_gps_pass(job))
        job.checks_started()
        started.set()
        job.cancel_event.wait(5)
        job.checks_finished(CheckReport("S"))

    job = jobs.start("me", "S", run)
    assert started.wait(5)
    jobs.cancel(job.id, "me")
    _wait(job)
    assert (job.public_state, job.checks_state) == ("done", "cancelled")
    assert job.result is not None and len(job.result.images) == 3


def test_a_failed_check_pass_keeps_the_gps_result_with_the_reason(jobs: JobManager) -> None:
    def run(job: Job) -> None:
        job.scan_finished(_gps_pass(job))
        job.checks_started()
        job.checks_failed(RemoteError("the server went away").message)

    job = jobs.start("me", "S", run)
    _wait(job)
    assert (job.public_state, job.checks_state) == ("done", "failed")
    assert job.state_json()["checks_error"] == "the server went away"


def test_a_job_cancelled_during_the_gps_pass_is_cancelled(jobs: JobManager) -> None:
    def run(job: Job) -> None:
        job.cancel_event.wait(5)

    job = jobs.start("me", "S", run)
    jobs.cancel(job.id, "me")
    _wait(job)
    assert (job.public_state, job.checks_state, job.result) == ("cancelled", "cancelled", None)


def test_only_the_owner_sees_a_job(jobs: JobManager) -> None:
    job = jobs.start("me", "S", lambda j: None, checks=False)
    with pytest.raises(NotFound):
        jobs.get(job.id, "someone else")
    assert jobs.get(job.id, "me") is job


def test_a_rate_is_shown_only_once_it_means_something(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([100.0, 100.0, 100.001, 102.0])  # start, then one reading per update
    monkeypatch.setattr("qc_tool.services.jobs.time.perf_counter", lambda: next(clock))
    rate = Rate()
    rate.update(0, 100)  # starts the clock
    rate.update(1, 100)  # 1 ms later: no rate, no ETA
    assert (rate.rate, rate.eta_s) == (0.0, None)
    rate.update(50, 100)  # 2 s in: 25/s, 2 s to go
    assert (rate.rate, rate.eta_s) == (25.0, 2.0)


def test_one_qc_of_a_site_at_a_time_and_a_waiting_one_can_be_cancelled() -> None:
    locks = SiteLocks()
    key = ("sftp://server:22", "S")
    assert locks.acquire(key, lambda: False)
    assert locks.acquire(("sftp://server:22", "OTHER"), lambda: False)  # another site: no wait
    cancel = threading.Event()
    outcome: list[bool] = []
    waiter = threading.Thread(target=lambda: outcome.append(locks.acquire(key, cancel.is_set)))
    waiter.start()
    waiter.join(0.3)
    assert waiter.is_alive()  # still waiting for the first
    cancel.set()
    waiter.join(2)
    assert outcome == [False]
    locks.release(key)
    assert locks.acquire(key, lambda: False)
