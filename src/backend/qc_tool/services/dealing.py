"""Deal images to a pool's connections as each has room, and read them over the pool.

Shared by the GPS scan and the photo checks. Each queue of images has a number of
workers (pool connections 0..k-1); a connection takes the next image of the first
queue it works on that has images left, whenever its pipeline has room. Dealing at
that moment rather than in fixed shares up front keeps the rotation, but a
connection that opened late (they open one after another, ~0.5 s apart over a
WAN) is not left holding a share while the others sit idle, and a connection that
never opens leaves nothing behind.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from qc_tool.domain.models import RemoteFile
from qc_tool.services.pool import ConnectionPool
from qc_tool.services.ports import SiteConnection

# Reads the images it is dealt on one connection, in that connection's thread.
ReadOn = Callable[[SiteConnection, Iterator[RemoteFile]], None]


class Dealer:
    """Queues of images, each with the number of pool connections that may read from it."""

    def __init__(self, queues: Sequence[tuple[int, Sequence[RemoteFile]]]) -> None:
        self._queues = [(workers, deque(files)) for workers, files in queues if files]
        self.width = max((workers for workers, _ in self._queues), default=0)
        self._lock = threading.Lock()

    def files_for(self, index: int, cancelled: Callable[[], bool]) -> Iterator[RemoteFile]:
        """The images connection ``index`` reads, one at a time, until none are left for it."""
        while not cancelled():
            with self._lock:
                found = next((q for workers, q in self._queues if index < workers and q), None)
                if found is None:
                    return
                f = found.popleft()
            yield f

    def has_work(self, index: int) -> bool:
        with self._lock:
            return any(index < workers and q for workers, q in self._queues)

    def left(self) -> int:
        with self._lock:
            return sum(len(q) for _, q in self._queues)


def read_over_pool(
    pool: ConnectionPool,
    dealer: Dealer,
    read_on: ReadOn,
    cancelled: Callable[[], bool],
    thread_name: str,
) -> None:
    """One thread per pool connection, each reading what it is dealt; none left behind."""
    if not dealer.width:
        return
    with ThreadPoolExecutor(max_workers=dealer.width, thread_name_prefix=thread_name) as threads:
        futures = [
            threads.submit(_work, pool, i, dealer, read_on, cancelled) for i in range(dealer.width)
        ]
        for future in futures:
            future.result()
    if dealer.left() and not cancelled():
        # Only the first connection can be left when every pool connection failed to open.
        _work(pool, 0, dealer, read_on, cancelled)


def _work(
    pool: ConnectionPool,
    index: int,
    dealer: Dealer,
    read_on: ReadOn,
    cancelled: Callable[[], bool],
) -> None:
    """Read on connection ``index`` while the dealer has images for it; nothing if it never opens."""
    # Stop waiting for a connection still opening once there is nothing left for it.
    conn = pool.get(index, lambda: cancelled() or not dealer.has_work(index))
    if conn is None:
        return
    try:
        read_on(conn, dealer.files_for(index, cancelled))
    finally:
        conn.release()
