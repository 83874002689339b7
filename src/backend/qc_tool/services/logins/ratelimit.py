"""Login rate limiting: too many failed logins from one address, or for one username, and the
next attempts are refused for a while without ever reaching the SFTP server.

Every login is a real password attempt on the SFTP server, and servers punish guessing:
OpenSSH >= 9.8 penalises the whole source address, which here is this tool, for every user.
So the tool counts failures itself and stops sending attempts first. Both keys are needed:
per address stops one client trying many usernames, per username stops many clients (or
addresses) trying one account. Only refused passwords count; a server that cannot be
reached or verified is not a guess.

An attempt is counted before it is made: ``reserve`` checks the limit and takes a place for
the attempt under one lock, so failures in the window plus attempts under way never exceed
the limit, however many logins arrive at once. The place becomes a failure when the password
is refused and is given back otherwise. While the places are taken by attempts still under
way, a new login waits for their outcome (a shared office address logs twenty people in at
once) instead of being refused.

The ``limits`` package (issue 12's suggestion) was weighed and not used: it can neither give
back one hit (only clear a key's whole history) nor take a hit on two keys atomically.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from qc_tool.errors import Busy, TooManyFailedLogins

# Keys remembered at once; past this the stale ones go, then the least recently failed.
MAX_KEYS = 10_000
# How long a login waits for attempts under way to free a place (each is bounded by the
# connect deadlines, a few seconds); past this it is answered "busy".
PENDING_WAIT_S = 30.0
# A waiting login looks again this often, so a failure leaving the window is noticed.
RECHECK_S = 1.0


@dataclass
class _Count:
    """One key's refused passwords (times, newest last) and attempts under way."""

    failures: deque[float]
    pending: int = 0


@dataclass
class LoginLimiter:
    """Failed and pending logins per client address and per username, in a sliding window."""

    max_failures: int
    window_s: float
    clock: Callable[[], float] = time.monotonic
    max_keys: int = MAX_KEYS
    wait_s: float = PENDING_WAIT_S
    _counts: dict[str, _Count] = field(default_factory=dict, init=False, repr=False)
    _changed: threading.Condition = field(
        default_factory=threading.Condition, init=False, repr=False
    )

    def __post_init__(self) -> None:
        if self.max_failures < 1 or self.window_s <= 0:
            raise ValueError("login limits need at least 1 failure and a window above 0 s")

    def reserve(self, address: str, username: str) -> LoginAttempt:
        """Take a place for one attempt by ``username`` from ``address``.

        Raises TooManyFailedLogins when refused passwords alone fill either key's places,
        and Busy when attempts under way kept them full for ``wait_s``.
        """
        keys = (_address_key(address), _user_key(username))
        deadline = time.monotonic() + self.wait_s
        with self._changed:
            while True:
                now = self.clock()
                waits = [w for key in keys if (w := self._refused_for(key, now)) is not None]
                if waits:
                    retry_after = max(1, math.ceil(max(waits)))
                    raise TooManyFailedLogins("too many failed logins", retry_after=retry_after)
                if all(self._taken(key) < self.max_failures for key in keys):
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Busy("many logins are being checked right now; try again in a moment")
                self._changed.wait(min(left, RECHECK_S))
            for key in keys:
                self._count(key).pending += 1
            if len(self._counts) > self.max_keys:
                self._prune(now)
        return LoginAttempt(self, keys)

    def _refused_for(self, key: str, now: float) -> float | None:
        """Seconds until ``key``'s oldest counted failure leaves the window, if they fill it."""
        count = self._counts.get(key)
        if count is None:
            return None
        self._expire(key, count, now)
        if len(count.failures) < self.max_failures:
            return None
        return count.failures[0] + self.window_s - now

    def _taken(self, key: str) -> int:
        count = self._counts.get(key)
        return 0 if count is None else len(count.failures) + count.pending

    def _count(self, key: str) -> _Count:
        found = self._counts.get(key)
        if found is None:
            found = self._counts[key] = _Count(deque(maxlen=self.max_failures))
        return found

    def _expire(self, key: str, count: _Count, now: float) -> None:
        times = count.failures
        while times and now - times[0] >= self.window_s:
            times.popleft()
        if not times and not count.pending:
            del self._counts[key]

    def _finish(self, keys: tuple[str, ...], outcome: str) -> None:
        """An attempt's outcome: "refused" counts it, "ok" clears the user's, "void" does neither."""
        now = self.clock()
        with self._changed:
            for key in keys:
                count = self._counts[key]
                count.pending -= 1
                if outcome == "refused":
                    count.failures.append(now)
                elif outcome == "ok" and key.startswith("user:"):
                    # The account's owner knows its password: forget its failures (not the
                    # address's).
                    count.failures.clear()
                self._expire(key, count, now)
            self._changed.notify_all()

    def _prune(self, now: float) -> None:
        for key, count in list(self._counts.items()):
            self._expire(key, count, now)  # drops keys whose failures are all stale
        excess = len(self._counts) - self.max_keys
        if excess > 0:
            idle = [k for k, c in self._counts.items() if not c.pending]
            by_last = sorted(idle, key=lambda k: self._counts[k].failures[-1])
            for key in by_last[:excess]:
                del self._counts[key]


class LoginAttempt:
    """One reserved attempt; exactly one outcome counts, and leaving the block gives it back."""

    def __init__(self, limiter: LoginLimiter, keys: tuple[str, ...]) -> None:
        self._limiter = limiter
        self._keys = keys
        self._lock = threading.Lock()
        self._open = True

    def wrong_password(self) -> None:
        """The server refused the password: the place stays taken as a failure."""
        self._end("refused")

    def succeeded(self) -> None:
        """Logged in: the place is given back and the username's failures are forgotten."""
        self._end("ok")

    def release(self) -> None:
        """No verdict on the password (unreachable, host key, an error): give the place back."""
        self._end("void")

    def _end(self, outcome: str) -> None:
        with self._lock:
            was_open, self._open = self._open, False
        if was_open:
            self._limiter._finish(self._keys, outcome)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


def _address_key(address: str) -> str:
    return f"address:{address}"


def _user_key(username: str) -> str:
    # Case-folded: some servers treat user names case-insensitively, and "Bob" must not get a
    # second set of attempts at "bob"'s password.
    return f"user:{username.casefold()}"
