"""One SFTP connection per login for short interactive reads, kept open between clicks.

A photo preview is a few small range reads; opening a connection for each would cost a
login (0.2-0.5 s, and one password attempt) per click. Each login gets one connection,
used by one request at a time (its lock). Requests arrive on any of the web server's
threads, so the connection is released after each use and the next holder of the lock
takes it over (``SiteConnection.release``). Each kept connection holds a slot of
QC_MAX_SERVER_CONNECTIONS, so it is closed after ``idle_seconds`` without use by
``close_idle`` (the app's sweeper thread calls it), and at logout or expiry by ``forget``.

A QC job of the login borrows the same connection when there is one (``lend``): a rescan of
an unchanged site then lists it on a connection that is already open, with no SSH handshake
and no password attempt (measured on the WAN profile in docs/performance.md), and gives it
back for the next click.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from qc_tool.domain.models import FolderListing, RemoteFile, SiteInfo
from qc_tool.errors import NotLoggedIn, RemoteError, RemoteUnavailable
from qc_tool.services.ports import (
    Connector,
    HeaderCallback,
    PixelCallback,
    ReadAdmission,
    SiteConnection,
)

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

    def lend(self, key: str, connector: Connector) -> Connector:
        """A connector whose first connection is this key's kept one, given back when closed.

        For a job of the login: its first ``connect`` takes the kept connection out when the
        login has one (its previews keep one), so a rescan costs no login at all; each pass of
        the job (GPS, checks) borrows it in turn. Without one, the job connects as usual. A
        preview asked for meanwhile opens its own kept connection; the lent one is then
        closed when given back, so a key never keeps two.
        """
        with self._lock:  # registered now, so a logout meanwhile marks it gone
            self._held.setdefault(key, _Held())
        return _LendingConnector(self, key, connector)

    def _take(self, key: str) -> SiteConnection | None:
        """The key's kept connection, taken out of its slot (None if there is none)."""
        with self._lock:
            held = self._held.get(key)
        if held is None:
            return None
        with held.lock:
            conn, held.conn = held.conn, None
            return conn

    def _give_back(self, key: str, conn: SiteConnection, healthy: bool) -> None:
        """Keep ``conn`` for the key if it is healthy, the key is still logged in and its slot
        is free; else close it (a logout meanwhile removed the key)."""
        with self._lock:
            held = self._held.get(key) if healthy else None
        if held is not None:
            with held.lock:
                if not held.gone and held.conn is None:
                    conn.release()  # the next user of the slot may be another thread
                    held.conn = conn
                    held.last_used = self.clock()
                    return
        try:
            conn.close()
        except Exception:
            log.debug("closing a lent connection failed", exc_info=True)

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


class _LendingConnector:
    """A login's connector whose first connection is lent by ``HeldConnections.lend``."""

    def __init__(self, held: HeldConnections, key: str, connector: Connector) -> None:
        self._held = held
        self._key = key
        self._connector = connector
        self._out = False  # the kept connection is lent right now (to a pass of this job)
        self._lock = threading.Lock()

    @property
    def server_id(self) -> str:
        return self._connector.server_id

    def connect(self) -> SiteConnection:
        with self._lock:
            first, self._out = not self._out, True
        if not first:  # a pool's further connections
            return self._connector.connect()
        conn = self._held._take(self._key)
        if conn is None:
            # Nothing kept: the job's connections are its own and close with it. Keeping one
            # after every job would hold a server slot per user who ran a QC (each slot is one
            # of QC_MAX_SERVER_CONNECTIONS), and other users' scans would wait for them.
            self._returned()
            return self._connector.connect()
        log.debug("a QC reuses its login's kept connection")
        return _Lent(conn, self._give_back)

    def _give_back(self, conn: SiteConnection, healthy: bool) -> None:
        self._held._give_back(self._key, conn, healthy)
        self._returned()  # the job's next pass (the checks) borrows it again

    def _returned(self) -> None:
        with self._lock:
            self._out = False


class _Lent:
    """A kept connection lent to a job: closing it gives it back, unless it failed on the way."""

    def __init__(
        self, conn: SiteConnection, give_back: Callable[[SiteConnection, bool], None]
    ) -> None:
        self._conn = conn
        self._give_back = give_back
        self._healthy = True
        self._closed = False

    def _call(self, work: Callable[[], T], cancelled: Callable[[], bool] = lambda: False) -> T:
        # Any failure, or a read stopped part-way (cancelled: replies may still be on their
        # way), and the connection is not kept for the next user: it is closed instead.
        try:
            result = work()
        except BaseException:
            self._healthy = False
            raise
        if cancelled():
            self._healthy = False
        return result

    def list_sites(self) -> list[SiteInfo]:
        return self._call(self._conn.list_sites)

    def list_folders(self, site: str) -> list[str]:
        return self._call(lambda: self._conn.list_folders(site))

    def list_images(self, site: str, folders: Sequence[str]) -> dict[str, FolderListing]:
        return self._call(lambda: self._conn.list_images(site, folders))

    def read_headers(
        self,
        site: str,
        files: Iterable[RemoteFile],
        on_result: HeaderCallback,
        *,
        pipelined: bool = True,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> None:
        self._call(
            lambda: self._conn.read_headers(
                site, files, on_result, pipelined=pipelined, cancelled=cancelled
            ),
            cancelled,
        )

    def read_pixels(
        self,
        site: str,
        files: Iterable[RemoteFile],
        on_result: PixelCallback,
        *,
        whole_file: bool = False,
        cancelled: Callable[[], bool] = lambda: False,
        admission: ReadAdmission | None = None,
    ) -> None:
        self._call(
            lambda: self._conn.read_pixels(
                site,
                files,
                on_result,
                whole_file=whole_file,
                cancelled=cancelled,
                admission=admission,
            ),
            cancelled,
        )

    @property
    def files_opened(self) -> int:
        return self._conn.files_opened

    def release(self) -> None:
        self._conn.release()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._give_back(self._conn, self._healthy)
