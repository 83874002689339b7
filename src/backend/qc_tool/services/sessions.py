"""Logged-in users' SFTP credentials, kept in this process's memory only.

The browser holds an opaque random session id (in a signed cookie); the password
never leaves the server, is never logged and never written to disk. Logout and
idle expiry drop the entry and blank its password field, so nothing reachable from
the store holds it any more. That is all Python allows: a str cannot be zeroed in
place, so the old text stays in freed memory until it is reused, and a scan that
started before the logout keeps its own reference until it is cancelled and ends.
Expiry is applied whenever the store is used (any login or request), not by a timer.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(eq=False)
class Credentials:
    username: str
    password: str = field(repr=False)
    created: float = field(default_factory=time.time)
    last_seen: float = field(default_factory=time.time)


class SessionStore:
    """Session id -> credentials, with idle expiry."""

    def __init__(
        self,
        idle_seconds: float,
        clock: Callable[[], float] = time.time,
        on_expire: Callable[[str], None] | None = None,
    ) -> None:
        self._idle = idle_seconds
        self._items: dict[str, Credentials] = {}
        self._lock = threading.Lock()
        self.clock = clock
        # Told each expired session id (outside the lock), to stop what the login still runs.
        self.on_expire = on_expire

    def create(self, username: str, password: str) -> str:
        sid = secrets.token_urlsafe(32)
        now = self.clock()
        with self._lock:
            expired = self._expire()
            self._items[sid] = Credentials(username, password, created=now, last_seen=now)
        self._expired(expired)
        return sid

    def get(self, sid: str | None) -> Credentials | None:
        if not sid:
            return None
        with self._lock:
            expired = self._expire()
            creds = self._items.get(sid)
            if creds is not None:
                creds.last_seen = self.clock()
        self._expired(expired)
        return creds

    def drop(self, sid: str | None) -> None:
        if sid:
            with self._lock:
                creds = self._items.pop(sid, None)
            if creds is not None:
                creds.password = ""

    def __len__(self) -> int:
        with self._lock:
            expired = self._expire()
            count = len(self._items)
        self._expired(expired)
        return count

    def _expire(self) -> list[str]:
        """Drop and wipe idle logins (the lock is held); their ids, for ``on_expire``."""
        now = self.clock()
        expired = []
        for sid, creds in list(self._items.items()):
            if now - creds.last_seen > self._idle:
                creds.password = ""
                del self._items[sid]
                expired.append(sid)
        return expired

    def _expired(self, sids: list[str]) -> None:
        if self.on_expire is not None:
            for sid in sids:
                self.on_expire(sid)
