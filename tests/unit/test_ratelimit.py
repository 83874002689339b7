"""The login limiter counts an attempt before it is made, so a burst cannot outrun the limit."""

from __future__ import annotations

import threading

import pytest
from fakes import FakeClock
from qc_tool.errors import Busy, TooManyFailedLogins
from qc_tool.services.logins.ratelimit import LoginLimiter

WAIT = 10.0  # how long a test waits for a condition before failing


def test_forty_wrong_passwords_at_once_make_at_most_the_limit_of_attempts() -> None:
    limiter = LoginLimiter(max_failures=5, window_s=900)
    start = threading.Barrier(40)
    attempts_made = []
    outcomes: list[str] = []
    lock = threading.Lock()
    asked = [0]
    all_asked = threading.Event()

    def guess(i: int) -> None:
        start.wait()
        with lock:
            asked[0] += 1
            if asked[0] == 40:
                all_asked.set()
        try:
            attempt = limiter.reserve("10.0.0.1", "alice")
        except TooManyFailedLogins:
            with lock:
                outcomes.append("429")
            return
        with attempt:
            with lock:
                attempts_made.append(i)
            # The server says no only once every guess has asked for a place: all 40 overlap
            # the attempts under way, however the threads are scheduled.
            assert all_asked.wait(WAIT)
            attempt.wrong_password()
        with lock:
            outcomes.append("401")

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert len(attempts_made) == 5
    assert sorted(outcomes) == ["401"] * 5 + ["429"] * 35


def test_a_login_waits_while_attempts_under_way_fill_the_places_and_goes_on_after_success() -> None:
    limiter = LoginLimiter(max_failures=2, window_s=900)
    first = limiter.reserve("10.0.0.1", "alice")
    second = limiter.reserve("10.0.0.1", "bob")
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(limiter.reserve("10.0.0.1", "carol")))
    waiter.start()
    waiter.join(0.2)  # the third is held back (a slow machine only makes this more certain)
    assert waiter.is_alive() and got == []
    first.succeeded()
    waiter.join(WAIT)
    assert len(got) == 1
    second.release()


def test_waiters_are_refused_once_the_attempts_under_way_turn_into_failures() -> None:
    limiter = LoginLimiter(max_failures=2, window_s=900)
    attempts = [limiter.reserve("10.0.0.1", "alice") for _ in range(2)]
    errors: list[BaseException] = []

    def third() -> None:
        try:
            limiter.reserve("10.0.0.1", "alice")
        except TooManyFailedLogins as exc:
            errors.append(exc)

    waiter = threading.Thread(target=third)
    waiter.start()
    for attempt in attempts:
        attempt.wrong_password()
    waiter.join(WAIT)
    assert len(errors) == 1 and isinstance(errors[0], TooManyFailedLogins)
    assert 1 <= errors[0].retry_after <= 900


def test_an_attempt_without_a_verdict_gives_its_place_back() -> None:
    limiter = LoginLimiter(max_failures=1, window_s=900)
    with limiter.reserve("10.0.0.1", "alice"):
        pass  # e.g. the server could not be reached
    with pytest.raises(RuntimeError), limiter.reserve("10.0.0.1", "alice"):
        raise RuntimeError("a bug in the login check")
    attempt = limiter.reserve("10.0.0.1", "alice")
    attempt.wrong_password()
    attempt.release()  # after a verdict: nothing more happens
    with pytest.raises(TooManyFailedLogins):
        limiter.reserve("10.0.0.1", "alice")


def test_a_login_kept_waiting_too_long_is_told_the_tool_is_busy() -> None:
    limiter = LoginLimiter(max_failures=1, window_s=900, wait_s=0.2)
    held = limiter.reserve("10.0.0.1", "alice")
    with pytest.raises(Busy):
        limiter.reserve("10.0.0.2", "alice")
    held.release()
    limiter.reserve("10.0.0.2", "alice").release()


def test_the_window_slides_and_success_forgets_only_the_usernames_failures() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(max_failures=2, window_s=60, clock=clock)
    limiter.reserve("10.0.0.1", "alice").wrong_password()
    clock.now += 30
    limiter.reserve("10.0.0.1", "bob").wrong_password()
    with pytest.raises(TooManyFailedLogins) as refused:
        limiter.reserve("10.0.0.1", "carol")
    assert refused.value.retry_after == 30  # when alice's failure leaves the window
    clock.now += 30
    limiter.reserve("10.0.0.9", "bob").succeeded()  # bob's count is cleared, not the address's
    limiter.reserve("10.0.0.1", "carol").wrong_password()
    with pytest.raises(TooManyFailedLogins):
        limiter.reserve("10.0.0.1", "dave")
    limiter.reserve("10.0.0.2", "bob").release()


def test_usernames_are_counted_case_folded() -> None:
    limiter = LoginLimiter(max_failures=1, window_s=60)
    limiter.reserve("10.0.0.1", "Alice").wrong_password()
    with pytest.raises(TooManyFailedLogins):
        limiter.reserve("10.0.0.2", "aLICE")


def test_memory_is_bounded_and_attempts_under_way_are_never_forgotten() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(max_failures=1, window_s=60, clock=clock, max_keys=10)
    pending = limiter.reserve("10.0.0.1", "alice")
    for i in range(50):
        clock.now += 0.001
        limiter.reserve(f"10.1.0.{i}", f"user{i}").wrong_password()
    assert len(limiter._counts) <= 10 + 2  # the cap, plus one login's two keys above it
    limiter.wait_s = 0.1
    with pytest.raises(Busy):  # alice's place is still taken by the attempt under way
        limiter.reserve("10.0.0.2", "alice")
    pending.wrong_password()
    with pytest.raises(TooManyFailedLogins):
        limiter.reserve("10.0.0.3", "alice")


def test_limits_below_one_are_refused() -> None:
    with pytest.raises(ValueError):
        LoginLimiter(max_failures=0, window_s=60)
    with pytest.raises(ValueError):
        LoginLimiter(max_failures=1, window_s=0)
