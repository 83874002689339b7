"""The site's verdict: pass, re-fly or incomplete, and exactly what must be flown again.

This is the one place a photo's ``valid`` and a site's decision are computed. The QC page,
the printable report, every export, the CLI and ZIP uploads render the ``Verdict`` this
module returns; none of them counts or judges again.

A photo is invalid when it could not be read, has no usable position, or fails any check.
It is valid when the checks judged it and nothing failed, and not judged (``None``) when
the checks did not run on it. The site needs a re-fly when any photo is invalid or the site
lacks what its profile asks for; it is incomplete when nothing calls for a re-fly but some
photos were not judged; it passes otherwise.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .checks.result import CheckOutcome, ImageChecks
from .coverage import Coverage, Orbit
from .models import ImageResult
from .structure import StructureReport

Decision = Literal["pass", "refly", "incomplete"]
# How far the photo checks got: "done", or why photos were not judged.
ChecksState = Literal["done", "not_run", "running", "failed", "cancelled"]


@dataclass(frozen=True, slots=True)
class Kind:
    """A reason a photo is invalid, with the one name every surface shows for it."""

    key: str
    label: str  # the badge and filter name
    plural: str  # for the headline: "11 blurred"


# Worst first: the order of badges, filters and the headline.
KINDS: tuple[Kind, ...] = (
    Kind("unreadable", "Unreadable", "unreadable"),
    Kind("integrity", "Damaged file", "damaged"),
    Kind("missing_gps", "No GPS", "without GPS"),
    Kind("blur", "Blurred", "blurred"),
    Kind("exposure", "Exposure", "badly exposed"),
    Kind("outside_site", "Outside site", "outside the site"),
    Kind("duplicate", "Duplicate", "duplicates"),
    Kind("near_duplicate", "Near duplicate", "near duplicates"),
    Kind("hovering", "Hovering", "taken while hovering"),
    Kind("pointing_away", "Pointing away", "aimed away from the tower"),
    Kind("capture_rules", "Capture rules", "against the capture rules"),
)
KIND_BY_KEY: dict[str, Kind] = {k.key: k for k in KINDS}
# What a re-fly entry may say besides photo kinds (from the site profile).
FOLDER_REASONS: tuple[Kind, ...] = (
    Kind("missing_folder", "Folder missing", "missing folders"),
    Kind("too_few_photos", "Too few photos", "folders with too few photos"),
    Kind("orbit_gap", "Orbit gap", "orbits with gaps"),
)
DECISION_LABELS: dict[str, str] = {
    "pass": "Passed",
    "refly": "Re-fly needed",
    "incomplete": "Incomplete",
}
_ORDER = {k.key: i for i, k in enumerate(KINDS)}

# Check outcome names -> the kind they count under. A name not listed is its own kind's key
# only if KINDS has it; anything else new falls under the capture rules until it gets a name.
_OUTCOME_KIND = {
    "integrity": "integrity",
    "decode": "integrity",
    "blur": "blur",
    "exposure": "exposure",
    "position": "outside_site",
    "duplicate": "duplicate",
    "near_duplicate": "near_duplicate",
    "hovering": "hovering",
    "iso": "capture_rules",
    "shutter": "capture_rules",
    "gimbal_pitch": "capture_rules",
    "camera_model": "capture_rules",
    "resolution": "capture_rules",
    "rtk_fix": "capture_rules",
    "rtk_std": "capture_rules",
}


# Every check outcome name, in a fixed order (the CSV's value columns do not change per site).
OUTCOME_NAMES: tuple[str, ...] = tuple(_OUTCOME_KIND)


def outcome_kind(outcome: CheckOutcome) -> str:
    """The kind a failed check outcome counts under."""
    return _OUTCOME_KIND.get(outcome.name, "capture_rules")


@dataclass(frozen=True, slots=True)
class PhotoVerdict:
    """One photo's judgement: valid (None: not judged) and its reasons, worst first."""

    path: str
    valid: bool | None
    kinds: tuple[str, ...]  # keys of KINDS
    messages: tuple[str, ...]  # what is wrong, written for the technician

    @property
    def folder(self) -> str:
        return self.path.split("/", 1)[0]


@dataclass(frozen=True, slots=True)
class Reason:
    kind: str
    label: str
    count: int  # photos

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "label": self.label, "count": self.count}


@dataclass(frozen=True, slots=True)
class ReflyItem:
    """A folder to fly again: its invalid photos and why, or what the profile found missing."""

    folder: str
    photos: tuple[str, ...]
    reasons: tuple[str, ...]  # kind keys, or "missing_folder" / "too_few_photos" / "orbit_gap"
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "folder": self.folder,
            "photos": list(self.photos),
            "reasons": list(self.reasons),
        }
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True, slots=True)
class Verdict:
    decision: Decision
    detail: str  # the headline after its label: "31 of 211 photos fail (...)"
    total: int
    valid: int
    invalid: int
    unchecked: int
    photos: tuple[PhotoVerdict, ...]  # in the scan's order
    reasons: tuple[Reason, ...]
    refly: tuple[ReflyItem, ...]
    checks: ChecksState
    notes: tuple[str, ...] = ()  # what was not judged, and why (no site profile, ...)

    @property
    def label(self) -> str:
        return DECISION_LABELS[self.decision]

    @property
    def headline(self) -> str:
        return f"{self.label}: {self.detail}"

    @property
    def invalid_paths(self) -> list[str]:
        return [p.path for p in self.photos if p.valid is False]

    def photo(self, path: str) -> PhotoVerdict | None:
        return next((p for p in self.photos if p.path == path), None)

    def by_path(self) -> dict[str, PhotoVerdict]:
        return {p.path: p for p in self.photos}

    def to_json(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "headline": self.headline,
            "label": self.label,
            "detail": self.detail,
            "photos": {
                "total": self.total,
                "valid": self.valid,
                "invalid": self.invalid,
                "unchecked": self.unchecked,
            },
            "invalid": self.invalid_paths,
            "reasons": [r.to_json() for r in self.reasons],
            "refly": [r.to_json() for r in self.refly],
            "checks": self.checks,
            "notes": list(self.notes),
            # Every kind's one name, worst first: the page's badges and filters read these.
            "kinds": [{"kind": k.key, "label": k.label} for k in KINDS],
            "folder_reasons": [{"kind": k.key, "label": k.label} for k in FOLDER_REASONS],
        }


def judge_photo(
    image: ImageResult, checks: ImageChecks | None, aimed_off_deg: float | None = None
) -> PhotoVerdict:
    """One photo from its scan result, (when they ran on it) its checks, and how far its
    camera looked away from the tower when coverage found it aimed elsewhere."""
    kinds: list[str] = []
    messages: list[str] = []
    if image.error is not None:
        kinds.append("unreadable")
        messages.append(image.error)
    elif not image.has_gps:
        kinds.append("missing_gps")
        messages.append(image.gps_note or "no GPS position")
    for outcome in checks.failures if checks is not None else ():
        kind = outcome_kind(outcome)
        if kind == "outside_site" and not image.has_gps:
            continue  # "no GPS" already says it
        if kind == "integrity" and "unreadable" in kinds:
            continue  # the scan's reason already says the file is damaged; once is enough
        if kind not in kinds:
            kinds.append(kind)
        messages.append(outcome.message)
    if aimed_off_deg is not None:
        kinds.append("pointing_away")
        messages.append(f"Camera aimed {aimed_off_deg:g}° away from the tower")
    kinds.sort(key=_ORDER.__getitem__)
    if checks is not None and checks.not_checked:
        messages.append(checks.not_checked)
    if kinds:
        valid: bool | None = False
    else:
        valid = True if checks is not None and not checks.not_checked else None
    return PhotoVerdict(image.path, valid, tuple(kinds), tuple(messages))


def judge_site(
    images: Sequence[ImageResult],
    checks: Mapping[str, ImageChecks] | Iterable[ImageChecks] | None,
    checks_state: ChecksState,
    structure: StructureReport | None = None,
    *,
    not_applied: Sequence[str] = (),
    coverage: Coverage | None = None,
) -> Verdict:
    """The site's verdict from the scan, the photo checks and the site profile's findings.

    ``checks`` holds the checks of the photos they judged (None or empty when they did not
    run); ``checks_state`` says whether they finished. ``structure`` is the site profile's
    report (None: no profile, so folder completeness was not checked). ``not_applied`` names
    the site-wide check rules that could not apply (``CheckReport.not_applied``): each
    becomes a note, so nobody takes a rule that passed every photo for one that ran.
    ``coverage`` (domain/coverage.py): each photo aimed away from the tower is invalid, and
    each orbit with a gap is a re-fly of its folder naming the height and the azimuths.
    """
    by_path = _by_path(checks)
    aimed = {a.path: a.off_by_deg for a in coverage.pointing_away} if coverage else {}
    photos = tuple(judge_photo(i, by_path.get(i.path), aimed.get(i.path)) for i in images)
    valid = sum(1 for p in photos if p.valid is True)
    invalid = sum(1 for p in photos if p.valid is False)
    unchecked = len(photos) - valid - invalid
    counts: Counter[str] = Counter(k for p in photos for k in p.kinds)
    reasons = tuple(Reason(k.key, k.label, counts[k.key]) for k in KINDS if counts[k.key])
    gapped = coverage.gapped if coverage is not None else ()
    refly = _refly(photos, structure, gapped)
    notes = _notes(checks_state, unchecked, structure) + tuple(not_applied)
    if invalid or not photos or (structure is not None and not structure.ok) or gapped:
        decision: Decision = "refly"
    elif unchecked or checks_state != "done":
        decision = "incomplete"
    else:
        decision = "pass"
    detail = _detail(
        decision, len(photos), invalid, unchecked, reasons, structure, checks_state, len(gapped)
    )
    return Verdict(
        decision,
        detail,
        len(photos),
        valid,
        invalid,
        unchecked,
        photos,
        reasons,
        refly,
        checks_state,
        notes,
    )


def _by_path(
    checks: Mapping[str, ImageChecks] | Iterable[ImageChecks] | None,
) -> Mapping[str, ImageChecks]:
    if checks is None:
        return {}
    if isinstance(checks, Mapping):
        return checks
    return {c.name: c for c in checks}


def _refly(
    photos: Sequence[PhotoVerdict],
    structure: StructureReport | None,
    gapped: Sequence[Orbit] = (),
) -> tuple[ReflyItem, ...]:
    by_folder: dict[str, list[PhotoVerdict]] = {}
    for p in photos:
        if p.valid is False:
            by_folder.setdefault(p.folder, []).append(p)
    items: dict[str, ReflyItem] = {}
    for folder, bad in by_folder.items():
        kinds = sorted({k for p in bad for k in p.kinds}, key=_ORDER.__getitem__)
        items[folder] = ReflyItem(folder, tuple(p.path for p in bad), tuple(kinds))
    if structure is not None:
        for folder, count, minimum in structure.too_few:
            note = f"{count} photos, at least {minimum} expected"
            old = items.get(folder)
            if old is None:
                items[folder] = ReflyItem(folder, (), ("too_few_photos",), note)
            else:
                items[folder] = ReflyItem(
                    folder, old.photos, (*old.reasons, "too_few_photos"), note
                )
        for pattern in structure.missing:
            items[pattern] = ReflyItem(pattern, (), ("missing_folder",), "no such folder")
    for orbit in gapped:
        note = _orbit_note(orbit)
        old = items.get(orbit.folder)
        if old is None:
            items[orbit.folder] = ReflyItem(orbit.folder, (), ("orbit_gap",), note)
        else:
            reasons = old.reasons if "orbit_gap" in old.reasons else (*old.reasons, "orbit_gap")
            joined = f"{old.note}; {note}" if old.note else note
            items[orbit.folder] = ReflyItem(orbit.folder, old.photos, reasons, joined)
    return tuple(items[k] for k in sorted(items, key=str.casefold))


def _orbit_note(orbit: Orbit) -> str:
    """The orbit and the azimuths (from the tower, clockwise from north) to fly again."""
    arcs = ", ".join(f"{g.from_deg:g}° to {g.to_deg:g}°" for g in orbit.gaps)
    return f"orbit at {orbit.height_text}: fly again {arcs}"


def _notes(
    state: ChecksState, unchecked: int, structure: StructureReport | None
) -> tuple[str, ...]:
    notes = []
    if state == "not_run":
        notes.append("The photo checks did not run: only positions were read.")
    elif state == "running":
        notes.append("The photo checks are still running.")
    elif state == "failed":
        notes.append("The photo checks stopped before the end.")
    elif state == "cancelled":
        notes.append("The photo checks were cancelled.")
    if unchecked and state == "done":
        notes.append(f"{unchecked} photos could not be judged.")
    if structure is None:
        notes.append(
            "Folder completeness was not checked: no site profile is set (QC_SITE_PROFILE "
            "for the web app, --site-profile for qc-tool; see docs/checks.md)."
        )
    return tuple(notes)


def _detail(
    decision: Decision,
    total: int,
    invalid: int,
    unchecked: int,
    reasons: Sequence[Reason],
    structure: StructureReport | None,
    state: ChecksState,
    gapped: int = 0,
) -> str:
    if decision == "refly":
        parts: list[str] = [] if total else ["no photos found"]
        if invalid:
            what = ", ".join(f"{r.count} {KIND_BY_KEY[r.kind].plural}" for r in reasons)
            parts.append(f"{invalid} of {total} photos fail ({what})")
        if structure is not None and not structure.ok:
            missing = len(structure.missing)
            few = len(structure.too_few)
            if missing:
                parts.append(f"{missing} expected folder{'s' if missing != 1 else ''} missing")
            if few:
                parts.append(f"{few} folder{'s' if few != 1 else ''} with too few photos")
        if gapped:
            parts.append(f"{gapped} orbit{'s' if gapped != 1 else ''} with gaps")
        return "; ".join(parts)
    if decision == "incomplete":
        why = {
            "not_run": "the photo checks did not run",
            "running": "the photo checks are still running",
            "failed": "the photo checks stopped before the end",
            "cancelled": "the photo checks were cancelled",
            "done": "some photos could not be judged",
        }[state]
        return f"{why}; {unchecked} of {total} photos not judged"
    return f"all {total} photos are good"
