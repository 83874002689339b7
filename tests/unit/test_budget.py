"""The check pass's memory budget: photos reserved before their reads, kept until measured."""

from __future__ import annotations

import threading

import pytest
from qc_tool.services.checks.budget import ByteBudget
from waiting import wait_until


def _reserve_in_thread(budget: ByteBudget, key: str, size: int) -> threading.Thread:
    thread = threading.Thread(target=budget.reserve, args=(key, size), daemon=True)
    thread.start()
    return thread


def test_a_photo_waits_for_room_and_goes_on_when_a_measure_gives_it_back() -> None:
    budget = ByteBudget(100)
    assert budget.try_reserve("a", 60)
    waiting = _reserve_in_thread(budget, "b", 50)  # 110 bytes would be over the limit
    wait_until(lambda: budget.queued == 1, message="the second photo waiting")
    assert waiting.is_alive() and budget.held == 60
    budget.release("a")
    waiting.join(timeout=30)
    assert not waiting.is_alive() and budget.held == 50 and budget.peak == 60


def test_a_large_photo_waiting_for_room_is_not_overtaken_by_small_ones() -> None:
    budget = ByteBudget(100)
    assert budget.try_reserve("a", 30)
    assert not budget.try_reserve("big", 90)  # 120 > 100: it takes its turn
    assert not budget.try_reserve("small", 1)  # there is room, but not its turn
    budget.release("a")
    assert not budget.try_reserve("small", 1)  # still the large photo's turn
    assert budget.try_reserve("big", 90)
    assert budget.try_reserve("small", 1)  # its turn now, and 91 bytes fit


def test_a_photo_larger_than_the_budget_goes_alone() -> None:
    budget = ByteBudget(100)
    assert budget.try_reserve("a", 10)
    big = _reserve_in_thread(budget, "big", 500)
    wait_until(lambda: budget.queued == 1, message="the large photo waiting")
    budget.release("a")
    big.join(timeout=30)
    assert budget.held == budget.peak == 500
    assert not budget.try_reserve("next", 1)  # nothing joins a photo over the budget
    budget.release("big")
    assert budget.try_reserve("next", 1) and budget.held == 1


def test_a_photo_handed_to_the_workers_keeps_only_what_they_are_handed() -> None:
    budget = ByteBudget(100)
    assert budget.try_reserve("band", 80)  # a whole file's worth, reserved before reading
    budget.hand_over("band", 5)  # a decoded band
    budget.finished("band")  # its read ended: what it keeps stays until measured
    assert budget.held == 5 and budget.reading == 0
    assert budget.try_reserve("next", 90)
    budget.release("band")
    assert budget.held == 90


def test_a_photo_whose_read_failed_gives_back_all_it_reserved() -> None:
    budget = ByteBudget(100)
    assert budget.try_reserve("a", 70)
    budget.finished("a")  # reported with an error: never handed over
    assert budget.held == 0 and budget.peak == 70


def test_handing_over_waits_while_the_count_of_photos_is_reached() -> None:
    budget = ByteBudget(100, max_items=1)
    for key in ("a", "b"):
        assert budget.try_reserve(key, 10)
    budget.hand_over("a", 10)
    second = threading.Thread(target=budget.hand_over, args=("b", 10), daemon=True)
    second.start()
    wait_until(lambda: budget.waits == 1, message="the second photo waiting for a place")
    assert second.is_alive()
    budget.release("a")
    second.join(timeout=30)
    assert not second.is_alive() and budget.held == 10


def test_a_reader_waiting_for_room_stops_when_the_pass_is_cancelled() -> None:
    budget = ByteBudget(100)
    assert budget.try_reserve("a", 100)
    cancelled = threading.Event()
    got: list[bool] = []
    thread = threading.Thread(
        target=lambda: got.append(budget.reserve("b", 10, cancelled.is_set)), daemon=True
    )
    thread.start()
    wait_until(lambda: budget.queued == 1, message="the reader waiting")
    cancelled.set()
    thread.join(timeout=30)
    assert got == [False] and budget.queued == 0 and budget.held == 100


def test_bytes_past_a_reservation_are_taken_and_counted() -> None:
    budget = ByteBudget(100)
    assert budget.try_reserve("a", 100)
    budget.extend("a", 7)
    assert budget.held == budget.peak == 107 and budget.overdrawn == 7
    budget.release("a")
    assert budget.held == 0


def test_a_budget_of_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="more than 0 bytes"):
        ByteBudget(0)
