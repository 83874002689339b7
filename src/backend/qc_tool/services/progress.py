"""Count, rate and ETA of a pass: one helper for jobs, the check pass, uploads and the CLI."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Under half a second a rate is noise (the first photo can come from the cache in
# microseconds): show none rather than a million photos a second.
MIN_RATE_S = 0.5


@dataclass(slots=True)
class Rate:
    """Items done of a total, with the rate since the first update and the time left at it."""

    done: int = 0
    total: int = 0
    started: float | None = None  # the clock at the first update
    rate: float = 0.0  # items/s so far; 0 until there is a rate worth showing
    eta_s: float | None = None
    clock: Callable[[], float] = field(default=time.perf_counter, repr=False)

    def update(self, done: int, total: int) -> None:
        now = self.clock()
        if self.started is None:
            self.started = now
        self.done, self.total = done, total
        elapsed = now - self.started
        self.rate = done / elapsed if elapsed >= MIN_RATE_S and done else 0.0
        self.eta_s = (total - done) / self.rate if self.rate > 0 else None

    def to_json(self) -> dict[str, Any]:
        return {
            "done": self.done,
            "total": self.total,
            "rate": round(self.rate, 1),
            "eta_s": None if self.eta_s is None else round(self.eta_s, 1),
        }
