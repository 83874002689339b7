"""progress.Rate: the one count, rate and ETA helper of jobs, the check pass, uploads and the CLI."""

from __future__ import annotations

from qc_tool.services.progress import Rate


def test_a_clock_that_starts_at_zero_still_starts_the_rate_once() -> None:
    readings = iter([0.0, 1.0, 4.0])  # an injected clock may well start at 0
    rate = Rate(clock=lambda: next(readings))
    rate.update(0, 10)
    rate.update(2, 10)
    assert (rate.rate, rate.eta_s) == (2.0, 4.0)  # 2 in the 1 s since the start
    rate.update(8, 10)
    assert (rate.rate, rate.eta_s) == (2.0, 1.0)


def test_the_json_is_rounded_for_the_page() -> None:
    readings = iter([100.0, 103.0])
    rate = Rate(clock=lambda: next(readings))
    rate.update(0, 10)
    rate.update(1, 10)
    assert rate.to_json() == {"done": 1, "total": 10, "rate": 0.3, "eta_s": 27.0}
