"""The site-level pass: combine each photo's measures with what the whole site says."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from .blur import (
    blur_outcome,
    judged_focus_count,
    relative_blur_applies,
    relative_blur_flags,
    site_focus_median,
)
from .duplicates import DuplicateCandidate, find_duplicates
from .exposure import exposure_outcome
from .geo import Point, position_outcome, site_centre
from .integrity import IntegrityMeasure, integrity_outcome
from .pixels import PixelMeasures
from .result import CheckOutcome, ImageChecks, Source
from .rules import CaptureFacts, CaptureProfile, check_rules
from .settings import CheckSettings


@dataclass(frozen=True, slots=True)
class ImageEvidence:
    """Everything measured about one photo before the site is judged (None: not measured)."""

    name: str
    source: Source
    seconds: float = 0.0  # time spent measuring, reported as is
    pixels: PixelMeasures | None = None
    decode_error: str | None = None  # why analyse_pixels could not decode the image
    integrity: IntegrityMeasure | None = None
    digest: str | None = None
    lat: float | None = None
    lon: float | None = None
    taken: datetime | str | None = None
    capture: CaptureFacts | None = None
    alt: float | None = None
    not_checked: str | None = None  # the pixels could not be judged: why (``pixels`` is None)

    @property
    def point(self) -> Point | None:
        return None if self.lat is None or self.lon is None else (self.lat, self.lon)


def judge_site(
    evidence: Sequence[ImageEvidence],
    settings: CheckSettings | None = None,
    profile: CaptureProfile | None = None,
) -> list[ImageChecks]:
    """Every photo's checks, in input order, with the site-relative rules applied."""
    s = settings or CheckSettings()
    relative, medians = _relative_blur(evidence, s)
    centre = site_centre([e.point for e in evidence])
    duplicates = find_duplicates(
        [
            DuplicateCandidate(
                e.name,
                e.digest,
                e.pixels.phash if e.pixels else None,
                e.lat,
                e.lon,
                e.taken,
                e.alt,
                e.pixels.phash_source if e.pixels else "",
            )
            for e in evidence
        ],
        s,
    ).outcomes()
    results = []
    for e, flagged, median in zip(evidence, relative, medians, strict=True):
        outcomes: list[CheckOutcome] = []
        if e.integrity is not None:
            outcomes.append(integrity_outcome(e.integrity))
        if e.decode_error is not None:
            outcomes.append(CheckOutcome("decode", False, e.decode_error))
        if e.pixels is not None:
            outcomes.append(
                blur_outcome(e.pixels.blur, s, site_median=median, relative_flag=flagged)
            )
            outcomes.append(exposure_outcome(e.pixels.exposure, s))
        if centre is not None:
            outcomes.append(position_outcome(e.point, centre, s.outside_site_m))
        if profile is not None:
            outcomes.extend(check_rules(profile, e.capture or CaptureFacts()))
        outcomes.extend(duplicates.get(e.name, []))
        results.append(ImageChecks.of(e.name, tuple(outcomes), e.source, e.seconds, e.not_checked))
    return results


def _relative_blur(
    evidence: Sequence[ImageEvidence], s: CheckSettings
) -> tuple[list[bool], list[float | None]]:
    """The site-relative blur flag and site median of each photo, among the photos whose focus
    was measured on the same kind of pixels: a preview's score (the camera's downscaled
    picture) and a band's (the main image's own rows) differ by source, not only by focus.
    When a kind has too few photos for the rule, all are judged together, as one site."""
    scores = [e.pixels.blur.score if e.pixels else None for e in evidence]
    groups: dict[str, list[int]] = {}
    for i, e in enumerate(evidence):
        if e.pixels is not None:
            groups.setdefault(e.pixels.source, []).append(i)
    if len(groups) < 2 or any(
        judged_focus_count([scores[i] for i in g]) < s.blur_site_min_images for g in groups.values()
    ):
        groups = {"": list(range(len(evidence)))}
    flags: list[bool] = [False] * len(evidence)
    medians: list[float | None] = [None] * len(evidence)
    for indices in groups.values():
        mine = [scores[i] for i in indices]
        median = site_focus_median(mine)
        for i, flagged in zip(indices, relative_blur_flags(mine, s), strict=True):
            flags[i], medians[i] = flagged, median
    return flags, medians


def rules_not_applied(
    evidence: Sequence[ImageEvidence], settings: CheckSettings | None = None
) -> list[str]:
    """The site-wide rules ``judge_site`` could not apply to these photos, as plain sentences.

    A rule that cannot apply passes every photo silently, so the verdict names it once (its
    ``notes``): the site-relative blur rule needs ``blur_site_min_images`` photos with a focus
    score; the outside-the-site rule needs a site centre, so at least one located photo.
    """
    if not evidence:
        return []
    s = settings or CheckSettings()
    notes = []
    scores = [e.pixels.blur.score if e.pixels else None for e in evidence]
    if not relative_blur_applies(scores, s):
        judged = judged_focus_count(scores)
        notes.append(
            "The site-relative blur rule was not applied: it needs at least "
            f"{s.blur_site_min_images} photos with a focus score and {judged} had one; each "
            f"photo was held to the absolute minimum focus ({s.blur_min_focus:g}) only."
        )
    if site_centre([e.point for e in evidence]) is None:
        notes.append(
            "The outside-the-site rule was not applied: no checked photo has a GPS position, "
            "so the site has no centre to measure distances from."
        )
    return notes
