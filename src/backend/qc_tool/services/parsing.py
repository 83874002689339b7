"""EXIF parsing on the other cores: the I/O thread reads headers, worker processes parse them.

exifread is pure Python, so parsing in the scan's own process competes with the
SSH and SFTP work for one interpreter lock. Handing each compact EXIF block (a
few hundred bytes) to a worker process lets a 2-core machine use both cores.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor

from qc_tool.domain.exif import summarize
from qc_tool.domain.exif_reader import ExifBlock
from qc_tool.domain.models import ExifSummary
from qc_tool.errors import QCError
from qc_tool.services.workers import worker_count


def default_workers() -> int:
    """One core stays with the process doing the network work."""
    return max(1, (os.cpu_count() or 2) - 1)


class ProcessParser:
    """A pool of parsing processes, started once and shared by every scan of this process."""

    def __init__(self, workers: int | None = None) -> None:
        # forkserver: never fork a process that runs SSH transport threads.
        context = multiprocessing.get_context("forkserver")
        count = workers or default_workers()
        self._executor = ProcessPoolExecutor(max_workers=count, mp_context=context)
        # Start the workers (and their imports) now, not during the first scan.
        for warm in [self._executor.submit(_warm_up) for _ in range(count)]:
            warm.result(timeout=60)

    def submit(self, blocks: list[ExifBlock]) -> Future[list[ExifSummary | str]]:
        """Parse a batch; each result is the facts, or the reason the block is unreadable."""
        return self._executor.submit(summarize_many, blocks)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


def summarize_many(blocks: list[ExifBlock]) -> list[ExifSummary | str]:
    """Batches keep the cost of crossing processes (pickling, queues, wake-ups) per batch, not per image."""
    out: list[ExifSummary | str] = []
    for block in blocks:
        try:
            out.append(summarize(block))
        except QCError as exc:
            out.append(exc.message)
    return out


def _warm_up() -> bool:
    return True


class LazyParser:
    """A ProcessParser started at the first scan that needs it (the web app's shared one)."""

    def __init__(self, workers: int) -> None:
        self._workers = workers
        self._parser: ProcessParser | None = None
        self._lock = threading.Lock()

    def submit(self, blocks: list[ExifBlock]) -> Future[list[ExifSummary | str]]:
        with self._lock:
            if self._parser is None:
                self._parser = ProcessParser(self._workers)
            parser = self._parser
        return parser.submit(blocks)

    def close(self) -> None:
        with self._lock:
            parser, self._parser = self._parser, None
        if parser is not None:
            parser.close()


def workers_setting(raw: object) -> int:
    """QC_PARSE_WORKERS: empty means cores - 1, 0 means parse inline."""
    return worker_count(raw, "QC_PARSE_WORKERS", default_workers())
