"""The connection pool of one scan: the first connection proves the password, the rest follow.

Connections are opened one after another, never in parallel and never before the
first one has authenticated: a wrong password costs the server one attempt, and a
server's MaxStartups limit is never hit by our own burst.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from qc_tool.errors import AuthFailed, HostKeyRejected, QCError
from qc_tool.services.ports import Connector, SiteConnection

log = logging.getLogger(__name__)


def pool_size(images: int, cap: int) -> int:
    """Workers for a folder: sequential for 10 or fewer images, else min(4, max(2, n // 50))."""
    if images <= 10:
        return 1
    return max(1, min(4, max(2, images // 50), cap))


class ConnectionPool:
    """Up to ``size`` connections of one user; extra ones open in the background, in order."""

    def __init__(self, connector: Connector, first: SiteConnection) -> None:
        self._connector = connector
        self._conns: list[SiteConnection] = [first]
        self._ready: list[threading.Event] = [threading.Event()]
        self._ready[0].set()
        self._failed_from: int | None = None
        self._opener: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._needed: Callable[[], bool] = lambda: True

    @property
    def size(self) -> int:
        """Connections open or still to open (lowered when one fails to open)."""
        with self._lock:
            return self._failed_from if self._failed_from is not None else len(self._ready)

    def grow(self, target: int, needed: Callable[[], bool] | None = None) -> None:
        """Open connections up to ``target`` in a background thread, one after another.

        ``needed`` is asked before each new connection; once it says no (nothing is
        left to read), no more logins are made.
        """
        with self._lock:
            if needed is not None:
                self._needed = needed
            if self._closed or self._failed_from is not None or target <= len(self._ready):
                return
            self._ready.extend(threading.Event() for _ in range(target - len(self._ready)))
            if self._opener is not None:
                return  # the running opener picks up the new target
            self._opener = threading.Thread(
                target=self._open_rest, name="qc-pool-opener", daemon=True
            )
            self._opener.start()

    def _open_rest(self) -> None:
        while True:
            with self._lock:
                i = len(self._conns)
                done = self._closed or i >= len(self._ready) or self._failed_from is not None
                if not done and not self._needed():
                    self._fail_from_locked(i)  # not failed: not wanted; waiters get None
                    done = True
                if done:
                    self._opener = None
                    return
            try:
                conn = self._connector.connect()
            except (AuthFailed, HostKeyRejected) as exc:
                # The first connection worked with these credentials; stop, never retry.
                log.warning("pool connection %d refused (%s); continuing with %d", i + 1, exc, i)
                self._fail_from(i)
                continue
            except QCError as exc:
                log.warning(
                    "pool connection %d could not open (%s); continuing with %d", i + 1, exc, i
                )
                self._fail_from(i)
                continue
            with self._lock:
                if self._closed:
                    conn.close()
                    self._fail_from_locked(i)
                    continue
                self._conns.append(conn)
            self._ready[i].set()

    def _fail_from(self, index: int) -> None:
        with self._lock:
            self._fail_from_locked(index)

    def _fail_from_locked(self, index: int) -> None:
        self._failed_from = index
        for event in self._ready[index:]:
            event.set()

    def get(
        self, index: int, cancelled: Callable[[], bool] = lambda: False
    ) -> SiteConnection | None:
        """Wait for connection ``index``; None if it could not be (or will never be) opened."""
        with self._lock:
            if index >= len(self._ready):
                return None  # the pool stopped growing before reaching this size
            ready = self._ready[index]
        while not ready.wait(0.1):
            if cancelled():
                return None
        with self._lock:
            return self._conns[index] if index < len(self._conns) else None

    def close(self) -> None:
        """Close every connection, including one the opener is still completing."""
        with self._lock:
            self._closed = True
            conns, self._conns = self._conns, []
        opener = self._opener
        if opener is not None:
            # A login under way completes and is closed by the opener, before we return:
            # no login of this scan may happen after the scan.
            opener.join(timeout=60)
        with self._lock:
            conns += self._conns
            self._conns = []
        for conn in conns:
            conn.close()
