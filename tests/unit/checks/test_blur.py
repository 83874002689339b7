"""The focus measure, its site-relative rule, and the technician's message."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from qc_tool.domain.checks.blur import BlurMeasure, blur_outcome, focus_measure, relative_blur_flags
from qc_tool.domain.checks.decode import decode_gray
from qc_tool.domain.checks.pixels import analyse_pixels
from qc_tool.domain.checks.settings import CheckSettings

from .jpegs import encode, gradient_jpeg
from .scenes import Defects, photograph, render_scene, shot

S = CheckSettings()


def _gray(data: bytes) -> np.ndarray:
    return decode_gray(data, S.analysis_long_side).pixels


def _focus(data: bytes) -> float:
    score = focus_measure(_gray(data), S).score
    assert score is not None
    return score


@pytest.fixture(scope="module")
def tower() -> np.ndarray:
    return render_scene(31, kind="tower_sky")


def test_a_sharp_photo_scores_above_the_minimum_and_its_blurred_twin_below(
    tower: np.ndarray,
) -> None:
    sharp = _focus(encode(photograph(tower, Defects(), 31)))
    blurred = _focus(encode(photograph(tower, Defects(blur_sigma=1.2), 31)))
    assert sharp > S.blur_min_focus > blurred
    assert sharp > 1.5 * blurred


def test_camera_shake_is_caught_in_the_direction_it_happened(tower: np.ndarray) -> None:
    sharp = focus_measure(_gray(encode(photograph(tower, Defects(), 31))), S)
    shaken = focus_measure(_gray(encode(photograph(tower, Defects(motion_px=7), 31))), S)
    assert shaken.score is not None and shaken.score < S.blur_min_focus
    horizontal, vertical = shaken.direction_scores[0], shaken.direction_scores[1]
    assert horizontal < 0.6 * vertical  # soft along the motion, sharp across it
    assert sharp.direction_scores[0] > 1.5 * horizontal


def test_the_score_does_not_depend_on_the_image_size(tower: np.ndarray) -> None:
    """The same picture at 2x its size (as a camera with twice the resolution would record)."""
    small = encode(photograph(tower, Defects(), 31))
    img = Image.open(io.BytesIO(small))
    big = io.BytesIO()
    img.resize((img.width * 2, img.height * 2), Image.Resampling.LANCZOS).save(
        big, "JPEG", quality=90
    )
    a, b = _focus(small), _focus(big.getvalue())
    assert abs(a - b) / a < 0.2


def test_the_score_does_not_depend_on_contrast(tower: np.ndarray) -> None:
    pixels = photograph(tower, Defects(), 31).astype(np.float32)
    flat = np.clip(0.5 * pixels + 64, 0, 255).astype(np.uint8)  # half the contrast
    a, b = _focus(encode(photograph(tower, Defects(), 31))), _focus(encode(flat))
    assert abs(a - b) / a < 0.25


def test_a_featureless_photo_is_not_judged_rather_than_called_blurred() -> None:
    measure = focus_measure(_gray(gradient_jpeg(1000, 750)), S)
    assert measure.score is None
    assert measure.textured_cells < S.blur_min_textured_cells
    outcome = blur_outcome(measure, S)
    assert outcome.ok and not outcome.judged
    assert outcome.message.startswith("Not enough texture to judge focus")


def test_a_photo_that_is_fine_texture_all_over_is_sharp() -> None:
    """No cell is quiet enough to give a noise floor: nothing is taken off."""
    rng = np.random.default_rng(0)
    gravel = np.clip(128 + 40 * rng.standard_normal((750, 1000)), 0, 255).astype(np.uint8)
    score = focus_measure(gravel, S).score
    assert score is not None and score > 2 * S.blur_min_focus


def test_a_tiny_image_is_not_judged() -> None:
    assert focus_measure(np.zeros((10, 10), np.uint8), S).score is None


def test_sky_and_walls_do_not_make_a_sharp_photo_look_blurred() -> None:
    """Mostly-sky and plain-wall scenes are the hard cases for a global Laplacian variance."""
    for seed in (40, 41):  # seed 40: 55-85 % sky; seed 41: a plain wall
        measure = analyse_pixels(shot(seed), source="preview").blur
        assert measure.score is not None and measure.score > S.blur_min_focus, measure


def test_relative_rule_flags_only_photos_far_below_the_site() -> None:
    site = [120.0, 130.0, 125.0, 118.0, 140.0, 135.0, 128.0, 122.0, 131.0, 60.0, 100.0, None]
    flags = relative_blur_flags(site, S)
    assert flags == [False] * 9 + [True, False, False]


def test_relative_rule_needs_enough_photos_to_know_the_site() -> None:
    assert relative_blur_flags([120.0, 130.0, 20.0], S) == [False, False, False]


def test_relative_rule_tolerates_a_site_whose_photos_vary_a_lot() -> None:
    """Spread in log space makes the MAD margin wider than the plain ratio."""
    site = [50.0, 400.0, 80.0, 300.0, 60.0, 250.0, 100.0, 200.0, 150.0, 70.0]
    assert not any(relative_blur_flags(site, S))


def test_the_message_names_the_score_the_site_and_the_minimum() -> None:
    measure = BlurMeasure(score=12.34, textured_cells=50, cells=144)
    outcome = blur_outcome(measure, S, site_median=85.0)
    assert not outcome.ok
    assert outcome.message == "Blurred: focus 12.3 (site median 85.0, absolute minimum 80)"
    assert (outcome.value, outcome.threshold) == (12.3, 80.0)


def test_a_photo_above_the_minimum_fails_when_the_site_rule_flags_it() -> None:
    measure = BlurMeasure(score=95.0, textured_cells=50, cells=144)
    assert blur_outcome(measure, S).ok
    assert not blur_outcome(measure, S, site_median=300.0, relative_flag=True).ok


def _reference_focus(gray: np.ndarray, s: CheckSettings) -> tuple[int, list[float]]:
    """The method of blur.py written plainly in float64: cells copied out, np.percentile.

    blur.py computes the same sums on views in integers; the two must agree to round-off.
    """
    g = gray.astype(np.float64)
    grid, h, w = s.blur_grid, g.shape[0], g.shape[1]
    ch, cw = (h - 2) // grid, (w - 2) // grid

    def cells(a: np.ndarray) -> np.ndarray:
        return np.array(
            [
                a[r * ch : (r + 1) * ch, c * cw : (c + 1) * cw].ravel()
                for r in range(grid)
                for c in range(grid)
            ]
        )

    textured = cells(g[1:-1, 1:-1]).std(axis=1) >= s.blur_texture_min_std
    keep = max(3, int(np.ceil(textured.sum() * s.blur_strongest_fraction)))
    scores = []
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        centre = g[1 : h - 1, 1 : w - 1]
        ahead = g[1 + dy : h - 1 + dy, 1 + dx : w - 1 + dx]
        behind = g[1 - dy : h - 1 - dy, 1 - dx : w - 1 - dx]
        e1_all = np.square(cells(ahead - centre)).mean(axis=1)
        e2_all = np.square(cells(ahead + behind - 2 * centre)).mean(axis=1)
        e1, e2 = e1_all[textured], e2_all[textured]
        strongest = np.argsort(e1)[::-1][:keep]
        n1, n2 = np.percentile(e1_all, 5.0), np.percentile(e2_all, 5.0)
        if n1 > 0.9 * e1[strongest].mean():
            n1 = n2 = 0.0
        signal1 = e1[strongest].sum() - n1 * keep
        scores.append(100 * max(0.0, e2[strongest].sum() - n2 * keep) / signal1)
    return int(textured.sum()), scores


@pytest.mark.parametrize("defects", [Defects(), Defects(blur_sigma=1.2), Defects(motion_px=7)])
@pytest.mark.parametrize("size", [(1000, 750), (750, 1000), (997, 613)])
def test_the_focus_measure_is_the_plain_formula_in_every_direction(
    tower: np.ndarray, defects: Defects, size: tuple[int, int]
) -> None:
    """Views, integer sums and one subtraction per difference change no score (portrait too)."""
    photo = Image.fromarray(photograph(tower, defects, 31)).resize(size)
    gray = np.asarray(photo.convert("L"))
    measure = focus_measure(gray, S)
    textured, scores = _reference_focus(gray, S)
    assert measure.textured_cells == textured
    assert measure.direction_scores == pytest.approx([round(s, 2) for s in scores], abs=0.011)
    assert measure.score == pytest.approx(min(scores), rel=1e-9)
