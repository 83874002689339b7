"""A cap on this process's connections to one SFTP server, whoever they belong to.

Every user's pool, login check and listing opens its own SSH connection. Many users at once
could reach a server's per-user or MaxStartups limits, or simply overload it, so each
connection holds one of ``QC_MAX_SERVER_CONNECTIONS`` slots for its server until it closes.
The registry is process-wide on purpose: it is the one thing all users' connections share.
"""

from __future__ import annotations

import threading
import time

from qc_tool.errors import RemoteUnavailable


class ServerSlots:
    """Counts open connections per server; ``acquire`` waits (up to a deadline) for a free one."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._used: dict[str, int] = {}
        self._peak: dict[str, int] = {}

    def acquire(self, server: str, size: int, wait: float) -> Slot:
        """Take a slot of ``server``; raise RemoteUnavailable if none frees up within ``wait`` s."""
        deadline = time.monotonic() + wait
        with self._changed:
            while self._used.get(server, 0) >= size:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RemoteUnavailable(
                        f"all {size} connections this tool may open to {server} are in use "
                        "(QC_MAX_SERVER_CONNECTIONS); try again when a scan has finished"
                    )
                self._changed.wait(left)
            self._used[server] = used = self._used.get(server, 0) + 1
            self._peak[server] = max(self._peak.get(server, 0), used)
        return Slot(self, server)

    def in_use(self, server: str) -> int:
        with self._changed:
            return self._used.get(server, 0)

    def peak(self, server: str) -> int:
        """The most connections to ``server`` this process has held at once."""
        with self._changed:
            return self._peak.get(server, 0)

    def _release(self, server: str) -> None:
        with self._changed:
            self._used[server] -= 1
            if not self._used[server]:
                del self._used[server]
            self._changed.notify_all()


class Slot:
    """One connection's place in its server's cap; ``release`` is safe to call twice."""

    def __init__(self, owner: ServerSlots, server: str) -> None:
        self._owner = owner
        self._server = server
        self._lock = threading.Lock()
        self._held = True

    def release(self) -> None:
        with self._lock:
            held, self._held = self._held, False
        if held:
            self._owner._release(self._server)


# The process-wide registry (one per worker process under gunicorn).
SERVER_SLOTS = ServerSlots()
