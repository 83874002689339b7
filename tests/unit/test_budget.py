"""The check pass's memory budget: bytes (and photos) held, a reader waiting for room."""

from __future__ import annotations

import threading

import pytest
from qc_tool.services.checks.budget import ByteBudget
from waiting import wait_until


def _take_in_thread(budget: ByteBudget, size: int) -> threading.Thread:
    thread = threading.Thread(target=budget.take, args=(size,), daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize(
    ("budget", "first", "second"),
    [
        (ByteBudget(100), 60, 50),  # 110 bytes would be over the limit
        (ByteBudget(100, max_items=1), 10, 10),  # two photos would be over the count
    ],
)
def test_a_reader_waits_for_room_and_goes_on_when_a_measure_gives_it_back(
    budget: ByteBudget, first: int, second: int
) -> None:
    budget.take(first)
    waiting = _take_in_thread(budget, second)
    wait_until(lambda: budget.waits == 1, message="the second reader waiting")
    assert waiting.is_alive() and budget.held == first
    budget.give_back(first)
    waiting.join(timeout=30)
    assert not waiting.is_alive() and budget.held == second and budget.peak == max(first, second)


def test_a_photo_larger_than_the_budget_goes_alone() -> None:
    budget = ByteBudget(100)
    budget.take(10)
    big = _take_in_thread(budget, 500)
    wait_until(lambda: budget.waits == 1, message="the large photo waiting")
    budget.give_back(10)
    big.join(timeout=30)
    assert budget.held == budget.peak == 500
    small = _take_in_thread(budget, 1)  # nothing joins a photo over the budget
    wait_until(lambda: budget.waits == 2, message="the next photo waiting")
    budget.give_back(500)
    small.join(timeout=30)
    assert budget.held == 1


def test_a_budget_of_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="more than 0 bytes"):
        ByteBudget(0)
