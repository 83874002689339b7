"""Exposure: judged from what the picture shows, since a scene's true brightness is unknown.

A dark scene (water, asphalt) correctly exposed still has some bright pixels, and a bright one
(sky, a white wall) still has some dark ones; an exposure error compresses the whole histogram
against one end. So the rules look at the ends of the histogram (the 1st and 99th percentiles)
as well as the mean and the shares of crushed and clipped pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from .result import CheckOutcome
from .settings import CheckSettings


@dataclass(frozen=True, slots=True)
class ExposureMeasure:
    """Mean luma (0-255), crushed/clipped fractions, and the 1st/99th percentile levels."""

    mean: float
    dark_fraction: float
    bright_fraction: float
    shadow_level: int = 0  # 1st percentile of luma
    highlight_level: int = 255  # 99th percentile of luma


def luma_histogram(gray: np.ndarray) -> list[int]:
    """Counts of each level 0-255 of a uint8 image: Pillow's C loop, 3x numpy's bincount."""
    return Image.fromarray(np.ascontiguousarray(gray, dtype=np.uint8), "L").histogram()


def measure_exposure(gray: np.ndarray, settings: CheckSettings) -> ExposureMeasure:
    """Measure a luma image (uint8, 2-D) from its histogram."""
    histogram = np.asarray(luma_histogram(gray), dtype=np.float64)
    total = max(1.0, float(histogram.sum()))
    cumulative = np.cumsum(histogram) / total
    return ExposureMeasure(
        mean=float(np.dot(histogram, np.arange(256))) / total,
        dark_fraction=float(cumulative[settings.dark_level]),
        bright_fraction=float(histogram[settings.bright_level :].sum()) / total,
        shadow_level=int(np.searchsorted(cumulative, 0.01)),
        highlight_level=int(np.searchsorted(cumulative, 0.99)),
    )


def _under(m: ExposureMeasure, s: CheckSettings) -> str | None:
    """Why the photo is under-exposed, or None."""
    if m.highlight_level < s.under_highlight_max:
        return (
            f"even the brightest 1% is only {m.highlight_level} (minimum {s.under_highlight_max})"
        )
    if m.dark_fraction > s.under_dark_fraction:
        return (
            f"{100 * m.dark_fraction:.0f}% crushed blacks "
            f"(maximum {100 * s.under_dark_fraction:.0f}%)"
        )
    return None


def _over(m: ExposureMeasure, s: CheckSettings) -> str | None:
    """Why the photo is over-exposed, or None."""
    if m.bright_fraction > s.over_bright_fraction:
        return (
            f"{100 * m.bright_fraction:.0f}% clipped highlights "
            f"(maximum {100 * s.over_bright_fraction:.0f}%)"
        )
    if m.mean > s.over_mean_min and m.shadow_level > s.over_shadow_min:
        return (
            f"washed out: mean brightness {m.mean:.1f} (maximum {s.over_mean_min:g}) and even "
            f"the darkest 1% is {m.shadow_level} (maximum {s.over_shadow_min})"
        )
    return None


def exposure_outcome(measure: ExposureMeasure, settings: CheckSettings) -> CheckOutcome:
    """Under-exposed, over-exposed or fine, with the numbers that decided it.

    ``value`` is the mean luma; on failure ``threshold`` is "under" or "over".
    """
    mean = round(measure.mean, 1)
    under = _under(measure, settings)
    if under is not None:
        return CheckOutcome("exposure", False, f"Under-exposed: {under}", mean, "under")
    over = _over(measure, settings)
    if over is not None:
        return CheckOutcome("exposure", False, f"Over-exposed: {over}", mean, "over")
    message = (
        f"Exposure fine: mean brightness {mean}, tones from {measure.shadow_level} to "
        f"{measure.highlight_level}, {100 * measure.bright_fraction:.1f}% clipped"
    )
    return CheckOutcome("exposure", True, message, mean)
