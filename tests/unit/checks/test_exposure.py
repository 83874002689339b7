"""Exposure rules on synthetic histograms: the ends of the histogram decide."""

from __future__ import annotations

import numpy as np
import pytest
from qc_tool.domain.checks.exposure import exposure_outcome, measure_exposure
from qc_tool.domain.checks.settings import CheckSettings

S = CheckSettings()


def _image(low: float, high: float, clipped: float = 0.0) -> np.ndarray:
    """A 200x100 luma image with tones spread evenly from low to high, and a clipped share."""
    values = np.linspace(low, high, 20_000)
    n = int(clipped * values.size)
    if n:
        values[-n:] = 255
    return np.clip(np.rint(values), 0, 255).astype(np.uint8).reshape(100, 200)


def test_the_measure_reads_mean_fractions_and_percentiles() -> None:
    gray = np.zeros((10, 10), np.uint8)
    gray[:, 5:] = 255
    m = measure_exposure(gray, S)
    assert m.mean == pytest.approx(127.5)
    assert (m.dark_fraction, m.bright_fraction) == (0.5, 0.5)
    assert (m.shadow_level, m.highlight_level) == (0, 255)


def test_a_normal_range_of_tones_passes() -> None:
    outcome = exposure_outcome(measure_exposure(_image(20, 230), S), S)
    assert outcome.ok
    assert outcome.message.startswith("Exposure fine: mean brightness 125.0")


def test_a_dark_scene_with_some_highlights_is_not_under_exposed() -> None:
    """Water or asphalt: a low mean, but the highlights still reach the upper tones."""
    gray = _image(10, 90)
    gray[:5] = 200  # antenna panels, a white van
    assert exposure_outcome(measure_exposure(gray, S), S).ok


def test_a_histogram_squeezed_into_the_shadows_is_under_exposed() -> None:
    outcome = exposure_outcome(measure_exposure(_image(5, 80), S), S)
    assert not outcome.ok
    assert outcome.threshold == "under"
    assert outcome.message.startswith("Under-exposed: even the brightest 1% is only")


def test_mostly_crushed_blacks_are_under_exposed() -> None:
    gray = _image(0, 255)
    gray[:60] = 0
    outcome = exposure_outcome(measure_exposure(gray, S), S)
    assert not outcome.ok and "crushed blacks" in outcome.message


def test_a_large_clipped_area_is_over_exposed() -> None:
    outcome = exposure_outcome(measure_exposure(_image(30, 240, clipped=0.3), S), S)
    assert not outcome.ok
    assert outcome.threshold == "over"
    assert outcome.message == "Over-exposed: 30% clipped highlights (maximum 10%)"


def test_a_washed_out_photo_without_dark_tones_is_over_exposed() -> None:
    outcome = exposure_outcome(measure_exposure(_image(150, 249), S), S)
    assert not outcome.ok and "washed out" in outcome.message


def test_a_bright_sky_photo_that_keeps_its_shadows_is_fine() -> None:
    gray = _image(180, 245)
    gray[-10:] = 40  # tower steel and ground in the bottom tenth
    assert exposure_outcome(measure_exposure(gray, S), S).ok
