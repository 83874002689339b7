"""Logged-in users' SFTP credentials, kept in this process's memory only.

The browser holds an opaque random session id (in a signed cookie); the password
never leaves the server, is never logged and never written to disk. A login ends at
logout, after ``idle_seconds`` without use, after ``max_seconds`` however active it is,
or when the SFTP server refuses its password (the first refusal: no second attempt).
Ending drops the entry and blanks its password field, so nothing reachable from the
store holds it any more. That is all Python allows: a str cannot be zeroed in place, so
the old text stays in freed memory until it is reused, and a scan that started before
the logout keeps its own reference until it is cancelled and ends.
Expiry is applied whenever the store is used and by ``expire``, which the app's sweeper
thread calls every few seconds, so an abandoned login is wiped without any request.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from qc_tool.errors import AuthFailed, NotLoggedIn
from qc_tool.services.ports import Connector, SiteConnection


@dataclass(eq=False)
class Credentials:
    username: str
    password: str = field(repr=False)
    created: float = field(default_factory=time.time)
    last_seen: float = field(default_factory=time.time)


class SessionStore:
    """Session id -> credentials, with an idle timeout and an absolute lifetime."""

    def __init__(
        self,
        idle_seconds: float,
        clock: Callable[[], float] = time.time,
        on_expire: Callable[[str], None] | None = None,
        max_seconds: float | None = None,
    ) -> None:
        self._idle = idle_seconds
        self._max = max_seconds
        self._items: dict[str, Credentials] = {}
        self._lock = threading.Lock()
        self.clock = clock
        # Told each session id that ended without a logout (expired, or its password refused),
        # outside the lock, to stop what the login still runs and close its connections.
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

    def expire(self) -> int:
        """End every login past its idle or absolute limit now; how many ended."""
        with self._lock:
            expired = self._expire()
        self._expired(expired)
        return len(expired)

    def refused(self, creds: Credentials) -> None:
        """The server refused these credentials: end their login as an expired one is ended.

        Credentials that are not a login (a login form's check) are only wiped.
        """
        with self._lock:
            sids = [sid for sid, c in self._items.items() if c is creds]
            for sid in sids:
                del self._items[sid]
            creds.password = ""
        self._expired(sids)

    def __len__(self) -> int:
        with self._lock:
            expired = self._expire()
            count = len(self._items)
        self._expired(expired)
        return count

    def _expire(self) -> list[str]:
        """Drop and wipe idle and too old logins (the lock is held); their ids, for ``on_expire``."""
        now = self.clock()
        expired = []
        for sid, creds in list(self._items.items()):
            too_old = self._max is not None and now - creds.created > self._max
            if too_old or now - creds.last_seen > self._idle:
                creds.password = ""
                del self._items[sid]
                expired.append(sid)
        return expired

    def _expired(self, sids: list[str]) -> None:
        if self.on_expire is not None:
            for sid in sids:
                self.on_expire(sid)


@dataclass(frozen=True)
class LoginConnector:
    """A connector for one login: no attempt once the login has ended, and a refusal ends it.

    A password changed on the server thus costs one refused attempt, whichever of a job, a
    preview or a page meets it first: every later connect of the login, and every request
    (401), stops here without reaching the server.
    """

    inner: Connector
    creds: Credentials
    on_refused: Callable[[Credentials], None]

    @property
    def server_id(self) -> str:
        return self.inner.server_id

    def connect(self) -> SiteConnection:
        if not self.creds.password:
            raise NotLoggedIn("the login has ended; please log in again")
        try:
            return self.inner.connect()
        except AuthFailed:
            self.on_refused(self.creds)
            raise
