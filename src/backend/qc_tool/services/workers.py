"""The processes that measure photo pixels for the checks: all cores, started when first needed.

Decoding and measuring a preview is ~25 ms of numpy and libjpeg per photo, so the check
pass is CPU-bound on a LAN; the network threads need little, so every core measures
(the EXIF parsing pool keeps one core free for the GPS scan's network work instead).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor

INLINE_THREADS = 2  # QC_CHECK_WORKERS=0: measure in threads of this process (tests, debugging)


def worker_count(raw: object, name: str, default: int) -> int:
    """A worker-count setting: empty means ``default``, else a whole number of 0 or more."""
    text = str(raw or "").strip()
    if not text:
        return default
    value = int(text)
    if value < 0:
        raise ValueError(f"{name} must be 0 or more")
    return value


def check_workers_setting(raw: object) -> int:
    """QC_CHECK_WORKERS: empty means one process per core, 0 means threads in this process."""
    return worker_count(raw, "QC_CHECK_WORKERS", os.cpu_count() or 2)


class MeasuringPool:
    """One pool for every check pass of this process (web jobs and ZIP uploads alike)."""

    def __init__(self, workers: int) -> None:
        self._workers = workers
        self._executor: Executor | None = None
        self._lock = threading.Lock()

    def executor(self) -> tuple[Executor, int]:
        """The pool, started on first use, and how many photos it measures at once."""
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
            return ThreadPoolExecutor(INLINE_THREADS, thread_name_prefix="qc-measure")
        # forkserver: never fork a process that runs SSH transport threads.
        context = multiprocessing.get_context("forkserver")
        pool = ProcessPoolExecutor(max_workers=self._workers, mp_context=context)
        for warm in [pool.submit(_warm_up) for _ in range(self._workers)]:
            warm.result(timeout=60)  # imports (numpy, Pillow) now, not in the first photo's time
        return pool


def _warm_up() -> bool:
    import qc_tool.services.measure  # noqa: F401  (the workers' imports)

    return True
