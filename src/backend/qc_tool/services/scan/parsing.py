"""EXIF parsing on the other cores: the I/O thread reads headers, worker processes parse them.

exifread is pure Python, so parsing in the scan's own process competes with the
SSH and SFTP work for one interpreter lock. Handing each compact EXIF block (a
few hundred bytes) to a worker process lets a 2-core machine use both cores.
The processes are a ``WorkerPool`` (services/workers.py), as the measuring ones are.
"""

from __future__ import annotations

import os
from concurrent.futures import Future

from qc_tool.domain.exif import summarize
from qc_tool.domain.exif_reader import ExifBlock
from qc_tool.domain.models import ExifSummary
from qc_tool.errors import QCError
from qc_tool.services.workers import WorkerPool


def default_workers() -> int:
    """One core stays with the process doing the network work."""
    return max(1, (os.cpu_count() or 2) - 1)


def workers_setting(configured: int | None) -> int:
    """QC_PARSE_WORKERS: not set means cores - 1, 0 means parse inline."""
    return default_workers() if configured is None else configured


def summarize_many(blocks: list[ExifBlock]) -> list[ExifSummary | str]:
    """Batches keep the cost of crossing processes (pickling, queues, wake-ups) per batch, not per image."""
    out: list[ExifSummary | str] = []
    for block in blocks:
        try:
            out.append(summarize(block))
        except QCError as exc:
            out.append(exc.message)
    return out


class LazyParser:
    """Parsing processes started by the first scan that needs them (the web app's shared ones).

    A HeaderParser (services/ports.py). ``workers`` of 0 means the default, cores - 1: a
    caller that wants no processes passes no parser at all.
    """

    def __init__(self, workers: int) -> None:
        self.pool = WorkerPool(workers or default_workers(), __name__, name="qc-parse")

    def submit(self, blocks: list[ExifBlock]) -> Future[list[ExifSummary | str]]:
        """Parse a batch; each result is the facts, or the reason the block is unreadable."""
        executor, _ = self.pool.executor()
        return executor.submit(summarize_many, blocks)

    def close(self) -> None:
        self.pool.close()


class ProcessParser(LazyParser):
    """Parsing processes started now (the CLI and the benchmark start them before the clock)."""

    def __init__(self, workers: int | None = None) -> None:
        super().__init__(workers or default_workers())
        self.pool.executor()
