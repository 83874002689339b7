"""glibc's heap settings for the tool's processes (mallopt); nothing happens elsewhere.

Two opposite needs. A measuring process allocates the same few MB for every photo and should
keep them (``keep_freed_memory``). The process that reads photos (the CLI, a gunicorn worker)
runs many threads, and glibc gives each thread that allocates its own heap ("arena", up to 8
per core) and keeps what each frees: a band decoded on one reading thread, a whole file
held on another, each heap grows to its own peak (``share_heaps``).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

MB = 1024 * 1024
# mallopt's parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8
_KEEP_FREED_BYTES = 64 * MB
_MMAP_ABOVE_BYTES = 32 * MB
SHARED_ARENAS = 2


def _mallopt() -> Callable[[int, int], int] | None:
    try:
        mallopt: Callable[[int, int], int] = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return None
    return mallopt


def keep_freed_memory() -> None:
    """Let a worker's heap keep the memory of its last photo for the next one.

    Measuring a photo allocates a few arrays of a few MB and frees them. By default glibc gives
    such blocks back to the system at once and the next photo faults them in again, page by
    page: measured, that doubled the CPU of a preview (21.7 -> 12.5 ms, bench/measures.py with
    MALLOC_TRIM_THRESHOLD_/MALLOC_MMAP_THRESHOLD_ set as here). The peak stays what it was;
    the memory is only kept, up to 64 MB of free heap per worker.
    """
    mallopt = _mallopt()
    if mallopt is not None:
        mallopt(_M_TRIM_THRESHOLD, _KEEP_FREED_BYTES)
        mallopt(_M_MMAP_THRESHOLD, _MMAP_ABOVE_BYTES)


def share_heaps() -> None:
    """Let this process's threads share ``SHARED_ARENAS`` heaps, so that memory one thread
    frees serves the next. Call before threads start. Measured in docs/performance.md."""
    mallopt = _mallopt()
    if mallopt is not None:
        mallopt(_M_ARENA_MAX, SHARED_ARENAS)
