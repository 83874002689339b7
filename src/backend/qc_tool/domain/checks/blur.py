"""Focus measure: how sharp the edges of the textured parts of a photo are, in every direction.

The photo (luma, ~1000 px on the long side, so scores do not depend on the camera's resolution)
is cut into a grid. Cells whose standard deviation is below a floor (sky, water, plain walls)
are ignored: a featureless area is not evidence of blur. In the textured cells, for each of four
directions (0, 90, 45, 135 degrees), the energy of the 3-tap Laplacian [1, -2, 1] along that
direction is divided by the energy of the first difference along it. For an edge blurred with a
Gaussian of width s this ratio falls as 1/s^2, whatever the edge's contrast or how many edges the
cell holds, so it needs no per-scene calibration. The sums are taken over the half of the
textured cells with the most gradient energy (the sharpest parts decide), less the noise floor
measured in the quietest cells (noise would otherwise pass for detail). The score is the weakest
direction, so motion blur (soft along one direction only) is caught as well as defocus.
docs/checks.md has the measured separation on the tuning set and the test corpus.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .result import CheckOutcome
from .settings import CheckSettings

# (row step, column step) of each direction: horizontal, vertical, and the two diagonals.
_DIRECTIONS = ((0, 1), (1, 0), (1, 1), (1, -1))
_NOISE_PERCENTILE = 5.0  # the quietest 5 % of cells give the noise floor ...
_NOISE_SHARE_MAX = 0.9  # ... unless they are nearly as busy as the kept cells


@dataclass(frozen=True, slots=True)
class BlurMeasure:
    """The focus score (None when too little texture to judge) and what it was computed from."""

    score: float | None
    textured_cells: int
    cells: int
    direction_scores: tuple[float, ...] = ()  # 0, 90, 45, 135 degrees; empty when not judged


def _cells(a: np.ndarray, grid: int) -> np.ndarray:
    """The array cut into grid x grid cells, one row of pixels per cell (edges trimmed)."""
    ch, cw = a.shape[0] // grid, a.shape[1] // grid
    trimmed = a[: ch * grid, : cw * grid]
    return trimmed.reshape(grid, ch, grid, cw).swapaxes(1, 2).reshape(grid * grid, ch * cw)


def _differences(g: np.ndarray, step: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """First and second differences along ``step`` on the interior (one pixel trimmed per side)."""
    dy, dx = step
    h, w = g.shape
    centre = g[1 : h - 1, 1 : w - 1]
    ahead = g[1 + dy : h - 1 + dy, 1 + dx : w - 1 + dx]
    behind = g[1 - dy : h - 1 - dy, 1 - dx : w - 1 - dx]
    return ahead - centre, ahead + behind - 2.0 * centre


def focus_measure(gray: np.ndarray, settings: CheckSettings) -> BlurMeasure:
    """Measure the focus of a luma image (2-D array); see the module docstring for the method."""
    grid = settings.blur_grid
    g = gray.astype(np.float32)
    if g.ndim != 2 or min(g.shape) < 3 * grid:
        return BlurMeasure(None, 0, grid * grid)
    textured = _cells(g[1:-1, 1:-1], grid).std(axis=1) >= settings.blur_texture_min_std
    count = int(textured.sum())
    if count < settings.blur_min_textured_cells:
        return BlurMeasure(None, count, grid * grid)
    keep = max(3, math.ceil(count * settings.blur_strongest_fraction))
    scores = []
    for step in _DIRECTIONS:
        first, second = _differences(g, step)
        e1_all = np.square(_cells(first, grid)).mean(axis=1)
        e2_all = np.square(_cells(second, grid)).mean(axis=1)
        # The quietest cells hold little but sensor noise: their energy is the noise floor,
        # taken off every kept cell so that noise does not pass for fine detail. When even the
        # quietest cells are nearly as busy as the kept ones, the photo is texture all over
        # (gravel, grass from above) and there is no noise-only cell to measure.
        e1, e2 = e1_all[textured], e2_all[textured]
        strongest = np.argsort(e1)[::-1][:keep]
        kept1, kept2 = e1[strongest], e2[strongest]
        n1, n2 = (float(np.percentile(e, _NOISE_PERCENTILE)) for e in (e1_all, e2_all))
        if n1 > _NOISE_SHARE_MAX * float(kept1.mean()):
            n1 = n2 = 0.0
        signal1 = float(kept1.sum()) - n1 * len(kept1)
        signal2 = max(0.0, float(kept2.sum()) - n2 * len(kept2))
        scores.append(100.0 * signal2 / signal1 if signal1 > 0 else 0.0)
    return BlurMeasure(min(scores), count, grid * grid, tuple(round(s, 2) for s in scores))


def _robust_centre(logs: np.ndarray) -> tuple[float, float]:
    """Median and MAD-based standard deviation of log scores."""
    median = float(np.median(logs))
    return median, 1.4826 * float(np.median(np.abs(logs - median)))


def site_focus_median(scores: Sequence[float | None]) -> float | None:
    """The site's median focus score over the photos that could be judged."""
    judged = [s for s in scores if s is not None and s > 0]
    return float(np.median(judged)) if judged else None


def judged_focus_count(scores: Sequence[float | None]) -> int:
    """How many photos have a focus score the site-relative rule can use."""
    return sum(1 for v in scores if v is not None and v > 0)


def relative_blur_applies(scores: Sequence[float | None], settings: CheckSettings) -> bool:
    """Whether the site has enough judged photos (``blur_site_min_images``) for the relative rule."""
    return judged_focus_count(scores) >= settings.blur_site_min_images


def relative_blur_flags(
    scores: Sequence[float | None], settings: CheckSettings | None = None
) -> list[bool]:
    """Flag photos far below the rest of their site (log space, robust to the blurred ones).

    A score is flagged when it is below the site median by more than both ``blur_site_ratio``
    (a factor) and ``blur_site_mad_z`` robust standard deviations, so a site whose photos vary
    a lot by nature does not flag its softest ordinary photos. Unjudged photos (None) are never
    flagged; sites with fewer than ``blur_site_min_images`` judged photos flag nothing.
    """
    s = settings or CheckSettings()
    if not relative_blur_applies(scores, s):
        return [False] * len(scores)
    judged = np.array([v for v in scores if v is not None and v > 0], dtype=np.float64)
    median, sigma = _robust_centre(np.log(judged))
    margin = max(math.log(s.blur_site_ratio), s.blur_site_mad_z * sigma)
    return [v is not None and (v <= 0 or math.log(v) < median - margin) for v in scores]


def blur_outcome(
    measure: BlurMeasure,
    settings: CheckSettings,
    *,
    site_median: float | None = None,
    relative_flag: bool = False,
) -> CheckOutcome:
    """Turn a focus measure (and the site-relative verdict) into an outcome for the technician."""
    minimum = settings.blur_min_focus
    if measure.score is None:
        return CheckOutcome(
            "blur",
            True,
            f"Not enough texture to judge focus ({measure.textured_cells} of {measure.cells} "
            "areas have detail)",
            None,
            minimum,
            judged=False,
        )
    score = round(measure.score, 1)
    context = f"absolute minimum {minimum:g}"
    if site_median is not None:
        context = f"site median {site_median:.1f}, {context}"
    if score < minimum or relative_flag:
        return CheckOutcome("blur", False, f"Blurred: focus {score} ({context})", score, minimum)
    return CheckOutcome("blur", True, f"Sharp: focus {score} ({context})", score, minimum)
