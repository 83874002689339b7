"""The connection pool of one scan: the first connection proves the password, the rest follow.

Connections are opened one after another, never in parallel and never before the
first one has authenticated: a wrong password costs the server one attempt, and a
server's MaxStartups limit is never hit by our own burst. A connection that fails to open
is tried again after a pause, a few times, then the pool makes do with what it has. One the
server dropped before its banner (MaxStartups) was already opened again by the adapter
(ServerBusy): the pool makes do at once. A refused login or host key is never tried again,
by anyone.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from qc_tool.errors import AuthFailed, ChannelRefused, HostKeyRejected, QCError, ServerBusy
from qc_tool.services.ports import Connector, SiteConnection

log = logging.getLogger(__name__)

# Pauses before trying again to open a pool connection that failed (a timeout, a reset during
# the login): staggered, so the retry does not land in the same burst of logins.
GROW_RETRY_DELAYS: tuple[float, ...] = (0.5, 1.5)
CLOSE_WAIT_S = 60.0  # a login under way at close() is given this long to finish


def pool_size(images: int, cap: int) -> int:
    """Workers for a folder: sequential for 10 or fewer images, else min(4, max(2, n // 50))."""
    if images <= 10:
        return 1
    return max(1, min(4, max(2, images // 50), cap))


class ConnectionPool:
    """Connections of one user: the first, and extra ones opened in the background, in order.

    A connection that failed while reading is discarded and may be replaced (``reopen``);
    slot ``i`` always means "the i-th worker's connection".
    """

    def __init__(
        self,
        connector: Connector,
        first: SiteConnection,
        *,
        grow_retry_delays: Sequence[float] = GROW_RETRY_DELAYS,
    ) -> None:
        self._connector = connector
        self._conns: list[SiteConnection | None] = [first]
        self._ready: list[threading.Event] = [threading.Event()]
        self._ready[0].set()
        self._failed_from: int | None = None
        self._opener: threading.Thread | None = None
        self._lock = threading.Lock()
        self._login = threading.Lock()  # one login at a time: the opener's or a reopen
        self._closing = threading.Event()
        self._refused: QCError | None = None  # a login or host key refused: no more logins
        self._needed: Callable[[], bool] = lambda: True
        self._grow_delays = tuple(grow_retry_delays)

    @property
    def opened(self) -> int:
        """Slots that got a connection so far (a replaced one counts once)."""
        with self._lock:
            return len(self._conns)

    def grow(self, target: int, needed: Callable[[], bool] | None = None) -> None:
        """Open connections up to ``target`` in a background thread, one after another.

        ``needed`` is asked before each new connection; once it says no (nothing is
        left to read), no more logins are made.
        """
        with self._lock:
            if needed is not None:
                self._needed = needed
            if self._closing.is_set() or self._failed_from is not None:
                return
            if target <= len(self._ready):
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
                done = (
                    self._closing.is_set() or i >= len(self._ready) or self._failed_from is not None
                )
                if not done and not self._needed():
                    self._fail_from_locked(i)  # not failed: not wanted; waiters get None
                    done = True
                if done:
                    self._opener = None
                    return
            conn = self._open_with_retries(i)
            with self._lock:
                if conn is None or self._closing.is_set():
                    if conn is not None:
                        conn.close()
                    self._fail_from_locked(i)
                    continue
                self._conns.append(conn)
            self._ready[i].set()

    def _open_with_retries(self, index: int) -> SiteConnection | None:
        """Open pool connection ``index``, pausing and trying again when the server refuses."""
        delays = iter(self._grow_delays)
        while True:
            try:
                return self._connect(index)
            except (AuthFailed, HostKeyRejected, ChannelRefused, ServerBusy) as exc:
                # The server said no on purpose: asking again would not change its mind, and
                # a second password attempt is exactly what must never happen. A busy server
                # was asked again already, by the connection itself.
                log.warning(
                    "pool connection %d refused (%s); continuing with %d", index + 1, exc, index
                )
                return None
            except QCError as exc:
                delay = next(delays, None)
                if delay is None or not self._wait(delay):
                    log.warning(
                        "pool connection %d could not open (%s); continuing with %d",
                        index + 1,
                        exc,
                        index,
                    )
                    return None
                log.info(
                    "pool connection %d could not open (%s); trying again in %.1f s",
                    index + 1,
                    exc,
                    delay,
                )

    def _wait(self, delay: float) -> bool:
        """Pause before another attempt; False if the pool closed or is no longer needed."""
        if self._closing.wait(delay):
            return False
        with self._lock:
            return self._needed()

    def _connect(self, index: int) -> SiteConnection | None:
        """One login for slot ``index``, unless logins are over; a refusal ends them for good."""
        with self._login:
            if self._closing.is_set() or self._refused is not None:
                return None
            try:
                conn = self._connector.connect()
            except (AuthFailed, HostKeyRejected) as exc:
                self._refused = exc
                raise
            return conn

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

    def live(self) -> list[int]:
        """The slots holding an open connection."""
        with self._lock:
            return [i for i, conn in enumerate(self._conns) if conn is not None]

    def discard(self, index: int) -> None:
        """Close connection ``index`` now (it failed); the slot stays empty until ``reopen``."""
        with self._lock:
            conn = self._conns[index] if index < len(self._conns) else None
            if conn is not None:
                self._conns[index] = None
        if conn is not None:
            conn.close()

    def reopen(self, index: int) -> SiteConnection | None:
        """A fresh connection for slot ``index`` (after ``discard``); None once logins are over.

        Raises RemoteUnavailable when the server cannot be reached; AuthFailed and
        HostKeyRejected are raised once and then end every login of this pool.
        """
        conn = self._connect(index)
        if conn is None:
            return None
        with self._lock:
            if self._closing.is_set() or index >= len(self._conns):
                stale = conn
                conn = None
            else:
                stale = None
                self._conns[index] = conn
        if stale is not None:
            stale.close()
        return conn

    @property
    def refused(self) -> QCError | None:
        """The AuthFailed or HostKeyRejected that ended this pool's logins, if any."""
        return self._refused

    def _fail_from_locked(self, index: int) -> None:
        self._failed_from = index
        for event in self._ready[index:]:
            event.set()

    def close(self) -> None:
        """Close every connection, including one the opener is still completing."""
        with self._lock:
            self._closing.set()
            conns, self._conns = self._conns, []
        opener = self._opener
        if opener is not None:
            # A login under way completes and is closed by the opener, before we return:
            # no login of this scan may happen after the scan.
            opener.join(timeout=CLOSE_WAIT_S)
        with self._lock:
            conns += self._conns
            self._conns = []
        for conn in conns:
            if conn is not None:
                conn.close()
