"""The one way a test waits: poll a condition until it holds, or fail saying what never came.

A test never sleeps "long enough" for something to happen; it names the condition and waits
for it. The timeout only keeps a broken run from hanging: it is generous, and a passing run
never comes near it, so a slow or busy machine does not fail a test.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

TIMEOUT_S = 30.0  # far above any passing wait; pytest-timeout (pyproject.toml) is the backstop
INTERVAL_S = 0.02


def wait_until(
    condition: Callable[[], T],
    *,
    timeout: float = TIMEOUT_S,
    interval: float = INTERVAL_S,
    message: str | Callable[[], str] = "the condition",
) -> T:
    """Call ``condition`` until it returns something true, and return that value.

    Raises AssertionError after ``timeout`` seconds, naming ``message`` (a callable is asked
    for the text only then, so it can show the state the test gave up on) and the last value.
    An exception raised by ``condition`` is not retried: it fails the test at once.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            what = message() if callable(message) else message
            raise AssertionError(f"waited {timeout:g} s for {what}; last value {value!r}")
        time.sleep(interval)
