"""The process pools of an app or CLI run: started when first needed, shared, closed once.

Two use the one ``WorkerPool`` class, each sized by its own setting:

- EXIF parsing for the GPS scan (services/scan/parsing.py, ``QC_PARSE_WORKERS``): cores - 1, so
  one core stays with the process doing the SSH and SFTP work;
- measuring photo pixels for the checks (``MeasuringPool``, ``QC_CHECK_WORKERS``): decoding
  and measuring a preview is ~25 ms of numpy and libjpeg per photo, so the check pass is
  CPU-bound on a LAN and every core measures.

They are two pools, not one, because a process pool runs its queue in order: a scan's
parsing batches (a few ms each, on the scan's critical path) would wait behind a check pass's
queue of measures (a site's worth, seconds), and each kind warms up different imports.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import threading
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor

INLINE_THREADS = 2  # a pool of 0 processes: threads of this process (tests, debugging)
WARM_UP_TIMEOUT_S = 60


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
        pool = ProcessPoolExecutor(max_workers=self._workers, mp_context=context)
        for warm in [pool.submit(_warm_up, self._imports) for _ in range(self._workers)]:
            warm.result(timeout=WARM_UP_TIMEOUT_S)  # imports now, not in the first task's time
        return pool


def _warm_up(module: str) -> bool:
    importlib.import_module(module)
    return True


class MeasuringPool(WorkerPool):
    """The pool every check pass of this process measures on (web jobs and ZIP uploads alike)."""

    def __init__(self, workers: int) -> None:
        super().__init__(workers, "qc_tool.services.checks.measure", name="qc-measure")
