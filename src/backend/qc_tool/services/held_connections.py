"""One SFTP connection per login for short interactive reads, kept open between clicks.

A photo preview is a few small range reads; opening a connection for each would cost a
login (0.2-0.5 s, and one password attempt) per click. Each login gets one connection,
used by one request at a time (its lock), closed after a quiet spell or at logout.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from qc_tool.errors import RemoteError, RemoteUnavailable
from qc_tool.services.ports import Connector, SiteConnection

log = logging.getLogger(__name__)
T = TypeVar("T")
IDLE_S = 120.0


@dataclass
class _Held:
    lock: threading.Lock = field(default_factory=threading.Lock)
    conn: SiteConnection | None = None
    last_used: float = 0.0


class HeldConnections:
    """Connections kept per key (a login's session id), each used by one caller at a time."""

    def __init__(self, idle_seconds: float = IDLE_S) -> None:
        self._idle = idle_seconds
        self._held: dict[str, _Held] = {}
        self._lock = threading.Lock()

    def run(self, key: str, connector: Connector, work: Callable[[SiteConnection], T]) -> T:
        """``work`` on this key's connection; a connection that died while idle is replaced once.

        A failure of the fresh connection is the caller's error; a login refused is never
        retried (AuthFailed is not a RemoteUnavailable).
        """
        self._close_idle()
        with self._lock:
            held = self._held.setdefault(key, _Held())
        with held.lock:
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
                held.last_used = time.monotonic()
                return result
        raise AssertionError("unreachable")

    def forget(self, key: str) -> None:
        """Close this key's connection (logout, session expiry)."""
        with self._lock:
            held = self._held.pop(key, None)
        if held is not None:
            with held.lock:
                _close(held)

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

    def _close_idle(self) -> None:
        now = time.monotonic()
        with self._lock:
            idle = [k for k, h in self._held.items() if h.conn and now - h.last_used > self._idle]
        for key in idle:
            self.forget(key)


def _close(held: _Held) -> None:
    conn, held.conn = held.conn, None
    if conn is not None:
        try:
            conn.close()
        except Exception:  # closing a dead connection must not hide the real error
            log.debug("closing a kept connection failed", exc_info=True)
