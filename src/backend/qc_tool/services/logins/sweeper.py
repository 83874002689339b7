"""One background thread that ends what nobody will end by a request: idle logins and connections.

An abandoned login makes no further request, so expiry that only happens inside a request
would keep its password and its kept connection (a server slot) for ever. The app starts
one ``Sweeper`` (``web/deps.build_context``) and stops it in ``QCContext.close``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)
MAX_INTERVAL_S = 10.0
MIN_INTERVAL_S = 0.01


def sweep_interval(*limits_s: float) -> float:
    """How often to sweep: a quarter of the shortest limit, at most 10 s.

    A kept connection idle for 120 s is thus closed between 120 and 130 s after its last use.
    """
    return max(MIN_INTERVAL_S, min(MAX_INTERVAL_S, *(limit / 4 for limit in limits_s)))


class Sweeper:
    """Runs each of ``tasks`` every ``interval`` seconds on one daemon thread until ``stop``."""

    def __init__(
        self, tasks: Sequence[Callable[[], object]], interval: float, name: str = "qc-sweeper"
    ) -> None:
        self.interval = interval
        self._tasks = tuple(tasks)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop and wait for a sweep under way to finish."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for task in self._tasks:
                try:
                    task()
                except Exception:  # a bug in one sweep must not end the sweeping for good
                    log.exception("sweep task %r failed", task)
