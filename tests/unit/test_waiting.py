"""The tests' one wait: returns what the condition found, fails saying what never came."""

from __future__ import annotations

import itertools

import pytest
from waiting import wait_until


def test_it_returns_the_first_true_value_the_condition_gives() -> None:
    answers = iter([None, 0, "", {"state": "done"}])
    assert wait_until(lambda: next(answers), interval=0) == {"state": "done"}


def test_it_fails_after_the_timeout_naming_what_it_waited_for_and_the_last_value() -> None:
    calls = itertools.count(1)
    with pytest.raises(AssertionError) as failed:
        wait_until(lambda: next(calls) < 0, timeout=0.05, interval=0.01, message="a miracle")
    assert "a miracle" in str(failed.value) and "last value False" in str(failed.value)
    assert next(calls) > 2  # it kept asking until the timeout


def test_a_message_given_as_a_function_shows_the_state_when_it_gave_up() -> None:
    count = [0]

    def stuck_at_three() -> bool:
        count[0] = min(count[0] + 1, 3)
        return False

    with pytest.raises(AssertionError, match=r"the count to reach 99 \(at 3\)"):
        wait_until(
            stuck_at_three,
            timeout=0.05,
            interval=0.001,
            message=lambda: f"the count to reach 99 (at {count[0]})",
        )


def test_an_error_in_the_condition_is_not_retried() -> None:
    calls: list[int] = []

    def broken() -> bool:
        calls.append(1)
        raise KeyError("state")

    with pytest.raises(KeyError):
        wait_until(broken)
    assert calls == [1]
