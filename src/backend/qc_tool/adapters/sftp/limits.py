"""Caps on this process's connections to one SFTP server, whoever they belong to.

Every user's pool, login check and listing opens its own SSH connection. Many users at once
could reach a server's per-user limits, or simply overload it, so each connection holds one
of ``QC_MAX_SERVER_CONNECTIONS`` slots for its server until it closes (``SERVER_SLOTS``).

Logins in progress are capped apart (``SERVER_HANDSHAKES``, ``QC_MAX_SERVER_HANDSHAKES``): from
the TCP connect until the login is done, a connection is one of the server's "startups", and
OpenSSH drops new connections at random past ``MaxStartups`` (default 10:30:100: from 10
unauthenticated connections at once). The registries are process-wide on purpose: they are
the one thing all users' connections share.
"""

from __future__ import annotations

import threading
import time

from qc_tool.errors import RemoteUnavailable

_CONNECTIONS_FULL = (
    "all {size} connections this tool may open to {server} are in use "
    "(QC_MAX_SERVER_CONNECTIONS); try again when a scan has finished"
)
_HANDSHAKES_FULL = (
    "{size} logins to {server} stayed in progress too long (QC_MAX_SERVER_HANDSHAKES): "
    "the server is slow to answer; try again later"
)


class ServerSlots:
    """Counts holders per server; ``acquire`` waits (up to a deadline) for a free slot.

    ``full`` is the error past the deadline, formatted with ``size`` and ``server``.
    """

    def __init__(self, full: str = _CONNECTIONS_FULL) -> None:
        self._full = full
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
                    raise RemoteUnavailable(self._full.format(size=size, server=server))
                self._changed.wait(left)
            self._used[server] = used = self._used.get(server, 0) + 1
            self._peak[server] = max(self._peak.get(server, 0), used)
        return Slot(self, server)

    def in_use(self, server: str) -> int:
        with self._changed:
            return self._used.get(server, 0)

    def peak(self, server: str) -> int:
        """The most slots of ``server`` this process has held at once."""
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


# The process-wide registries (one each per worker process under gunicorn).
SERVER_SLOTS = ServerSlots()
SERVER_HANDSHAKES = ServerSlots(_HANDSHAKES_FULL)
