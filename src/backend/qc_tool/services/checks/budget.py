"""The check pass's memory budget: bytes of photos read and not yet measured, held at most once."""

from __future__ import annotations

import threading


class ByteBudget:
    """At most ``limit`` bytes held at once; ``take`` waits for room, ``give_back`` makes it.

    A photo larger than the whole budget is let through alone, once nothing else is held, so
    it is still measured (one at a time) and the pass never waits forever. ``peak`` is the
    most ever held, for the stats and the tests.
    """

    def __init__(self, limit: int) -> None:
        if limit <= 0:
            raise ValueError("the memory budget must be more than 0 bytes")
        self.limit = limit
        self.held = 0
        self.peak = 0
        self.waits = 0  # how often a reader had to wait for room
        self._room = threading.Condition()

    def fits(self, size: int) -> bool:
        """Whether ``size`` bytes could be taken now (call with the lock held)."""
        return self.held == 0 or self.held + size <= self.limit

    def take(self, size: int) -> None:
        with self._room:
            if not self.fits(size):
                self.waits += 1
                self._room.wait_for(lambda: self.fits(size))
            self.held += size
            self.peak = max(self.peak, self.held)

    def give_back(self, size: int) -> None:
        with self._room:
            self.held -= size
            self._room.notify_all()
