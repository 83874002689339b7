"""judge_site: per-photo measures and site-wide rules combined into each photo's verdict."""

from __future__ import annotations

from qc_tool.domain.checks.blur import BlurMeasure
from qc_tool.domain.checks.exposure import ExposureMeasure
from qc_tool.domain.checks.integrity import IntegrityMeasure
from qc_tool.domain.checks.pixels import PixelMeasures
from qc_tool.domain.checks.rules import CaptureFacts, CaptureProfile
from qc_tool.domain.checks.settings import CheckSettings
from qc_tool.domain.checks.site import ImageEvidence, judge_site, rules_not_applied

S = CheckSettings()
CENTRE = (45.0, 5.0)
NORMAL = ExposureMeasure(
    mean=120.0, dark_fraction=0.0, bright_fraction=0.0, shadow_level=20, highlight_level=230
)


def _pixels(focus: float | None, phash: int) -> PixelMeasures:
    return PixelMeasures(
        "preview", 1920, 1440, 1000, 750, BlurMeasure(focus, 60, 144), NORMAL, phash
    )


def _photo(i: int, focus: float | None = 120.0, **changes: object) -> ImageEvidence:
    base: dict[str, object] = {
        "name": f"{i:03d}.jpg",
        "source": "preview",
        "seconds": 0.05,
        "pixels": _pixels(focus, (0x9E3779B97F4A7C15 * (i + 1)) % 2**64),
        "digest": f"digest-{i}",
        "lat": CENTRE[0] + i * 1e-5,
        "lon": CENTRE[1],
        "taken": f"2024-05-01T10:{i:02d}:00",
    }
    base.update(changes)
    return ImageEvidence(**base)  # type: ignore[arg-type]


def test_a_clean_site_is_all_valid_and_keeps_the_input_order() -> None:
    photos = [_photo(i, 110.0 + i) for i in range(10)]
    results = judge_site(photos, S)
    assert [r.name for r in results] == [p.name for p in photos]
    assert all(r.valid for r in results), [r.failures for r in results]
    assert [o.name for o in results[0].outcomes] == ["blur", "exposure", "position"]


def test_each_problem_lands_on_the_right_photo() -> None:
    photos = [_photo(i, 200.0 + i) for i in range(10)]  # a site rich in fine detail
    photos[1] = _photo(1, 110.0)  # above the absolute minimum, far below the rest of the site
    photos[2] = _photo(
        2,
        None,
        pixels=None,
        decode_error="Image data is truncated",
        integrity=IntegrityMeasure(0, 0, False, "truncated", "cut at 50%"),
    )
    photos[3] = _photo(3, 203.0, lat=46.0)  # 111 km away
    photos[4] = _photo(4, 204.0, digest="digest-5")  # a copy of photo 5
    results = {r.name: r for r in judge_site(photos, S)}
    failed = {n: [o.name for o in r.failures] for n, r in results.items() if not r.valid}
    assert failed == {
        "001.jpg": ["blur"],
        "002.jpg": ["integrity", "decode"],
        "003.jpg": ["position"],
        "004.jpg": ["duplicate"],
        "005.jpg": ["duplicate"],
    }
    assert results["001.jpg"].failures[0].message.startswith("Blurred: focus 110.0 (site median 20")


def test_a_capture_profile_adds_its_rules() -> None:
    photos = [_photo(0, capture=CaptureFacts(iso=1600)), _photo(1, capture=None)]
    results = judge_site(photos, S, CaptureProfile(max_iso=400))
    assert [o.ok for o in results[0].outcomes if o.name == "iso"] == [False]
    assert [o.judged for o in results[1].outcomes if o.name == "iso"] == [False]


def test_photos_without_position_are_not_judged_on_it() -> None:
    results = judge_site([_photo(0, lat=None, lon=None)], S)
    assert results[0].valid
    assert all(o.name != "position" for o in results[0].outcomes)


def test_a_site_of_enough_located_photos_applies_every_rule() -> None:
    assert rules_not_applied([_photo(i) for i in range(8)], S) == []


def test_too_few_focus_scores_for_the_relative_blur_rule_is_said_once() -> None:
    photos = [_photo(i) for i in range(7)] + [_photo(7, None), _photo(8, pixels=None)]
    expected = (
        "The site-relative blur rule was not applied: it needs at least 8 photos with a focus "
        "score and 7 had one; each photo was held to the absolute minimum focus (80) only."
    )
    assert rules_not_applied(photos, S) == [expected]
    # What the note says is what judge_site did: even a photo far below the others passes.
    soft = [_photo(i, 400.0) for i in range(6)] + [_photo(6, 100.0)]
    assert all(c.valid for c in judge_site(soft, S))
    assert len(rules_not_applied(soft, S)) == 1


def test_no_located_photo_means_no_site_centre_and_the_position_rule_is_named() -> None:
    photos = [_photo(i, lat=None, lon=None) for i in range(9)]
    expected = (
        "The outside-the-site rule was not applied: no checked photo has a GPS position, so "
        "the site has no centre to measure distances from."
    )
    assert rules_not_applied(photos, S) == [expected]
    assert all("position" not in {o.name for o in c.outcomes} for c in judge_site(photos, S))


def test_no_photos_no_notes() -> None:
    assert rules_not_applied([], S) == []
