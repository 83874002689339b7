"""The process pools of an app or CLI run: started when first needed, shared, closed once.

Two use the one ``WorkerPool`` class, each sized by its own setting:

- EXIF parsing for the GPS scan (services/scan/parsing.py, ``QC_PARSE_WORKERS``): cores - 1, so
  one core stays with the process doing the SSH and SFTP work;
- measuring photo pixels for the checks (``MeasuringPool``, ``QC_CHECK_WORKERS``): decoding
  and measuring a 960x720 preview is ~11 ms of numpy and libjpeg per photo, so the check pass is
  CPU-bound on a LAN and every core measures.

They are two pools, not one, because a process pool runs its queue in order: a scan's
parsing batches (a few ms each, on the scan's critical path) would wait behind a check pass's
queue of measures (a site's worth, seconds), and each kind warms up different imports.

A check pass does not keep every measuring process busy whatever else runs: its
``WorkerGovernor`` samples the machine (``LoadSample``, from psutil) and sets how many photos are
measured at once, fewer when other processes hold the cores or memory runs short, more when
cores idle and photos wait, one step at a time and only after a steady reading (hysteresis).
"""

from __future__ import annotations

import importlib
import importlib.machinery
import logging
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import psutil

from qc_tool.heap import keep_freed_memory

log = logging.getLogger("qc_tool.workers")
INLINE_THREADS = 2  # a pool of 0 processes: threads of this process (tests, debugging)
WARM_UP_TIMEOUT_S = 60
MB = 1024 * 1024


def check_workers_setting(configured: int | None) -> int:
    """QC_CHECK_WORKERS: not set means one process per core, 0 means threads in this process."""
    return (os.cpu_count() or 2) if configured is None else configured


class WorkerPool:
    """``workers`` processes (0: ``INLINE_THREADS`` threads), started at the first ``executor()``.

    ``imports`` is the module the workers import while warming up, so the first task does
    not pay for it. Closed, the pool starts again on the next ``executor()``.
    """

    def __init__(self, workers: int, imports: str, name: str = "qc-worker") -> None:
        self._workers = workers
        self._imports = imports
        self._name = name
        self._executor: Executor | None = None
        self._lock = threading.Lock()

    @property
    def started(self) -> bool:
        return self._executor is not None

    def executor(self) -> tuple[Executor, int]:
        """The pool, started on first use, and how many tasks it runs at once."""
        with self._lock:
            if self._executor is None:
                self._executor = self._start()
            return self._executor, self._workers or INLINE_THREADS

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def _start(self) -> Executor:
        if not self._workers:
            return ThreadPoolExecutor(INLINE_THREADS, thread_name_prefix=self._name)
        # forkserver: never fork a process that runs SSH transport threads.
        context = multiprocessing.get_context("forkserver")
        pool = ProcessPoolExecutor(
            max_workers=self._workers, mp_context=context, initializer=keep_freed_memory
        )
        with _main_script_not_rerun():  # the processes start at these submits
            warming = [pool.submit(_warm_up, self._imports) for _ in range(self._workers)]
        for warm in warming:
            warm.result(timeout=WARM_UP_TIMEOUT_S)  # imports now, not in the first task's time
        return pool


@contextmanager
def _main_script_not_rerun() -> Iterator[None]:
    """Processes started in this block do not run the parent's main script again.

    A process started by forkserver (or spawn) first runs the parent's main script, so that
    functions defined there can be unpickled. Ours are handed only functions of qc_tool's
    modules, and for the ``qc-tool`` command that script imports the whole CLI (SSH, the
    cache, ...): measured, 25 MB more per process (services/workers.py, docs/performance.md).
    multiprocessing skips a main module whose spec is named ``__main__`` (as under ``python
    -m``); a script's main module has no spec, so it gets that one while processes start.
    """
    main = sys.modules.get("__main__")
    if main is None or getattr(main, "__spec__", None) is not None:
        yield
        return
    main.__spec__ = importlib.machinery.ModuleSpec("__main__", None)
    try:
        yield
    finally:
        main.__spec__ = None


def _warm_up(module: str) -> bool:
    importlib.import_module(module)
    return True


class MeasuringPool(WorkerPool):
    """The pool every check pass of this process measures on (web jobs and ZIP uploads alike)."""

    def __init__(self, workers: int) -> None:
        super().__init__(workers, "qc_tool.services.checks.measure", name="qc-measure")


@dataclass(frozen=True, slots=True)
class LoadSample:
    """One reading of the machine: what other processes use, and what is left."""

    others_busy_cores: float  # CPU used by processes that are not this one or its children
    available_mb: float  # memory the system can still give without swapping
    ours_cpu_s: float = 0.0  # CPU time of this process and its children so far
    ours_rss_mb: float = 0.0  # resident memory of this process and its children now


Sampler = Callable[[], LoadSample]


class PsutilSampler:
    """Samples the machine with psutil: busy cores less our own share, available memory.

    "Ours" is this process and every descendant (the measuring processes are children of the
    forkserver, itself our child). CPU is measured between two calls; the first call reports
    what the machine did since boot, so the governor takes one sample before it starts.
    """

    def __init__(self) -> None:
        self._me = psutil.Process()
        self._cores = psutil.cpu_count() or 1
        self._last: tuple[float, float, dict[int, float]] | None = None

    def __call__(self) -> LoadSample:
        now = time.monotonic()
        times = psutil.cpu_times()
        busy = times.user + times.system + getattr(times, "nice", 0.0) + getattr(times, "irq", 0.0)
        busy += getattr(times, "softirq", 0.0) + getattr(times, "steal", 0.0)
        ours, rss = self._ours()
        last, self._last = self._last, (now, busy, ours)
        others = 0.0
        if last is not None and now > last[0]:
            # A process of ours not listed last time started since (that listing had every
            # descendant then alive): all its CPU is in this interval. Counted from its first
            # listing instead, the measuring processes' start-up passed for another job's load
            # and the pass shrank to one worker 1.5 s in (LAN, docs/performance.md run 5).
            mine = sum(cpu - last[2].get(pid, 0.0) for pid, cpu in ours.items())
            others = max(0.0, (busy - last[1] - mine) / (now - last[0]))
        return LoadSample(
            min(others, float(self._cores)),
            psutil.virtual_memory().available / MB,
            sum(ours.values()),
            rss / MB,
        )

    def _ours(self) -> tuple[dict[int, float], int]:
        """CPU seconds per process of ours, and their resident memory summed."""
        cpu: dict[int, float] = {}
        rss = 0
        for proc in [self._me, *self._me.children(recursive=True)]:
            try:
                with proc.oneshot():
                    t = proc.cpu_times()
                    cpu[proc.pid] = t.user + t.system
                    rss += proc.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue  # a worker that ended between listing and reading
        return cpu, rss


@dataclass(frozen=True, slots=True)
class GovernorPolicy:
    """How the measuring count follows the load, and how slowly (never thrash)."""

    interval_s: float = 0.5  # between samples
    steady_samples: int = 3  # a change needs this many readings in a row that ask for it
    hold_samples: int = 4  # and after a change, this many readings before the next one
    low_memory_mb: float = 256.0  # below this much available memory, one fewer


class WorkerGovernor:
    """How many photos a pass measures at once, from ``1`` to ``most`` (the pool's processes).

    ``observe(sample, waiting)`` takes one reading and returns the (maybe new) count; a thread
    started by ``running()`` feeds it the sampler's readings while a pass runs. The count moves
    by one at a time, only after ``steady_samples`` readings in a row asked for the same
    direction and ``hold_samples`` readings after the last move: a load that comes and goes
    between readings changes nothing. ``history`` keeps (seconds since start, count) per change.
    """

    def __init__(
        self,
        most: int,
        sampler: Sampler | None = None,
        policy: GovernorPolicy = GovernorPolicy(),
        cores: int | None = None,
    ) -> None:
        self.most = max(1, most)
        self.cores = cores or psutil.cpu_count() or 1
        self.policy = policy
        self._sampler = sampler
        self._lock = threading.Lock()
        self._count = self.most
        self._streak = 0  # readings in a row asking to move, signed (+ grow, - shrink)
        self._since_move = policy.hold_samples
        self._started = time.monotonic()
        self.history: list[tuple[float, int]] = [(0.0, self._count)]
        self.samples = 0
        self.peak_rss_mb = 0.0
        self.cpu_s = 0.0  # ours, over the samples taken while running
        self._first_cpu: float | None = None

    @property
    def count(self) -> int:
        with self._lock:
            return self._count

    def wanted(self, sample: LoadSample, waiting: bool) -> int:
        """The count this one reading alone would ask for."""
        free = self.cores - sample.others_busy_cores
        want = max(1, min(self.most, int(free + 0.25)))  # a core 3/4 free is worth a worker
        if sample.available_mb < self.policy.low_memory_mb:
            want = min(want, self._count - 1)
        if not waiting:
            want = min(want, self._count)  # no photo waits: nothing to grow for
        return max(1, want)

    def observe(self, sample: LoadSample, waiting: bool) -> int:
        """Take one reading; returns the count to measure with from now on."""
        with self._lock:
            self.samples += 1
            self.peak_rss_mb = max(self.peak_rss_mb, sample.ours_rss_mb)
            if self._first_cpu is None:
                self._first_cpu = sample.ours_cpu_s
            self.cpu_s = sample.ours_cpu_s - self._first_cpu
            self._since_move += 1
            want = self.wanted(sample, waiting)
            direction = (want > self._count) - (want < self._count)
            same_way = direction != 0 and (self._streak > 0) == (direction > 0)
            self._streak = self._streak + direction if same_way else direction
            if abs(self._streak) >= self.policy.steady_samples and (
                self._since_move >= self.policy.hold_samples
            ):
                self._count += direction
                self._streak, self._since_move = 0, 0
                self.history.append((round(time.monotonic() - self._started, 3), self._count))
                log.info(
                    "measuring %d photos at once (others use %.1f cores, %.0f MB free)",
                    self._count,
                    sample.others_busy_cores,
                    sample.available_mb,
                )
            return self._count

    @contextmanager
    def running(
        self, waiting: Callable[[], bool], on_change: Callable[[int], None]
    ) -> Iterator[WorkerGovernor]:
        """Sample every ``interval_s`` in a thread until the block ends; ``on_change(count)``
        is called (from that thread) whenever the count moves."""
        sampler = self._sampler or PsutilSampler()
        sampler()  # the baseline the first reading's CPU is measured from
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(self.policy.interval_s):
                before = self.count
                try:
                    sample = sampler()
                except (psutil.Error, OSError) as exc:  # a reading lost: keep the count
                    log.debug("load sample failed: %s", exc)
                    continue
                if self.observe(sample, waiting()) != before:
                    on_change(self.count)

        with self._lock:
            self._started = time.monotonic()
        thread = threading.Thread(target=loop, name="qc-governor", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()
