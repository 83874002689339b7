"""How many photos a check pass measures at once follows the machine's load, without thrashing."""

from __future__ import annotations

import itertools
import threading
from types import SimpleNamespace

import pytest
from qc_tool.services import workers
from qc_tool.services.workers import GovernorPolicy, LoadSample, PsutilSampler, WorkerGovernor
from waiting import wait_until

IDLE = LoadSample(others_busy_cores=0.0, available_mb=8000.0)
BUSY = LoadSample(others_busy_cores=2.0, available_mb=8000.0)  # another job holds both cores
SHORT_OF_MEMORY = LoadSample(others_busy_cores=0.0, available_mb=100.0)
FAST = GovernorPolicy(interval_s=0.01)


def _governor(most: int = 2) -> WorkerGovernor:
    return WorkerGovernor(most, cores=2, policy=GovernorPolicy(steady_samples=3, hold_samples=4))


def test_it_starts_from_the_cores_and_shrinks_only_after_steady_readings() -> None:
    g = _governor()
    assert g.count == 2
    assert [g.observe(BUSY, waiting=True) for _ in range(3)] == [2, 2, 1]
    assert g.history[0] == (0.0, 2) and g.history[-1][1] == 1


def test_a_load_that_comes_and_goes_between_readings_changes_nothing() -> None:
    g = _governor()
    counts = {g.observe(IDLE if i % 2 else BUSY, waiting=True) for i in range(200)}
    assert counts == {2} and len(g.history) == 1
    g.observe(BUSY, waiting=True)
    g.observe(BUSY, waiting=True)
    assert g.observe(IDLE, waiting=True) == 2  # two busy readings, then idle: the streak resets


def test_it_grows_back_when_cores_idle_and_photos_wait_but_not_for_nothing() -> None:
    g = _governor()
    for _ in range(3):
        g.observe(BUSY, waiting=True)
    assert g.count == 1
    for _ in range(20):
        g.observe(IDLE, waiting=False)  # nothing waits: one worker is enough
    assert g.count == 1
    counts = [g.observe(IDLE, waiting=True) for _ in range(3)]
    assert counts == [1, 1, 2]


def test_after_a_move_it_holds_before_the_next_one() -> None:
    g = WorkerGovernor(4, cores=4, policy=GovernorPolicy(steady_samples=1, hold_samples=4))
    counts = [g.observe(LoadSample(4.0, 8000.0), waiting=True) for _ in range(9)]
    assert counts == [3, 3, 3, 3, 2, 2, 2, 2, 1]  # one step, then four readings' pause


def test_memory_running_short_means_one_fewer_whatever_the_cores() -> None:
    g = _governor()
    assert [g.observe(SHORT_OF_MEMORY, waiting=True) for _ in range(3)] == [2, 2, 1]
    for _ in range(20):
        assert g.observe(SHORT_OF_MEMORY, waiting=True) == 1  # never below one


def test_the_running_governor_reads_the_sampler_and_reports_each_change() -> None:
    reading = [IDLE]
    changes: list[int] = []
    g = WorkerGovernor(2, sampler=lambda: reading[0], policy=FAST, cores=2)
    with g.running(waiting=lambda: True, on_change=changes.append):
        wait_until(lambda: g.samples >= 5, message="the governor's first readings")
        assert g.count == 2 and changes == []
        reading[0] = BUSY
        wait_until(lambda: changes == [1], message=lambda: f"a shrink, changes {changes}")
    assert g.count == 1


def test_a_machine_busy_with_other_processes_makes_the_pass_shrink_without_thrashing(
    cpu_burners: list[int],
) -> None:
    """Real readings (psutil) while two other processes burn both cores."""
    g = WorkerGovernor(2, sampler=PsutilSampler(), policy=GovernorPolicy(interval_s=0.05), cores=2)
    changes: list[int] = []
    stop = threading.Event()
    with g.running(waiting=lambda: not stop.is_set(), on_change=changes.append):
        wait_until(lambda: g.count == 1, message=lambda: f"a shrink, history {g.history}")
        wait_until(lambda: g.samples >= 40, message="more readings under the same load")
    assert changes == [1]  # one move down, and it stayed there while the load stayed
    assert [count for _, count in g.history] == [2, 1]


def test_a_process_of_ours_started_between_readings_is_not_counted_as_other_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The measuring processes start with the pass: their first CPU is ours, not another job's."""
    machine = iter([100.0, 101.6])  # busy CPU-seconds of the whole machine at each reading
    ours = iter([{1: 5.0}, {1: 5.8, 2: 0.8}])  # this process, then a new worker (pid 2) too
    clock = itertools.count(10.0)  # any interval: all the CPU in it is ours
    monkeypatch.setattr(
        workers.psutil, "cpu_times", lambda: SimpleNamespace(user=next(machine), system=0.0)
    )
    monkeypatch.setattr(workers.time, "monotonic", lambda: next(clock))
    sampler = PsutilSampler()
    monkeypatch.setattr(sampler, "_ours", lambda: (next(ours), 0))
    sampler()  # the baseline
    # 1.6 CPU-s, all of it ours: 0.8 by this process, 0.8 by the new worker.
    assert sampler().others_busy_cores == pytest.approx(0.0)
