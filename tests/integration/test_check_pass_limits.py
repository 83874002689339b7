"""The check pass over SFTP within its memory budget, and measuring fewer at once under load.

Bytes are counted at the server, not from RSS or the budget's own figures: with the workers
stopped, nothing read is let go, so every byte the server sent is still held by the pass (in
flight, decoded, or waiting for a worker); the budget bounds all of it.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from qc_tool.demo.imagegen import ImageSpec, build_jpeg, quantise_gps
from qc_tool.demo.scene import encode_body, render_scene
from qc_tool.demo.sftp_server import SftpServerHandle, start_sftp_server
from qc_tool.domain.models import ScanResult
from qc_tool.domain.pixel_reader import PixelSource
from qc_tool.services.checks.budget import ByteBudget, reservation
from qc_tool.services.checks.options import CheckOptions
from qc_tool.services.checks.run import CheckReport, check_site
from qc_tool.services.ports import Connector, NoCache
from qc_tool.services.scan.site_analysis_service import scan_site
from qc_tool.services.workers import GovernorPolicy, LoadSample, WorkerGovernor
from scan_support import connector
from waiting import wait_until

USER, PASSWORD = "tech", "pw-limits"
SITE = "S1"
PHOTOS = 24
CONNECTIONS = 2


def _held(source: PixelSource) -> int:
    return len(source.data) + len(source.header)


class Tally:
    """Bytes handed to the pass and bytes whose measure ended; the most held at once."""

    def __init__(self) -> None:
        self.handed = self.measured = self.most = 0
        self.running = self.most_running = 0
        self._lock = threading.Lock()

    def hand(self, size: int) -> None:
        with self._lock:
            self.handed += size
            self.most = max(self.most, self.handed - self.measured)

    def start(self) -> None:
        with self._lock:
            self.running += 1
            self.most_running = max(self.most_running, self.running)

    def end(self, size: int) -> None:
        with self._lock:
            self.running -= 1
            self.measured += size


class CountingConnector:
    """A real connector whose connections count the bytes of every photo they hand over."""

    def __init__(self, inner: Connector, tally: Tally) -> None:
        self.inner, self.tally = inner, tally

    @property
    def server_id(self) -> str:
        return self.inner.server_id

    def connect(self) -> Any:
        return _CountingConnection(self.inner.connect(), self.tally)


class _CountingConnection:
    def __init__(self, inner: Any, tally: Tally) -> None:
        self.inner, self.tally = inner, tally

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def read_pixels(self, site: str, files: Any, on_result: Callable[..., None], **kw: Any) -> None:
        def counted(f: Any, source: PixelSource | None, error: str | None) -> None:
            if source is not None:
                self.tally.hand(_held(source))
            on_result(f, source, error)

        self.inner.read_pixels(site, files, counted, **kw)


class GatedExecutor(Executor):
    """Threads that measure only once ``gate`` is set, and tell the tally when each ends."""

    def __init__(self, tally: Tally, workers: int = 2) -> None:
        self.tally = tally
        self.gate = threading.Event()
        self.watching = False  # once set: the most photos ever handed over and not done
        self.most_outstanding = 0
        self._outstanding = 0
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(workers)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        size = _held(args[1])
        with self._lock:
            self._outstanding += 1
            if self.watching:
                self.most_outstanding = max(self.most_outstanding, self._outstanding)

        def run() -> Any:
            self.gate.wait()
            self.tally.start()
            try:
                return fn(*args, **kwargs)
            finally:
                with self._lock:
                    self._outstanding -= 1
                self.tally.end(size)

        return self._pool.submit(run)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.gate.set()
        self._pool.shutdown(wait, cancel_futures=cancel_futures)


def _photo(i: int, preview: bytes) -> bytes:
    spec = ImageSpec(
        taken=datetime(2024, 5, 14, 9, 0) + timedelta(seconds=30 * i),
        gps=quantise_gps(52.37 + i * 1e-4, 4.89 + i * 1e-4, 40.0),
        preview=(480, 360),
    )
    return build_jpeg(spec, encode_body(640, 480, seed=i), preview_jpeg=preview)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("limits-root")
    folder = root / "sites" / SITE / "Tower"
    folder.mkdir(parents=True)
    for i in range(PHOTOS):
        out = io.BytesIO()
        Image.fromarray(render_scene(480, 360, seed=200 + i)).save(out, "JPEG", quality=90)
        (folder / f"DJI_{i:04d}.JPG").write_bytes(_photo(i, out.getvalue()))
    return root


@pytest.fixture(scope="module")
def sftp(site: Path) -> Iterator[SftpServerHandle]:
    with start_sftp_server(site, {USER: PASSWORD}, sites_root="/sites") as srv:
        yield srv


@pytest.fixture(scope="module")
def server(sftp: SftpServerHandle, site: Path) -> Connector:
    kh = sftp.write_known_hosts(site / "known_hosts")
    return connector(sftp.host, sftp.port, kh, "/sites", USER, PASSWORD)


@pytest.fixture(scope="module")
def scan(server: Connector) -> ScanResult:
    return scan_site(server, NoCache(), SITE)


@pytest.fixture(scope="module")
def unhurried(server: Connector, scan: ScanResult) -> CheckReport:
    """The pass with room to spare: what every pass below must decide too."""
    with ThreadPoolExecutor(2) as pool:
        return check_site(server, scan, pool, workers=2)


@pytest.fixture(scope="module")
def unhurried_whole(server: Connector, scan: ScanResult) -> CheckReport:
    with ThreadPoolExecutor(2) as pool:
        return check_site(server, scan, pool, workers=2, options=CheckOptions(whole_file=True))


def _verdicts(report: CheckReport) -> list[tuple[str, bool, tuple[str, ...]]]:
    return [(c.name, c.valid, tuple(o.name for o in c.failures)) for c in report.images]


def _in_thread(work: Callable[[], CheckReport]) -> tuple[threading.Thread, list[CheckReport]]:
    out: list[CheckReport] = []
    thread = threading.Thread(target=lambda: out.append(work()), daemon=True)
    thread.start()
    return thread, out


@pytest.mark.parametrize("whole_file", [False, True], ids=["previews", "whole files"])
def test_bytes_in_flight_and_waiting_for_a_worker_stay_within_one_budget(
    sftp: SftpServerHandle,
    server: Connector,
    scan: ScanResult,
    unhurried: CheckReport,
    unhurried_whole: CheckReport,
    site: Path,
    whole_file: bool,
) -> None:
    sizes = [_file_size(site, i) for i in range(PHOTOS)]
    limit = 3 * reservation(max(sizes))  # room for three photos; the workers are stopped
    tally, budget = Tally(), ByteBudget(limit)
    executor = GatedExecutor(tally)
    options = CheckOptions(max_connections=CONNECTIONS, memory_budget=limit, whole_file=whole_file)
    sent_before = sftp.bytes_read
    thread, out = _in_thread(
        lambda: check_site(
            CountingConnector(server, tally),
            scan,
            executor,
            options=options,
            workers=2,
            budget=budget,
        )
    )
    try:
        # Stalled: a photo waits for room and none is being read; or the readers ran past
        # the budget (what a pass without the budget's admission does).
        wait_until(
            lambda: sftp.bytes_read - sent_before > limit or (budget.queued and not budget.reading),
            message="the readers stalled for room",
        )
        sent = sftp.bytes_read - sent_before
        assert sent <= limit, (sent, limit)  # every byte sent is still held: none measured
        assert tally.handed < sum(sizes)  # the readers stopped: most photos are not read yet
    finally:
        executor.gate.set()
    thread.join(timeout=60)
    executor.shutdown()
    assert budget.peak <= limit and budget.held == 0 and budget.overdrawn == 0
    assert _verdicts(out[0]) == _verdicts(unhurried_whole if whole_file else unhurried)
    assert out[0].stats.memory_budget_mb == pytest.approx(limit / 2**20)
    assert 0 < out[0].stats.held_peak_mb <= limit / 2**20


def _file_size(site: Path, i: int) -> int:
    return (site / "sites" / SITE / "Tower" / f"DJI_{i:04d}.JPG").stat().st_size


def test_a_photo_larger_than_the_budget_is_read_and_measured_alone(
    server: Connector, scan: ScanResult, unhurried: CheckReport, site: Path
) -> None:
    tally, budget = Tally(), ByteBudget(1)  # every photo is larger than the whole budget
    executor = GatedExecutor(tally)
    executor.gate.set()
    report = check_site(
        CountingConnector(server, tally),
        scan,
        executor,
        options=CheckOptions(max_connections=CONNECTIONS),
        workers=2,
        budget=budget,
    )
    executor.shutdown()
    assert tally.most_running == 1  # one at a time
    # One photo's reservation at a time, from its first read to the end of its measure.
    assert budget.peak == max(reservation(_file_size(site, i)) for i in range(PHOTOS))
    assert budget.waits > 0 and budget.held == 0 and budget.overdrawn == 0
    assert _verdicts(report) == _verdicts(unhurried)


def _governed_pass(
    server: Connector,
    scan: ScanResult,
    governor: WorkerGovernor,
    meanwhile: Callable[[GatedExecutor], None],
) -> tuple[CheckReport, GatedExecutor]:
    """A pass whose measures wait at a gate while ``meanwhile`` watches the governor."""
    tally = Tally()
    executor = GatedExecutor(tally)
    thread, out = _in_thread(
        lambda: check_site(
            CountingConnector(server, tally),
            scan,
            executor,
            options=CheckOptions(max_connections=CONNECTIONS),
            workers=2,
            governor=governor,
        )
    )
    try:
        wait_until(lambda: governor.count == 1, message=lambda: f"a shrink: {governor.history}")
        meanwhile(executor)
    finally:
        executor.gate.set()
    thread.join(timeout=60)
    executor.shutdown()
    return out[0], executor


def test_a_pass_under_load_measures_fewer_at_once_and_says_so(
    server: Connector, scan: ScanResult, unhurried: CheckReport
) -> None:
    """An injected reading: other processes hold both cores from the start."""
    busy = LoadSample(others_busy_cores=2.0, available_mb=8000.0)
    governor = WorkerGovernor(
        2, sampler=lambda: busy, policy=GovernorPolicy(interval_s=0.01), cores=2
    )

    def watch(executor: GatedExecutor) -> None:
        executor.watching = True

    report, executor = _governed_pass(server, scan, governor, watch)
    assert [count for _, count in report.stats.workers_over_time] == [2, 1]
    assert executor.most_outstanding == 1  # after the shrink, one photo at a time went out
    assert _verdicts(report) == _verdicts(unhurried)


def test_a_pass_beside_cpu_burning_processes_shrinks_once_and_decides_the_same(
    server: Connector,
    scan: ScanResult,
    unhurried: CheckReport,
    cpu_burners: list[int],
) -> None:
    """Real readings (psutil): two other processes burn both cores while the pass runs."""
    governor = WorkerGovernor(2, policy=GovernorPolicy(interval_s=0.05), cores=2)

    def more_readings(_executor: GatedExecutor) -> None:
        wait_until(lambda: governor.samples >= 20, message="more readings under the same load")

    report, _executor = _governed_pass(server, scan, governor, more_readings)
    assert [count for _, count in report.stats.workers_over_time] == [2, 1]  # no thrash
    assert _verdicts(report) == _verdicts(unhurried)
