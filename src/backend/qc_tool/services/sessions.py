"""Logged-in users' SFTP credentials, kept in this process's memory only.

The browser holds an opaque random session id (in a signed cookie); the password
never leaves the server, is never logged and never written to disk. Logout and
expiry drop it. (Python cannot zero a str in place; dropping the only reference
is the most it can do.)
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field


@dataclass(eq=False)
class Credentials:
    username: str
    password: str = field(repr=False)
    created: float = field(default_factory=time.time)
    last_seen: float = field(default_factory=time.time)


class SessionStore:
    """Session id -> credentials, with idle expiry."""

    def __init__(self, idle_seconds: float) -> None:
        self._idle = idle_seconds
        self._items: dict[str, Credentials] = {}
        self._lock = threading.Lock()

    def create(self, username: str, password: str) -> str:
        sid = secrets.token_urlsafe(32)
        with self._lock:
            self._expire()
            self._items[sid] = Credentials(username, password)
        return sid

    def get(self, sid: str | None) -> Credentials | None:
        if not sid:
            return None
        with self._lock:
            self._expire()
            creds = self._items.get(sid)
            if creds is not None:
                creds.last_seen = time.time()
            return creds

    def drop(self, sid: str | None) -> None:
        if sid:
            with self._lock:
                creds = self._items.pop(sid, None)
            if creds is not None:
                creds.password = ""

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def _expire(self) -> None:
        now = time.time()
        for sid, creds in list(self._items.items()):
            if now - creds.last_seen > self._idle:
                creds.password = ""
                del self._items[sid]
