"""The check pass's memory budget: bytes of photos read and not yet measured, held at most once."""

from __future__ import annotations

import threading


class ByteBudget:
    """At most ``limit`` bytes (and ``max_items`` photos) held at once; ``take`` waits for room,
    ``give_back`` makes it.

    A photo larger than the whole budget is let through alone, once nothing else is held, so
    it is still measured (one at a time) and the pass never waits forever. The count keeps a
    LAN pass from holding the whole budget in previews that gain nothing by being read early
    (the workers are the bottleneck then); the bytes bound whatever the photos' size.
    ``peak`` is the most bytes ever held, for the stats and the tests.
    """

    def __init__(self, limit: int, max_items: int | None = None) -> None:
        if limit <= 0:
            raise ValueError("the memory budget must be more than 0 bytes")
        self.limit = limit
        self.max_items = max_items
        self.held = 0
        self.items = 0
        self.peak = 0
        self.waits = 0  # how often a reader had to wait for room
        self._room = threading.Condition()

    def fits(self, size: int) -> bool:
        """Whether ``size`` bytes could be taken now (call with the lock held)."""
        if self.max_items is not None and self.items >= self.max_items:
            return False
        return self.held == 0 or self.held + size <= self.limit

    def take(self, size: int) -> None:
        with self._room:
            if not self.fits(size):
                self.waits += 1
                self._room.wait_for(lambda: self.fits(size))
            self.held += size
            self.items += 1
            self.peak = max(self.peak, self.held)

    def give_back(self, size: int) -> None:
        with self._room:
            self.held -= size
            self.items -= 1
            self._room.notify_all()
