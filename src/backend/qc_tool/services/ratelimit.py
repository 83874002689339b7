"""Login rate limiting: too many failed logins from one address, or for one username, and the
next attempts are refused for a while without ever reaching the SFTP server.

Every login is a real password attempt on the SFTP server, and servers punish guessing:
OpenSSH >= 9.8 penalises the whole source address, which here is this tool, for every user.
So the tool counts failures itself and stops sending attempts first. Both keys are needed:
per address stops one client trying many usernames, per username stops many clients (or
addresses) trying one account. Only refused passwords count; a server that cannot be
reached or verified is not a guess.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

# Keys remembered at once; past this the stale ones go, then the least recently failed.
MAX_KEYS = 10_000


class LoginLimiter:
    """Failed logins per client address and per username within a sliding window."""

    def __init__(
        self,
        max_failures: int,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_KEYS,
    ) -> None:
        if max_failures < 1 or window_s <= 0:
            raise ValueError("login limits need at least 1 failure and a window above 0 s")
        self.max_failures = max_failures
        self.window_s = window_s
        self.clock = clock
        self._max_keys = max_keys
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, address: str, username: str) -> int | None:
        """Seconds until an attempt for ``username`` from ``address`` is allowed; None: now."""
        now = self.clock()
        with self._lock:
            waits = [self._wait(key, now) for key in (_address_key(address), _user_key(username))]
        longest = max((w for w in waits if w is not None), default=None)
        return None if longest is None else max(1, math.ceil(longest))

    def failed(self, address: str, username: str) -> None:
        """Count one refused password against both the address and the username."""
        now = self.clock()
        with self._lock:
            for key in (_address_key(address), _user_key(username)):
                times = self._failures.setdefault(key, deque(maxlen=self.max_failures))
                times.append(now)
            if len(self._failures) > self._max_keys:
                self._prune(now)

    def succeeded(self, username: str) -> None:
        """The account's owner knows its password: forget its failures (not the address's)."""
        with self._lock:
            self._failures.pop(_user_key(username), None)

    def _wait(self, key: str, now: float) -> float | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and now - times[0] >= self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        if len(times) < self.max_failures:
            return None
        return times[0] + self.window_s - now  # when the oldest failure leaves the window

    def _prune(self, now: float) -> None:
        for key in list(self._failures):
            self._wait(key, now)  # drops keys whose failures are all stale
        excess = len(self._failures) - self._max_keys
        if excess > 0:
            by_last = sorted(self._failures, key=lambda k: self._failures[k][-1])
            for key in by_last[:excess]:
                del self._failures[key]


def _address_key(address: str) -> str:
    return f"address:{address}"


def _user_key(username: str) -> str:
    # Case-folded: some servers treat user names case-insensitively, and "Bob" must not get a
    # second set of attempts at "bob"'s password.
    return f"user:{username.casefold()}"
