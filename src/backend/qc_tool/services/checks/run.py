"""Validate a site's photos: read each preview over the pool, measure on the other cores, judge.

Follows the GPS scan (it needs the positions and capture times). The network
reads and the CPU work overlap: each connection's thread hands the bytes it
read to a process pool and goes on reading. The photos read and not yet
measured hold at most ``CheckOptions.memory_budget`` bytes (QC_CHECK_MEMORY_MB),
whatever the site's size or the photos' (budget.py), so memory stays flat however
far the network runs ahead; a ``WorkerGovernor`` sets how many are measured at once
from the machine's load (services/workers.py).
"""

from __future__ import annotations

import functools
import logging
import resource
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor, Future, wait
from dataclasses import asdict, dataclass, field
from typing import Any

from qc_tool.domain.checks.result import CheckOutcome, ImageChecks
from qc_tool.domain.checks.rules import CaptureFacts
from qc_tool.domain.checks.site import ImageEvidence, judge_site, rules_not_applied
from qc_tool.domain.flight import FlightFacts
from qc_tool.domain.models import TRUNCATED_BODY, ImageResult, RemoteFile, ScanResult
from qc_tool.domain.pixel_reader import PixelSource
from qc_tool.services.checks.budget import ByteBudget, reservation
from qc_tool.services.checks.measure import CachedMeasure, Measured, SourceInfo, measure
from qc_tool.services.checks.options import MB, CheckOptions
from qc_tool.services.ports import Connector, MeasureCache, NoCache, SiteConnection
from qc_tool.services.progress import Rate
from qc_tool.services.scan.dealing import Dealer, OnResult, read_over_pool
from qc_tool.services.scan.pool import ConnectionPool, pool_size
from qc_tool.services.workers import WorkerGovernor

log = logging.getLogger("qc_tool.checks")
PROGRESS_EVERY = 20
PHOTOS_PER_WORKER = 4  # read and not yet measured, at most, besides the bytes


@dataclass(frozen=True, slots=True)
class CheckProgress:
    """Photos judged of the total; whoever shows a rate keeps a ``progress.Rate`` of these."""

    done: int
    total: int
    checked: dict[str, Any] | None = None  # the photo just measured: path, source, measures


@dataclass(slots=True)
class CheckStats:
    """Measured, never estimated: wall time, summed worker CPU, and the ratio of the two."""

    seconds: float = 0.0
    images_per_s: float = 0.0
    seconds_per_image: float = 0.0
    bytes_read: int = 0  # by this pass (cached measures read nothing)
    cached: int = 0  # photos whose measures came from the cache
    connections: int = 0  # SSH connections the pass used (none when everything was cached)
    preview_images: int = 0
    full_images: int = 0
    band_images: int = 0  # photos without a preview, judged from a band (pixel_reader.py)
    band_bytes_read: int = 0  # by this pass, for those photos ...
    band_file_bytes: int = 0  # ... of their files' bytes
    cpu_seconds: float = 0.0  # summed per-image measuring CPU time, in the workers, this pass
    speedup: float = 0.0  # cpu_seconds / seconds: how many cores the measuring kept busy
    process_cpu_seconds: float = 0.0  # this process (network, parsing, judging)
    peak_rss_mb: float = 0.0  # this process's high-water mark so far (not the workers')
    memory_budget_mb: float = 0.0  # photos from their first read to their measure's end ...
    held_peak_mb: float = 0.0  # ... held at most this much (reserved before reading)
    overdrawn_mb: float = 0.0  # taken past photos' reservations (reads beyond a file's size)
    budget_waits: int = 0  # times a reading thread waited for the workers to make room
    # How many photos were measured at once: (seconds into the pass, count) at the start and
    # at every change the governor made from the machine's load.
    workers_over_time: list[tuple[float, int]] = field(default_factory=list)
    ours_cpu_seconds: float = 0.0  # this process and its workers, sampled over the pass
    ours_peak_rss_mb: float = 0.0  # this process and its workers together, highest sample

    def to_json(self) -> dict[str, Any]:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}


@dataclass(slots=True)
class CheckReport:
    site: str
    images: list[ImageChecks] = field(default_factory=list)
    folders: dict[str, Counter[str]] = field(default_factory=dict)  # folder -> failure kind -> n
    stats: CheckStats = field(default_factory=CheckStats)
    # Site-wide rules that could not apply to these photos, as sentences (the verdict's notes).
    not_applied: list[str] = field(default_factory=list)
    # How each photo was flown (DJI XMP: height, gimbal, RTK), for the result and coverage.
    flight: dict[str, FlightFacts] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "images": [i.to_json() for i in self.images],
            "folders": [{"name": f, "failures": dict(c)} for f, c in self.folders.items()],
            "stats": self.stats.to_json(),
            "not_applied": list(self.not_applied),
        }


CheckProgressCallback = Callable[[CheckProgress], None]


def check_site(
    connector: Connector,
    scan: ScanResult,
    executor: Executor,
    *,
    options: CheckOptions = CheckOptions(),
    on_progress: CheckProgressCallback | None = None,
    cancelled: Callable[[], bool] = lambda: False,
    workers: int = 0,
    cache: MeasureCache | None = None,
    governor: WorkerGovernor | None = None,
    budget: ByteBudget | None = None,
) -> CheckReport:
    """Check every readable photo of a scanned site; ``executor`` runs the pixel work.

    ``governor`` decides how many photos ``executor`` measures at once (never more than it
    has workers); by default one that starts at ``workers`` and follows the machine's load.
    ``budget`` bounds the bytes of photos read and not yet measured (by default
    ``options.memory_budget``).
    Measures are cached per file: photos unchanged since their last check, measured with the
    same measuring settings, are only judged again (no connection is opened when none is left).
    """
    started, cpu_before = time.perf_counter(), time.process_time()
    cache = cache if cache is not None else NoCache()
    key = options.settings.measuring_key(options.whole_file)
    prefix = f"/{scan.site}"
    images = [i for i in scan.images if i.error in (None, TRUNCATED_BODY)]
    governor = governor or WorkerGovernor(max(1, workers))
    # Photos held: within the bytes of the budget, and no more than 4 per worker (as many
    # as keep every worker busy while the reads go on).
    budget = budget or ByteBudget(
        options.memory_budget, max_items=PHOTOS_PER_WORKER * governor.most
    )
    run = _CheckRun(images, executor, options, on_progress, governor, budget, cancelled)
    cached = cache.get_measures(connector.server_id, [i.file for i in images], prefix, key)
    run.take_cached(cached)
    # A file the scan found cut short is flagged as truncated anyway; its preview lies past
    # the end, and a whole-file read would buy only a failing decode (22 % of the bytes of
    # the benchmark's check pass went there).
    to_read = [i.file for i in images if i.path not in cached and i.error is None]
    for _ in range(sum(1 for i in images if i.path not in cached and i.error is not None)):
        run.skipped()  # judged from the scan alone; counted so the progress reaches its total
    if to_read:
        with governor.running(run.waiting, run.dispatch):
            _read_and_measure(connector, scan.site, to_read, run, options, cancelled)
    evidence = run.evidence()
    fresh = run.fresh_measures(to_read)
    if fresh and not cancelled():
        cache.put_measures(connector.server_id, fresh, prefix, key)
    report = CheckReport(scan.site)
    dims = {i.path: info.dimensions if (info := run.source(i.path)) else None for i in images}
    report.images, report.not_applied = _judge(evidence, images, dims, options, run.not_checked)
    report.flight = {
        path: measured.flight
        for path, (measured, _) in evidence.items()
        if measured is not None and measured.flight is not None
    }
    for image, checks in zip(images, report.images, strict=True):
        counts = report.folders.setdefault(image.folder, Counter())
        counts.update(o.name for o in checks.failures)
    _fill_stats(report, run, time.perf_counter() - started, time.process_time() - cpu_before)
    _fill_adaptive_stats(report.stats, run.budget, governor)
    report.stats.cached = len(cached)
    report.stats.connections = run.connections
    log.info(
        "Checks of %s done: %d images, %d failed a photo check, %.1f s (%.1f images/s), "
        "speed-up %.2f",
        scan.site,
        len(report.images),
        sum(c.valid is False for c in report.images),
        report.stats.seconds,
        report.stats.images_per_s,
        report.stats.speedup,
    )
    return report


def _read_and_measure(
    connector: Connector,
    site: str,
    files: list[RemoteFile],
    run: _CheckRun,
    options: CheckOptions,
    cancelled: Callable[[], bool],
) -> None:
    dealer = Dealer([(pool_size(len(files), options.max_connections), files)])
    pool = ConnectionPool(connector, connector.connect())
    try:
        pool.grow(dealer.width, needed=lambda: dealer.left() > 20)

        admission = _Admission(run.budget, cancelled)

        def read_on(
            conn: SiteConnection, dealt: Iterator[RemoteFile], report: OnResult[PixelSource]
        ) -> None:
            conn.read_pixels(
                site,
                dealt,
                report,
                whole_file=options.whole_file,
                cancelled=cancelled,
                admission=admission,
            )

        read_over_pool(pool, dealer, read_on, run.record, cancelled, "qc-check")
        run.wait_for_workers()
    finally:
        run.connections = pool.opened  # before close() forgets them
        pool.close()


class _Admission:
    """The pass's budget as the connections see it (a ReadAdmission): a photo's reads start
    once its whole file fits (all its read program could ask for), so the bytes in flight
    and those waiting for a worker are held under the one limit, whatever the photos' sizes.
    """

    def __init__(self, budget: ByteBudget, cancelled: Callable[[], bool]) -> None:
        self._budget = budget
        self._cancelled = cancelled
        self._lock = threading.Lock()
        self._asked: dict[str, int] = {}  # bytes each photo's reads asked for so far

    def try_admit(self, f: RemoteFile) -> bool:
        return self._budget.try_reserve(f.path, reservation(f.size))

    def admit(self, f: RemoteFile) -> bool:
        return self._budget.reserve(f.path, reservation(f.size), self._cancelled)

    def requested(self, f: RemoteFile, nbytes: int) -> None:
        with self._lock:
            before = self._asked.get(f.path, 0)
            self._asked[f.path] = after = before + nbytes
        over = after - max(before, reservation(f.size))
        if over > 0:  # a read program that reads more than its file: counted, not waited for
            self._budget.extend(f.path, over)

    def finished(self, f: RemoteFile) -> None:
        with self._lock:
            self._asked.pop(f.path, None)
        self._budget.finished(f.path)

    def abandon(self, f: RemoteFile) -> None:
        with self._lock:
            self._asked.pop(f.path, None)
        self._budget.withdraw(f.path)
        self._budget.release(f.path)


def _kept(source: PixelSource) -> int:
    """The bytes a photo holds while it waits for and goes through a worker."""
    band = source.band.pixels.nbytes if source.band is not None else 0
    return (
        len(source.data)
        + len(source.header)
        + len(source.thumbnail or b"")
        + len(source.tail)
        + band
    )


class _CheckRun:
    """Dealing, hand-over to the workers, progress: the shared state of one check pass."""

    def __init__(
        self,
        images: list[ImageResult],
        executor: Executor,
        options: CheckOptions,
        on_progress: CheckProgressCallback | None,
        governor: WorkerGovernor,
        budget: ByteBudget,
        cancelled: Callable[[], bool],
    ) -> None:
        self._executor = executor
        self._options = options
        self._on_progress = on_progress
        self._governor = governor
        self._cancelled = cancelled
        self.budget = budget
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # nothing waiting, nothing measuring
        self._waiting: deque[tuple[RemoteFile, PixelSource]] = deque()
        self._measuring = 0
        self._futures: dict[str, Future[Measured]] = {}
        self._read_errors: dict[str, str] = {}
        self.not_checked: dict[str, str] = {}  # photos with no pixels to judge: why
        self._sources: dict[str, SourceInfo] = {}
        self._sizes = {i.path: i.file.size for i in images}
        self._cached: dict[str, Measured] = {}
        self.total = len(images)
        self.done = 0
        self.connections = 0  # pool slots that got a connection (0: everything was cached)
        self._rate = Rate()  # for the log lines
        self._rate.update(0, self.total)  # the clock starts with the pass

    def take_cached(self, cached: Mapping[str, CachedMeasure]) -> None:
        for path, entry in cached.items():
            self._cached[path] = entry.measured
            self._sources[path] = entry.info
            self._finished()

    def skipped(self) -> None:
        self._finished()

    def record(self, f: RemoteFile, source: PixelSource | None, error: str | None) -> None:
        if source is None:
            with self._lock:
                self._read_errors[f.path] = error or "unreadable"
            self._finished()
            return
        if source.not_checked is not None:  # a HEIC or DNG without a JPEG preview
            with self._lock:
                self.not_checked[f.path] = source.not_checked
                self._sources[f.path] = SourceInfo(source.source, source.bytes_read, None)
            self._finished()
            return
        # The photo keeps of its reservation what the worker is handed. Backpressure: the
        # reading thread waits while the budget's count of photos wait for a worker.
        self.budget.hand_over(f.path, _kept(source))
        with self._lock:
            self._sources[f.path] = SourceInfo(source.source, source.bytes_read, source.dimensions)
            self._waiting.append((f, source))
        self.dispatch()

    def waiting(self) -> bool:
        """Whether photos wait for a worker (the governor grows only then)."""
        with self._lock:
            return bool(self._waiting)

    def dispatch(self, _count: int | None = None) -> None:
        """Hand waiting photos to the executor while fewer than the governor's count measure."""
        while True:
            with self._lock:
                if self._cancelled() and self._waiting:
                    dropped, self._waiting = self._waiting, deque()
                    for dropped_file, _ in dropped:
                        self.budget.release(dropped_file.path)
                if not self._waiting or self._measuring >= self._governor.count:
                    self._idle.notify_all()
                    return
                f, source = self._waiting.popleft()
                self._measuring += 1
            future = self._executor.submit(measure, f.size, source, self._options.settings)
            del source  # the executor holds the bytes until the worker has them
            with self._lock:
                self._futures[f.path] = future
            future.add_done_callback(functools.partial(self._measured, f.path))

    def _measured(self, path: str, future: Future[Measured]) -> None:
        self.budget.release(path)
        with self._lock:
            self._measuring -= 1
        self.dispatch()
        self._finished(_checked(path, future))

    def _finished(self, checked: dict[str, Any] | None = None) -> None:
        with self._lock:
            self.done += 1
            done = self.done
        if done % PROGRESS_EVERY == 0 or done == self.total:
            with self._lock:
                self._rate.update(done, self.total)
                rate, eta = self._rate.rate, self._rate.eta_s
            log.info(
                "Checks: %d/%d images, %.1f images/s, ETA %s",
                done,
                self.total,
                rate,
                f"{eta:.0f} s" if eta is not None else "unknown",
            )
        if self._on_progress is not None:
            self._on_progress(CheckProgress(done, self.total, checked))

    def wait_for_workers(self) -> None:
        """Wait for every photo read, so the pool's connections close after the last measure."""
        with self._idle:
            self._idle.wait_for(lambda: not self._waiting and not self._measuring)
            pending = list(self._futures.values())
        wait(pending)  # a worker's exception is reported with its photo by evidence()

    def evidence(self) -> dict[str, tuple[Measured | None, str | None]]:
        out: dict[str, tuple[Measured | None, str | None]] = {}
        for path, error in self._read_errors.items():
            out[path] = (None, error)
        for path, measured in self._cached.items():
            out[path] = (measured, None)
        for path, future in self._futures.items():
            try:
                out[path] = (future.result(), None)
            except Exception as exc:  # a worker that died costs its photo, with the reason
                log.exception("measuring %s failed", path)
                out[path] = (None, f"could not be measured: {type(exc).__name__}")
        return out

    def was_cached(self, path: str) -> bool:
        return path in self._cached

    def file_size(self, path: str) -> int:
        return self._sizes.get(path, 0)

    def source(self, path: str) -> SourceInfo | None:
        return self._sources.get(path)

    def fresh_measures(self, files: list[RemoteFile]) -> list[tuple[RemoteFile, CachedMeasure]]:
        """Measures taken by this pass that are worth keeping (no read or worker failure)."""
        out = []
        for f in files:
            future = self._futures.get(f.path)
            if future is None or not future.done() or future.exception() is not None:
                continue
            out.append((f, CachedMeasure(future.result(), self._sources[f.path])))
        return out

    def cpu_seconds(self) -> float:
        """Worker CPU spent by this pass (cached measures cost none now)."""
        return sum(
            f.result().cpu_seconds
            for f in self._futures.values()
            if f.done() and f.exception() is None
        )


def _checked(path: str, future: Future[Measured]) -> dict[str, Any]:
    """What the live page shows of a photo as soon as it is measured (verdicts come at the end)."""
    out: dict[str, Any] = {"path": path, "source": None, "focus": None, "mean_luma": None}
    if future.exception() is not None:
        return out
    pixels = future.result().pixels
    if pixels is not None:
        out["source"] = pixels.source
        out["focus"] = pixels.blur.score
        out["mean_luma"] = round(pixels.exposure.mean, 1)
    return out


def _judge(
    evidence: dict[str, tuple[Measured | None, str | None]],
    images: list[ImageResult],
    dims: dict[str, tuple[int, int] | None],
    options: CheckOptions,
    not_checked: Mapping[str, str],
) -> tuple[list[ImageChecks], list[str]]:
    """Every photo's checks, and the site-wide rules that could not apply to them."""
    items = []
    for image in images:
        judged_none = image.error == TRUNCATED_BODY or image.path in not_checked
        unread = None if judged_none else "not checked (cancelled)"
        measured, error = evidence.get(image.path, (None, unread))
        facts = CaptureFacts(
            iso=image.iso,
            exposure_time=image.exposure_time,
            model=image.camera,
            gimbal_pitch=measured.gimbal_pitch if measured else None,
            rtk_fix=measured.flight.rtk_fix if measured and measured.flight else None,
            rtk_std_m=measured.flight.rtk_std_m if measured and measured.flight else None,
        )
        items.append(
            ImageEvidence(
                name=image.path,
                source=measured.pixels.source if measured and measured.pixels else "preview",
                seconds=measured.cpu_seconds if measured else 0.0,
                pixels=measured.pixels if measured else None,
                decode_error=error or (measured.decode_error if measured else None),
                integrity=measured.integrity if measured else None,
                digest=measured.digest if measured else None,
                lat=image.lat,
                lon=image.lon,
                alt=image.alt,
                taken=image.taken,
                capture=facts,
                not_checked=not_checked.get(image.path),
            )
        )
    judged = judge_site(items, options.settings, options.profile)
    checks = [
        _with_resolution(c, image, dims.get(image.path), options)
        for c, image in zip(judged, images, strict=True)
    ]
    return checks, rules_not_applied(items, options.settings)


def _with_resolution(
    checks: ImageChecks, image: ImageResult, dims: tuple[int, int] | None, options: CheckOptions
) -> ImageChecks:
    """Add what the site pass does not judge: the main image's resolution, a truncated upload."""
    extra: list[CheckOutcome] = []
    if image.error:
        extra.append(_truncation(image))
    minimum = options.min_resolution
    if minimum is not None:
        if dims is None:
            extra.append(CheckOutcome("resolution", True, "Resolution unknown", judged=False))
        else:
            long_ok = max(dims) >= max(minimum) and min(dims) >= min(minimum)
            value, limit = f"{dims[0]}x{dims[1]}", f"{minimum[0]}x{minimum[1]}"
            message = (
                f"Resolution {value}"
                if long_ok
                else f"Resolution too low: {value} (minimum {limit})"
            )
            extra.append(CheckOutcome("resolution", long_ok, message, value, limit))
    outcomes = (*checks.outcomes, *extra)
    return ImageChecks.of(checks.name, outcomes, checks.source, checks.seconds, checks.not_checked)


def _truncation(image: ImageResult) -> CheckOutcome:
    return CheckOutcome("integrity", False, "Truncated file: the image data ends early")


def _fill_stats(report: CheckReport, run: _CheckRun, seconds: float, process_cpu: float) -> None:
    s = report.stats
    n = len(report.images)
    s.seconds = seconds
    s.images_per_s = n / seconds if seconds > 0 else 0.0
    s.seconds_per_image = seconds / n if n else 0.0
    s.cpu_seconds = run.cpu_seconds()
    s.speedup = s.cpu_seconds / seconds if seconds > 0 else 0.0
    s.process_cpu_seconds = process_cpu
    s.peak_rss_mb = _peak_rss_mb()
    for image in report.images:
        info = run.source(image.name)
        if info is None:
            continue
        if not run.was_cached(image.name):
            s.bytes_read += info.bytes_read
        if info.source == "preview":
            s.preview_images += 1
        elif info.source == "band":
            s.band_images += 1
            if not run.was_cached(image.name):
                s.band_bytes_read += info.bytes_read
                s.band_file_bytes += run.file_size(image.name)
        else:
            s.full_images += 1


def _fill_adaptive_stats(s: CheckStats, budget: ByteBudget, governor: WorkerGovernor) -> None:
    s.memory_budget_mb = budget.limit / MB
    s.held_peak_mb = budget.peak / MB
    s.overdrawn_mb = budget.overdrawn / MB
    s.budget_waits = budget.waits
    s.workers_over_time = list(governor.history)
    s.ours_cpu_seconds = governor.cpu_s
    s.ours_peak_rss_mb = governor.peak_rss_mb


def _peak_rss_mb() -> float:
    """This process's peak resident memory so far (getrusage: KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
