"""Jobs: two passes, the GPS result published first, an event log a client can resume from."""

from __future__ import annotations

import gc
import random
import threading
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from qc_tool.domain.checks.result import CheckOutcome, ImageChecks
from qc_tool.domain.models import ImageResult, Progress, RemoteFile, ScanResult
from qc_tool.errors import NotFound, RemoteError, TooManyJobs
from qc_tool.services.checks.run import CheckProgress, CheckReport
from qc_tool.services.jobs import (
    KEEP_PER_LOGIN,
    MAX_JOBS_KEPT,
    Job,
    JobManager,
    SiteLocks,
)
from qc_tool.services.progress import Rate
from qc_tool.web.errors import status_of
from waiting import wait_until


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
    wait_until(job.ended, message=f"job {job.site} to end")


def test_the_gps_result_is_published_before_the_checks_run(jobs: JobManager) -> None:
    seen: dict[str, object] = {}
    release = threading.Event()

    def run(job: Job) -> None:
        job.scan_finished(_gps_pass(job))
        job.checks_started()
        release.wait(5)
        job.checks_progress(CheckProgress(3, 3))
        job.checks_finished(CheckReport("S", folders={"F": Counter()}))

    job = jobs.start("me", "S", run)
    # The checks wait for ``release``, so this sees the middle stage.
    wait_until(lambda: job.result is not None, message="the GPS result")
    seen["state"], seen["checks"] = job.public_state, job.checks_state
    release.set()
    _wait(job)
    assert seen == {"state": "running", "checks": "running"}
    assert (job.public_state, job.checks_state) == ("done", "done")
    document = job.to_json()["result"]
    assert document["folders"] == [] and "check_stats" in document  # the checks are in it


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
    document = job.document()
    assert document is not None and len(document["images"]) == 3


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


def test_a_rate_is_shown_only_once_it_means_something() -> None:
    clock = iter([100.0, 100.001, 102.0])  # one reading per update
    rate = Rate(clock=lambda: next(clock))
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
    assert waiter.is_alive()  # still waiting for the first (a slow machine: all the more)
    cancel.set()
    waiter.join(30)
    assert outcome == [False]
    locks.release(key)
    assert locks.acquire(key, lambda: False)


# -- fair share between logins ---------------------------------------------------------------


def test_one_logins_forty_starts_do_not_queue_another_login_behind_them() -> None:
    jobs = JobManager(max_jobs=1, per_login=2)  # one worker: the order is the policy's alone
    release = threading.Event()
    ran: list[str] = []

    def run(job: Job) -> None:
        ran.append(f"{job.owner}:{job.site}")
        release.wait(10)

    try:
        accepted, refused = [], []
        for n in range(40):
            try:
                accepted.append(jobs.start("greedy", f"S{n}", run))
            except TooManyJobs as exc:
                refused.append(exc)
        theirs = jobs.start("other", "T", run)
        wait_until(lambda: ran == ["greedy:S0"], message="running the first job")
        assert (len(accepted), len(refused)) == (2, 38)
        assert status_of(refused[0]) == 429 and (refused[0].retry_after or 0) > 0
        assert "2 QC runs going (S0, S1)" in refused[0].message
        assert (accepted[1].state, theirs.state) == ("queued", "queued")
        release.set()
        wait_until(lambda: all(j.ended() for j in [*accepted, theirs]), message="all ended")
        assert ran == ["greedy:S0", "other:T", "greedy:S1"]  # the other login went next
    finally:
        release.set()
        jobs.shutdown()


def test_starting_a_site_whose_qc_is_going_gives_that_job(jobs: JobManager) -> None:
    release = threading.Event()
    first = jobs.start("me", "S", lambda j: release.wait(10) and None)
    try:
        assert jobs.start("me", "S", lambda j: None) is first  # a second click: the same QC
        assert jobs.start("you", "S", lambda j: None) is not first  # another login's own
    finally:
        release.set()
    _wait(first)
    assert jobs.start("me", "S", lambda j: None) is not first  # ended: a new QC


def test_cancelling_a_queued_job_ends_it_at_once_and_frees_its_place() -> None:
    jobs = JobManager(max_jobs=1, per_login=2)
    release = threading.Event()
    try:
        running = jobs.start("me", "A", lambda j: release.wait(10) and None)
        queued = jobs.start("me", "B", lambda j: None)
        jobs.cancel(queued.id, "me")
        assert queued.ended() and queued.public_state == "cancelled"
        assert jobs.start("me", "C", lambda j: None).state == "queued"  # its place is free
        assert not running.ended()
    finally:
        release.set()
        jobs.shutdown()


def test_a_logins_many_jobs_never_evict_another_logins_finished_job() -> None:
    jobs = JobManager(max_jobs=1, per_login=1)
    try:
        theirs = jobs.start("other", "S", lambda j: j.scan_finished(_scan()), checks=False)
        _wait(theirs)
        mine = []
        for n in range(MAX_JOBS_KEPT + 6):  # more than the app keeps in all
            job = jobs.start("greedy", f"S{n}", lambda j: None, checks=False)
            _wait(job)
            mine.append(job)
        assert _found(jobs, theirs) and theirs.document() is not None
        # Its own oldest go (the last as its job ends, just after it says so), and only those.
        wait_until(
            lambda: [j for j in mine if _found(jobs, j)] == mine[-KEEP_PER_LOGIN:],
            message="evicted",
        )
        assert _found(jobs, theirs)
    finally:
        jobs.shutdown()


def _found(jobs: JobManager, job: Job) -> bool:
    try:
        return jobs.get(job.id, job.owner) is job
    except NotFound:
        return False


# -- what a finished job keeps ---------------------------------------------------------------

BIG_SITE = 6000  # photos: the size of site that made each kept job hold 12.5 MB
KEPT_BOUND = 1_500_000  # bytes one finished job of it may keep (docs/reliability.md)


def _big_qc(job: Job, n: int = BIG_SITE) -> None:
    """What the runner does for a site of ``n`` photos, with check outcomes like the real ones."""
    rng = random.Random(n)
    images = [
        ImageResult(
            path=f"Folder-{i % 12:02d}/DJI_{i:04d}.JPG",
            size=rng.randrange(6_000_000, 9_000_000),
            mtime=1_715_000_000 + i * 2,
            lat=52.37 + rng.random() / 1000,
            lon=4.89 + rng.random() / 1000,
            alt=60 + rng.random() * 20,
            taken=f"2024-05-14T09:{i // 60 % 60:02d}:{i % 60:02d}",
            camera="DJI FC6310",
            iso=100,
            exposure_time=1 / 800,
            bytes_read=60_000,
        )
        for i in range(n)
    ]
    for done, image in enumerate(images, 1):
        job.progress(Progress(done, n, done, image.folder, image, n // 12))
    result = ScanResult(site=job.site, images=images)
    job.scan_finished(result)
    job.checks_started()
    checks = []
    for done, image in enumerate(images, 1):
        focus, luma = round(rng.uniform(50, 900), 1), round(rng.uniform(60, 200), 1)
        checked = {"path": image.path, "source": "preview", "focus": focus, "mean_luma": luma}
        job.checks_progress(CheckProgress(done, n, checked))
        outcomes = (
            CheckOutcome("integrity", True, f"File complete: the {image.size} JPEG decodes fully"),
            CheckOutcome("blur", focus > 120, f"Sharp: focus {focus} (folder median 400)", focus),
            CheckOutcome("exposure", True, f"Exposure fine: mean luma {luma}", luma),
            CheckOutcome("position", True, f"{rng.uniform(1, 90):.1f} m from the site centre"),
            CheckOutcome("iso", True, "ISO 100 within the maximum 800", 100, 800),
            CheckOutcome("shutter", True, "1/800 s: fast enough", 1 / 800, 1 / 60),
        )
        checks.append(ImageChecks.of(image.path, outcomes, "preview", rng.uniform(0.01, 0.2)))
    job.checks_finished(CheckReport(job.site, images=checks))


def test_a_finished_job_of_a_6000_photo_site_keeps_its_results_in_a_bounded_size() -> None:
    jobs = JobManager(max_jobs=1)
    try:
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        job = jobs.start("me", "BIG", _big_qc)
        _wait(job)
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
        jobs.shutdown()
    assert job.public_state == "done"
    document = job.document()
    assert document is not None and len(document["images"]) == BIG_SITE
    assert kept < KEPT_BOUND, f"a finished job keeps {kept / 1e6:.1f} MB"


def test_an_ended_job_serves_the_same_document_events_and_files_as_before_it_ended(
    jobs: JobManager,
) -> None:
    seen: dict[str, Any] = {}

    def run(job: Job) -> None:
        _big_qc(job, 240)
        seen["document"] = job.document()
        seen["events"] = job.events_after(0, timeout=0)

    job = jobs.start("me", "BIG", run)
    _wait(job)
    assert job.result is None and job.report is None  # the objects are gone ...
    assert job.document() == seen["document"]  # ... but nothing a reader sees changed
    events = job.events_after(0, timeout=0)
    assert events[:-1] == seen["events"] and events[-1].data["state"] == "done"
    assert job.events_after(10, timeout=0) == events[10:]
    assert job.events_after(len(events), timeout=0) == []
    assert job.state_json()["scan_ready"] is True
    photo = seen["document"]["images"][7]
    assert job.listed_file(photo["path"]) == RemoteFile(photo["path"], photo["size"], 1_715_000_014)
    assert job.listed_file("Folder-00/NOT-LISTED.JPG") is None
