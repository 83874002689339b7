"""Deal images to a pool's connections as each has room, and read them over the pool.

Shared by the GPS scan and the photo checks. Each queue of images has a number of
workers (pool connections 0..k-1); a connection takes the next image of the first
queue it works on that has images left, whenever its pipeline has room. Dealing at
that moment rather than in fixed shares up front keeps the rotation, but a
connection that opened late (they open one after another, ~0.5 s apart over a
WAN) is not left holding a share while the others sit idle, and a connection that
never opens leaves nothing behind.

A connection that fails while reading (reset, or silent past QC_OP_TIMEOUT) costs no
result: what it had finished is kept, what it had been dealt but not finished goes back
to the front of its queue, the connection is closed, and after a pause a fresh one takes
its place. A scan tolerates a few such failures (``RETRY_DELAYS``); past that the images
still unread make the pass fail, and what was read stands.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from qc_tool.domain.models import RemoteFile
from qc_tool.errors import AuthFailed, HostKeyRejected, RemoteUnavailable
from qc_tool.services.ports import SiteConnection
from qc_tool.services.scan.pool import ConnectionPool

log = logging.getLogger(__name__)

V = TypeVar("V")
T = TypeVar("T")

# Pauses before each fresh connection that replaces a failed one; their number is how many
# connection failures one pass survives. A reset is usually a moment's trouble (a restarted
# server, a NAT that dropped a flow); a server still failing after ~1 s is down for longer.
RETRY_DELAYS: tuple[float, ...] = (0.2, 1.0)

# (file, value or None, error or None): how a connection reports each file it finished.
OnResult = Callable[[RemoteFile, V | None, str | None], None]
# Reads the images it is dealt on one connection, in that connection's thread, reporting
# each finished one through the callback it is given.
ReadOn = Callable[[SiteConnection, Iterator[RemoteFile], OnResult[V]], None]


class Retries:
    """The connection failures one pass may still survive, and the pause before each retry."""

    def __init__(self, delays: Sequence[float] = RETRY_DELAYS) -> None:
        self._delays = deque(delays)
        self._lock = threading.Lock()
        self.failures = 0
        self.last_error: RemoteUnavailable | None = None

    def take(self, error: RemoteUnavailable) -> float | None:
        """Count one failure; the pause before the next attempt, or None when none is left."""
        with self._lock:
            self.failures += 1
            self.last_error = error
            return self._delays.popleft() if self._delays else None

    @property
    def left(self) -> int:
        with self._lock:
            return len(self._delays)


class Dealer:
    """Queues of images, each with the number of pool connections that may read from it."""

    def __init__(self, queues: Sequence[tuple[int, Sequence[RemoteFile]]]) -> None:
        self._queues = [(workers, deque(files)) for workers, files in queues if files]
        self.width = max((workers for workers, _ in self._queues), default=0)
        self._lock = threading.Lock()
        # Per connection, the images dealt to it and not yet finished, with their queue.
        self._out: dict[int, dict[str, tuple[deque[RemoteFile], RemoteFile]]] = {}

    def files_for(
        self, index: int, cancelled: Callable[[], bool], *, every_queue: bool = False
    ) -> Iterator[RemoteFile]:
        """The images connection ``index`` reads, one at a time, until none are left for it.

        ``every_queue``: take from every queue (the last connection standing finishes all).
        """
        view = 0 if every_queue else index
        while not cancelled():
            with self._lock:
                found = next((q for workers, q in self._queues if view < workers and q), None)
                if found is None:
                    return
                f = found.popleft()
                self._out.setdefault(index, {})[f.path] = (found, f)
            yield f

    def reporter(self, index: int, record: OnResult[V]) -> OnResult[V]:
        """``record``, noting first that connection ``index`` finished the file."""

        def report(f: RemoteFile, value: V | None, error: str | None) -> None:
            with self._lock:
                self._out.get(index, {}).pop(f.path, None)
            record(f, value, error)

        return report

    def take_back(self, index: int) -> int:
        """Put connection ``index``'s unfinished images back at the front of their queues."""
        with self._lock:
            out = self._out.pop(index, {})
            for queue, f in reversed(list(out.values())):
                queue.appendleft(f)
        return len(out)

    def has_work(self, index: int) -> bool:
        with self._lock:
            return any(index < workers and q for workers, q in self._queues)

    def left(self) -> int:
        with self._lock:
            return sum(len(q) for _, q in self._queues)


def read_over_pool(
    pool: ConnectionPool,
    dealer: Dealer,
    read_on: ReadOn[V],
    record: OnResult[V],
    cancelled: Callable[[], bool],
    thread_name: str,
    retries: Retries | None = None,
) -> None:
    """One thread per pool connection, each reading what it is dealt; none left behind.

    Raises RemoteUnavailable when connections kept failing and images are left unread
    (every image reported before that is final), or the AuthFailed/HostKeyRejected that
    stopped a replacement connection.
    """
    if not dealer.width:
        return
    retries = retries if retries is not None else Retries()
    with ThreadPoolExecutor(max_workers=dealer.width, thread_name_prefix=thread_name) as threads:
        futures = [
            threads.submit(_work, pool, i, dealer, read_on, record, cancelled, retries)
            for i in range(dealer.width)
        ]
        for future in futures:
            future.result()
    # Images are left when every pool connection failed to open, or when a failed
    # connection's images went back after the others had finished: the connections still
    # open (or a fresh one, while retries last) read them, from every queue.
    while dealer.left() and not cancelled():
        live = pool.live()
        if live:
            _work(pool, live[0], dealer, read_on, record, cancelled, retries, every_queue=True)
            continue
        if pool.refused is not None:
            raise pool.refused
        if not retries.left:
            raise _gave_up(retries, dealer.left())
        if _replace(pool, 0, retries, cancelled) is None and not pool.live():
            if cancelled():
                return
            raise pool.refused or _gave_up(retries, dealer.left())


def on_first(
    pool: ConnectionPool,
    do: Callable[[SiteConnection], T],
    retries: Retries,
    cancelled: Callable[[], bool] = lambda: False,
) -> T:
    """``do(connection 0)``, again on a fresh connection if that one fails (e.g. the listing)."""
    conn = pool.get(0)
    while True:
        if conn is None:
            raise pool.refused or _gave_up(retries, 0)
        try:
            return do(conn)
        except RemoteUnavailable as exc:
            pool.discard(0)
            delay = retries.take(exc)
            if delay is None or not _pause(delay, cancelled):
                raise
            log.warning(
                "connection 1 failed (%s); retrying on a fresh one in %.1f s", exc.message, delay
            )
            conn = _reopen(pool, 0, retries, cancelled)


def _work(
    pool: ConnectionPool,
    index: int,
    dealer: Dealer,
    read_on: ReadOn[V],
    record: OnResult[V],
    cancelled: Callable[[], bool],
    retries: Retries,
    *,
    every_queue: bool = False,
) -> None:
    """Read on connection ``index`` while the dealer has images for it; nothing if it never opens.

    When the connection fails, its unfinished images go back to the dealer and, while the
    retries last, a fresh connection takes over after a pause.
    """
    view = 0 if every_queue else index
    # Stop waiting for a connection still opening once there is nothing left for it.
    conn = pool.get(index, lambda: cancelled() or not dealer.has_work(view))
    report = dealer.reporter(index, record)
    while conn is not None:
        try:
            read_on(conn, dealer.files_for(index, cancelled, every_queue=every_queue), report)
            return
        except RemoteUnavailable as exc:
            conn = _replace(pool, index, retries, cancelled, exc, dealer.take_back(index))
        finally:
            if conn is not None:
                conn.release()


def _replace(
    pool: ConnectionPool,
    index: int,
    retries: Retries,
    cancelled: Callable[[], bool],
    error: RemoteUnavailable | None = None,
    unfinished: int = 0,
) -> SiteConnection | None:
    """Close failed connection ``index`` and, while retries last, open a fresh one after a pause."""
    pool.discard(index)
    if error is not None:
        delay = retries.take(error)
        if delay is None:
            log.warning(
                "connection %d failed (%s); %d unfinished images go back to the queue; "
                "no retries left",
                index + 1,
                error.message,
                unfinished,
            )
            return None
        log.warning(
            "connection %d failed (%s); %d unfinished images go back to the queue; "
            "retry %d on a fresh connection in %.1f s",
            index + 1,
            error.message,
            unfinished,
            retries.failures,
            delay,
        )
        if not _pause(delay, cancelled):
            return None
    return _reopen(pool, index, retries, cancelled)


def _reopen(
    pool: ConnectionPool, index: int, retries: Retries, cancelled: Callable[[], bool]
) -> SiteConnection | None:
    """A fresh connection for slot ``index``; failed attempts use up retries too."""
    while not cancelled():
        try:
            return pool.reopen(index)
        except (AuthFailed, HostKeyRejected) as exc:
            log.warning(
                "connection %d could not be replaced: %s (not tried again)", index + 1, exc.message
            )
            return None
        except RemoteUnavailable as exc:
            delay = retries.take(exc)
            if delay is None or not _pause(delay, cancelled):
                log.warning("connection %d could not be replaced: %s", index + 1, exc.message)
                return None
            log.warning(
                "connection %d could not be replaced (%s); trying again in %.1f s",
                index + 1,
                exc.message,
                delay,
            )
    return None


def _pause(seconds: float, cancelled: Callable[[], bool]) -> bool:
    """Sleep ``seconds`` unless cancelled meanwhile; True if the pause ran its course."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if cancelled():
            return False
        time.sleep(min(left, 0.05))
    return not cancelled()


def _gave_up(retries: Retries, left: int) -> RemoteUnavailable:
    reason = retries.last_error.message if retries.last_error else "no connection could be opened"
    unread = f"; {left} images were not read" if left else ""
    times = {1: "once", 2: "twice"}.get(retries.failures, f"{retries.failures} times")
    return RemoteUnavailable(f"the connection to the SFTP server failed {times} ({reason}){unread}")
