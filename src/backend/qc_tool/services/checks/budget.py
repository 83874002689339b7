"""The check pass's memory budget: every byte of a photo from its read until its measure ends.

A photo's bytes are reserved before its first read is sent (its file's size, all it could
ask for), held while its reads are in flight and while it is decoded, then kept at what the
worker is handed (a preview, a decoded band) until the worker is done. One limit covers
all of it (QC_CHECK_MEMORY_MB), whatever the photos' sizes.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

CANCEL_POLL_S = 0.05  # how often a reader waiting for room looks whether the pass was cancelled
# Reserved past a photo's size: a photo read whole reads its header twice (the walk, then the
# file from byte 0); DJI headers are ~70 KB. A larger header is taken anyway, and counted.
HEADER_ALLOWANCE = 256 * 1024


def reservation(size: int) -> int:
    """What the reads of a photo of ``size`` bytes may ask for, at most: its file (a preview,
    a band, or the whole), and its header twice when it is read whole."""
    return size + min(size, HEADER_ALLOWANCE)


@dataclass(slots=True)
class _Hold:
    size: int
    handed: bool = False  # handed over: waiting for a worker or being measured


class ByteBudget:
    """At most ``limit`` bytes held at once, by photos read or measured; and at most
    ``max_items`` photos handed over and not yet measured.

    Room is given first come, first served: a photo that waits for room is not overtaken by
    smaller ones, so a large photo's turn comes. A photo larger than the whole budget goes
    alone, once nothing else is held, so it is still read and measured and the pass never waits
    forever. The count keeps a LAN pass from holding the budget in previews that gain nothing
    by being read early (the workers are the bottleneck then).
    ``peak`` is the most bytes ever held, for the stats and the tests; ``overdrawn`` the bytes
    a photo took past its reservation (none, unless a read program reads more than its file).
    """

    def __init__(self, limit: int, max_items: int | None = None) -> None:
        if limit <= 0:
            raise ValueError("the memory budget must be more than 0 bytes")
        self.limit = limit
        self.max_items = max_items
        self.held = 0
        self.peak = 0
        self.waits = 0  # how often a photo had to wait for room (or for a place)
        self.overdrawn = 0
        self._handed = 0
        self._holds: dict[str, _Hold] = {}
        self._queue: deque[str] = deque()  # photos waiting for room, in turn
        self._room = threading.Condition()

    def try_reserve(self, key: str, size: int) -> bool:
        """Reserve ``size`` bytes for photo ``key`` if there is room now and it is its turn;
        otherwise it takes its place in the queue and the caller asks again later."""
        with self._room:
            if self._admissible(key, size):
                self._add(key, size)
                return True
            self._enqueue(key)
            return False

    def reserve(self, key: str, size: int, cancelled: Callable[[], bool] = lambda: False) -> bool:
        """Wait for room and reserve ``size`` bytes for photo ``key``; False if cancelled."""
        with self._room:
            while not self._admissible(key, size):
                self._enqueue(key)
                if cancelled():
                    self._withdraw(key)
                    return False
                self._room.wait(CANCEL_POLL_S)
            self._add(key, size)
            return True

    def extend(self, key: str, extra: int) -> None:
        """Photo ``key`` needs ``extra`` bytes past its reservation: taken at once (it holds
        bytes already, waiting could deadlock), and counted in ``overdrawn``."""
        with self._room:
            hold = self._holds.setdefault(key, _Hold(0))
            hold.size += extra
            self.overdrawn += extra
            self._grew(extra)

    def hand_over(self, key: str, size: int) -> None:
        """Photo ``key`` goes to the workers holding ``size`` bytes (what it does not keep of
        its reservation is given back). Waits while ``max_items`` photos are handed over."""
        with self._room:
            most = self.max_items
            if most is not None and self._handed >= most:
                self.waits += 1
                self._room.wait_for(lambda: self._handed < most)
            hold = self._holds.setdefault(key, _Hold(0))
            if size > hold.size:
                self.overdrawn += size - hold.size
                self._grew(size - hold.size)
            else:
                self.held -= hold.size - size
            hold.size, hold.handed = size, True
            self._handed += 1
            self._room.notify_all()

    def finished(self, key: str) -> None:
        """Photo ``key``'s read ended: unless it was handed over, all it held is given back."""
        with self._room:
            hold = self._holds.get(key)
            if hold is not None and not hold.handed:
                self._drop(key)

    def release(self, key: str) -> None:
        """Photo ``key`` is done with (measured, dropped, or its read failed): give back all."""
        with self._room:
            self._drop(key)

    def withdraw(self, key: str) -> None:
        """Photo ``key`` no longer waits for room (its reader stopped)."""
        with self._room:
            self._withdraw(key)

    def _withdraw(self, key: str) -> None:
        if key in self._queue:
            self._queue.remove(key)
            self._room.notify_all()  # the next in turn may fit

    def holds(self, key: str) -> int:
        with self._room:
            hold = self._holds.get(key)
            return hold.size if hold else 0

    @property
    def reading(self) -> int:
        """Bytes reserved by photos whose reads have not ended (in flight or being decoded)."""
        with self._room:
            return sum(h.size for h in self._holds.values() if not h.handed)

    @property
    def queued(self) -> int:
        """Photos waiting for room."""
        with self._room:
            return len(self._queue)

    def _admissible(self, key: str, size: int) -> bool:
        if self._queue and self._queue[0] != key:
            return False  # another photo waits for room first
        return self.held == 0 or self.held + size <= self.limit

    def _enqueue(self, key: str) -> None:
        if key not in self._queue:
            self._queue.append(key)
            self.waits += 1

    def _add(self, key: str, size: int) -> None:
        if self._queue and self._queue[0] == key:
            self._queue.popleft()
            self._room.notify_all()  # the next in turn
        hold = self._holds.setdefault(key, _Hold(0))
        hold.size += size
        self._grew(size)

    def _grew(self, size: int) -> None:
        self.held += size
        self.peak = max(self.peak, self.held)

    def _drop(self, key: str) -> None:
        hold = self._holds.pop(key, None)
        if hold is None:
            return
        self.held -= hold.size
        if hold.handed:
            self._handed -= 1
        self._room.notify_all()
