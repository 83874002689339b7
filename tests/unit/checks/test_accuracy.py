"""The issue's acceptance bar: precision and recall >= 0.95 per defect, <= 2 % false alarms.

Run with ``pytest -s`` to see the confusion figures.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable

import pytest
from qc_tool.domain.checks.decode import ImageDecodeError
from qc_tool.domain.checks.duplicates import DuplicateCandidate, find_duplicates
from qc_tool.domain.checks.integrity import measure_integrity
from qc_tool.domain.checks.pixels import analyse_pixels
from qc_tool.domain.checks.result import ImageChecks
from qc_tool.domain.checks.settings import CheckSettings
from qc_tool.domain.checks.site import ImageEvidence, judge_site

from .corpus import Corpus, Score, build_corpus

SETTINGS = CheckSettings()
Run = tuple[Corpus, list[ImageEvidence], dict[str, ImageChecks]]


def _evidence(name: str, data: bytes) -> ImageEvidence:
    """What the validation service measures for one whole file."""
    started = time.perf_counter()
    integrity = measure_integrity(data)
    try:
        pixels, error = analyse_pixels(data, source="full", settings=SETTINGS), None
    except ImageDecodeError as exc:
        pixels, error = None, str(exc)
    return ImageEvidence(
        name=name,
        source="full",
        seconds=time.perf_counter() - started,
        pixels=pixels,
        decode_error=error,
        integrity=integrity,
        digest=Corpus.digest(data),
    )


@pytest.fixture(scope="module")
def run() -> Run:
    corpus = build_corpus()
    evidence = [_evidence(name, data) for name, data in corpus.photos.items()]
    checks = {c.name: c for c in judge_site(evidence, SETTINGS)}
    return corpus, evidence, checks


def _failed(checks: dict[str, ImageChecks], name: str, prefix: str = "") -> set[str]:
    return {
        n
        for n, c in checks.items()
        if any(o.name == name and o.message.startswith(prefix) for o in c.failures)
    }


def _pairs(groups: Iterable[Iterable[str]]) -> set[frozenset[str]]:
    return {frozenset(p) for g in groups for p in itertools.combinations(g, 2)}


def scores_of(
    corpus: Corpus, evidence: list[ImageEvidence], checks: dict[str, ImageChecks]
) -> list[Score]:
    """Precision and recall of every defect kind (``*``: counted over pairs of photos)."""
    names = set(corpus.photos)
    report = find_duplicates(
        [
            DuplicateCandidate(
                e.name,
                e.digest,
                e.pixels.phash if e.pixels else None,
                phash_source=e.pixels.phash_source if e.pixels else "",
            )
            for e in evidence
        ],
        SETTINGS,
    )
    decodable = {e.name for e in evidence if e.pixels is not None}
    all_pairs = {frozenset(p) for p in itertools.combinations(sorted(decodable), 2)}
    return [
        Score.of("blur", corpus.with_label("blur"), _failed(checks, "blur"), names),
        Score.of("dark", corpus.with_label("dark"), _failed(checks, "exposure", "Under"), names),
        Score.of("bright", corpus.with_label("bright"), _failed(checks, "exposure", "Over"), names),
        Score.of(
            "truncated",
            corpus.with_label("truncated"),
            _failed(checks, "integrity") | _failed(checks, "decode"),
            names,
        ),
        Score.of("identical*", corpus.identical_pairs, _pairs(report.identical), all_pairs),
        Score.of("near-dup*", corpus.near_pairs, _pairs(report.near), all_pairs),
    ]


def test_every_defect_is_found_with_precision_and_recall_of_at_least_95_percent(run: Run) -> None:
    corpus, evidence, checks = run
    names = set(corpus.photos)
    scores = scores_of(corpus, evidence, checks)
    print(f"\n{len(names)} photos; * counts pairs of photos")
    for score in scores:
        print(score.row())
    for score in scores:
        assert score.precision >= 0.95, score.row()
        assert score.recall >= 0.95, score.row()


def test_at_most_two_percent_of_clean_photos_get_any_flag(run: Run) -> None:
    corpus, _evidence_list, checks = run
    flagged = {n for n in corpus.clean if not checks[n].valid}
    print(f"\nclean photos flagged: {len(flagged)} of {len(corpus.clean)} {sorted(flagged)}")
    for name in sorted(flagged):
        print(name, [o.message for o in checks[name].failures])
    assert len(flagged) <= 0.02 * len(corpus.clean)


def test_scores_separate_with_a_margin_on_both_sides_of_the_thresholds(run: Run) -> None:
    """Print the measured ranges (docs/checks.md quotes them) and keep a margin from each limit."""
    corpus, evidence, _checks = run
    by_name = {e.name: e.pixels for e in evidence if e.pixels is not None}

    def focus(label: str) -> list[float]:
        return [
            s
            for n in corpus.with_label(label)
            if (p := by_name.get(n)) and (s := p.blur.score) is not None
        ]

    def levels(label: str) -> list[tuple[int, int]]:
        return [
            (by_name[n].exposure.shadow_level, by_name[n].exposure.highlight_level)
            for n in corpus.with_label(label)
            if n in by_name
        ]

    sharp, blurred = focus("sharp"), focus("blur")
    limit = SETTINGS.blur_min_focus
    print(f"\nfocus: sharp {min(sharp):.1f} to {max(sharp):.1f}", end="; ")
    print(f"blurred {min(blurred):.1f} to {max(blurred):.1f}; minimum {limit:g}")
    normal, dark = levels("sharp"), levels("dark")
    print(
        f"99th percentile: normal >= {min(h for _, h in normal)}, dark <= {max(h for _, h in dark)}"
    )
    ok_exposure = [by_name[n].exposure for n in sorted(corpus.with_label("sharp"))]
    print(
        f"normal: mean <= {max(e.mean for e in ok_exposure):.1f}, clipped <= "
        f"{max(e.bright_fraction for e in ok_exposure):.3f}, "
        f"1st percentile <= {max(e.shadow_level for e in ok_exposure)}"
    )
    bright = [by_name[n].exposure for n in sorted(corpus.with_label("bright"))]
    print("bright (mean, clipped, 1st percentile):")
    print("  ", [(round(e.mean), round(e.bright_fraction, 2), e.shadow_level) for e in bright])
    assert min(sharp) > SETTINGS.blur_min_focus * 1.05
    assert max(blurred) < SETTINGS.blur_min_focus / 1.05
    assert max(h for _, h in dark) < SETTINGS.under_highlight_max < min(h for _, h in normal)
