"""One SFTP connection per login for short interactive reads, kept open between clicks.

A photo preview is a few small range reads; opening a connection for each would cost a
login (0.2-0.5 s, and one password attempt) per click. Each login gets one connection,
used by one request at a time (its lock). Requests arrive on any of the web server's
threads, so the connection is released after each use and the next holder of the lock
takes it over (``SiteConnection.release``). Each kept connection holds a slot of
QC_MAX_SERVER_CONNECTIONS, so it is closed after ``idle_seconds`` without use by
``close_idle`` (the app's sweeper thread calls it), and at logout or expiry by ``forget``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from qc_tool.errors import NotLoggedIn, RemoteError, RemoteUnavailable
from qc_tool.services.ports import Connector, SiteConnection

log = logging.getLogger(__name__)
T = TypeVar("T")
IDLE_S = 120.0


@dataclass
class _Held:
    # Re-entrant: a refused login is forgotten (``forget``) from inside ``run``, on its thread.
    lock: threading.RLock = field(default_factory=threading.RLock)
    conn: SiteConnection | None = None
    last_used: float = 0.0
    gone: bool = False  # forgotten (logout, expiry): a request still queued on the lock stops


class HeldConnections:
    """Connections kept per key (a login's session id), each used by one caller at a time."""

    def __init__(
        self, idle_seconds: float = IDLE_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._idle = idle_seconds
        self.clock = clock  # monotonic seconds; tests replace it
        self._held: dict[str, _Held] = {}
        self._lock = threading.Lock()

    def run(self, key: str, connector: Connector, work: Callable[[SiteConnection], T]) -> T:
        """``work`` on this key's connection; a connection that died while idle is replaced once.

        A failure of the fresh connection is the caller's error; a login refused is never
        retried (AuthFailed is not a RemoteUnavailable). A key forgotten while this call
        waited for its turn raises NotLoggedIn without connecting.
        """
        with self._lock:
            held = self._held.setdefault(key, _Held())
        return self._run_held(held, connector, work)

    def _run_held(
        self, held: _Held, connector: Connector, work: Callable[[SiteConnection], T]
    ) -> T:
        """``run`` once the key's entry is found; it may have been forgotten meanwhile."""
        with held.lock:
            if held.gone:
                raise NotLoggedIn("the login has ended; please log in again")
            reused = held.conn is not None
            for attempt in (1, 2):
                conn = self._connection(held, connector)
                try:
                    result = work(conn)
                except (RemoteUnavailable, RemoteError):
                    _close(held)
                    if not reused or attempt == 2:
                        raise
                    log.info("a kept connection had died; opening a new one")
                    continue
                finally:
                    # The next request of this login may come on another thread: hand it over.
                    if held.conn is not None:
                        held.conn.release()
                    held.last_used = self.clock()
                return result
        raise AssertionError("unreachable")

    def forget(self, key: str) -> None:
        """Close this key's connection for good (logout, session expiry)."""
        with self._lock:
            held = self._held.pop(key, None)
        if held is not None:
            with held.lock:
                held.gone = True
                _close(held)

    def close_idle(self) -> int:
        """Close connections unused for ``idle_seconds``; how many were closed.

        A connection in use (its lock taken) is not idle and is skipped, never waited for.
        """
        with self._lock:
            candidates = [h for h in self._held.values() if h.conn is not None]
        closed = 0
        for held in candidates:
            if not held.lock.acquire(blocking=False):
                continue
            try:
                if held.conn is not None and self.clock() - held.last_used >= self._idle:
                    _close(held)
                    closed += 1
            finally:
                held.lock.release()
        if closed:
            log.info("closed %d preview connection(s) idle for %.0f s", closed, self._idle)
        return closed

    def close_all(self) -> None:
        with self._lock:
            keys = list(self._held)
        for key in keys:
            self.forget(key)

    def open_count(self) -> int:
        with self._lock:
            return sum(1 for h in self._held.values() if h.conn is not None)

    @staticmethod
    def _connection(held: _Held, connector: Connector) -> SiteConnection:
        if held.conn is None:
            held.conn = connector.connect()
        return held.conn


def _close(held: _Held) -> None:
    conn, held.conn = held.conn, None
    if conn is not None:
        try:
            conn.close()
        except Exception:  # closing a dead connection must not hide the real error
            log.debug("closing a kept connection failed", exc_info=True)
