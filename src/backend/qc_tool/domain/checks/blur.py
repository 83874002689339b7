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


def _cell_view(a: np.ndarray, grid: int, ch: int, cw: int) -> np.ndarray:
    """``a`` as (grid, ch, grid, cw) cells, a view: nothing is copied (edges trimmed)."""
    return a[: ch * grid, : cw * grid].reshape(grid, ch, grid, cw)


def _cell_sums(a: np.ndarray, b: np.ndarray | None, grid: int, ch: int, cw: int) -> np.ndarray:
    """Sum of ``a * b`` (of ``a`` when ``b`` is None) over each cell, flattened to grid * grid.

    The inputs are whole numbers in an integer type wide enough for every cell's sum (see
    ``_exact_type``), so the sums are exact: they do not depend on summation order, and no
    temporary of the image's size is made.
    """
    cells = _cell_view(a, grid, ch, cw)
    if b is None:
        sums: np.ndarray = np.einsum("ijkl->ik", cells)
    else:
        sums = np.einsum("ijkl,ijkl->ik", cells, _cell_view(b, grid, ch, cw))
    return sums.ravel()


def _exact_type(ch: int, cw: int) -> type[np.signedinteger]:
    """int32 when a cell's sum of squared second differences (at most 510^2 each) fits in it."""
    return np.int32 if ch * cw * 510**2 < 2**31 else np.int64


def _texture(g: np.ndarray, grid: int, ch: int, cw: int) -> np.ndarray:
    """Standard deviation of luma in each cell of the interior (one pixel trimmed per side)."""
    interior = g[1:-1, 1:-1]
    n = ch * cw
    total = _cell_sums(interior, None, grid, ch, cw).astype(np.float64)
    squares = _cell_sums(interior, interior, grid, ch, cw).astype(np.float64)
    return np.sqrt(np.maximum((squares - total * total / n) / n, 0.0))


def _differences(g: np.ndarray, step: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """First and second differences along ``step`` on the interior (one pixel trimmed per side).

    The second difference is the first one minus the first one a step back:
    [1, -2, 1] = [0, -1, 1] - [-1, 1, 0], so the image is subtracted from itself only once.
    """
    dy, dx = step
    h, w = g.shape
    right, left = max(dx, 0), max(-dx, 0)
    # d(x) = g(x + step) - g(x) for every x of the interior and one step back from it.
    d = (
        g[1 : h - 1 + dy, 1 - right + dx : w - 1 + left + dx]
        - g[1 - dy : h - 1, 1 - right : w - 1 + left]
    )
    # The interior (1, 1) is d's (dy, right); one step back from it is d's (0, right - dx).
    first = d[dy : dy + h - 2, right : right + w - 2]
    back = d[: h - 2, right - dx : right - dx + w - 2]
    return first, first - back


def _low_percentile(values: np.ndarray) -> float:
    """``np.percentile(values, _NOISE_PERCENTILE)`` (linear), without its per-call overhead.

    The same arithmetic as numpy's linear method, so the same float: partition instead of
    sort, and the interpolation numpy uses (from the nearer end).
    """
    index = (_NOISE_PERCENTILE / 100) * (len(values) - 1)
    below = int(index)
    above = min(below + 1, len(values) - 1)
    part = np.partition(values, (below, above))
    a, b, t = float(part[below]), float(part[above]), index - below
    return b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t


def focus_measure(gray: np.ndarray, settings: CheckSettings) -> BlurMeasure:
    """Measure the focus of a luma image (2-D uint8 array); see the module docstring.

    Every cell sum is exact integer arithmetic on views of the one luma array: each direction
    costs two subtractions and two accumulating passes, and no cell is copied out.
    """
    grid = settings.blur_grid
    if gray.ndim != 2 or min(gray.shape) < 3 * grid:
        return BlurMeasure(None, 0, grid * grid)
    ch, cw = (gray.shape[0] - 2) // grid, (gray.shape[1] - 2) // grid
    g = np.asarray(gray, dtype=np.uint8).astype(_exact_type(ch, cw))
    textured = _texture(g, grid, ch, cw) >= settings.blur_texture_min_std
    count = int(textured.sum())
    if count < settings.blur_min_textured_cells:
        return BlurMeasure(None, count, grid * grid)
    keep = max(3, math.ceil(count * settings.blur_strongest_fraction))
    n = ch * cw
    scores = []
    for step in _DIRECTIONS:
        first, second = _differences(g, step)
        e1_all = _cell_sums(first, first, grid, ch, cw) / n
        e2_all = _cell_sums(second, second, grid, ch, cw) / n
        # The quietest cells hold little but sensor noise: their energy is the noise floor,
        # taken off every kept cell so that noise does not pass for fine detail. When even the
        # quietest cells are nearly as busy as the kept ones, the photo is texture all over
        # (gravel, grass from above) and there is no noise-only cell to measure.
        e1, e2 = e1_all[textured], e2_all[textured]
        strongest = np.argsort(e1, kind="stable")[::-1][:keep]
        kept1, kept2 = e1[strongest], e2[strongest]
        n1, n2 = (_low_percentile(e) for e in (e1_all, e2_all))
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
