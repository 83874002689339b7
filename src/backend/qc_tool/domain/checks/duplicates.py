"""Duplicates across a site: byte-identical files, near-identical pictures, hovering shots."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from .geo import haversine_m
from .result import CheckOutcome
from .settings import CheckSettings

_ROWS = 256  # hash comparisons are done in blocks of rows x n to bound memory


@dataclass(frozen=True, slots=True)
class DuplicateCandidate:
    """What the duplicate checks need to know about one photo (None: unknown)."""

    name: str
    digest: str | None = None  # sha256, or "size:crc32": equal digests mean equal bytes
    phash: int | None = None
    lat: float | None = None
    lon: float | None = None
    taken: datetime | str | None = None  # ISO 8601 or EXIF "YYYY:MM:DD HH:MM:SS"
    alt: float | None = None  # metres; a climb up a tower is movement, not hovering


@dataclass(frozen=True, slots=True)
class NearPair:
    a: str
    b: str
    distance: int  # pHash bits that differ


@dataclass(frozen=True, slots=True)
class HoverPair:
    a: str
    b: str
    metres: float
    seconds: float


@dataclass(frozen=True, slots=True)
class DuplicateReport:
    """Groups of identical files, and pairs of near-duplicates and hovering shots."""

    identical: tuple[tuple[str, ...], ...]
    near: tuple[NearPair, ...]
    hovering: tuple[HoverPair, ...]

    def outcomes(self) -> dict[str, list[CheckOutcome]]:
        """The failed outcomes per photo name (photos without a problem are absent)."""
        out: dict[str, list[CheckOutcome]] = defaultdict(list)
        for group in self.identical:
            for name in group:
                others = [n for n in group if n != name]
                message = f"Byte-identical copy of {_some(others)}"
                out[name].append(CheckOutcome("duplicate", False, message, len(others)))
        near: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for pair in self.near:
            near[pair.a].append((pair.distance, pair.b))
            near[pair.b].append((pair.distance, pair.a))
        for me, matches in near.items():
            # One outcome per photo however many it resembles: a hovering burst can match dozens.
            matches.sort()
            closest = [f"{other} ({bits} of 64 hash bits differ)" for bits, other in matches]
            message = f"Near-duplicate of {_some(closest)}"
            out[me].append(CheckOutcome("near_duplicate", False, message, matches[0][0]))
        for hover in self.hovering:
            for me, other in ((hover.a, hover.b), (hover.b, hover.a)):
                message = (
                    f"Taken while hovering: {hover.metres:.1f} m and {hover.seconds:.0f} s "
                    f"from {other}"
                )
                out[me].append(CheckOutcome("hovering", False, message, hover.metres))
        return dict(out)


def _some(names: list[str], shown: int = 3) -> str:
    """The first few names, and how many more."""
    head = ", ".join(names[:shown])
    return head if len(names) <= shown else f"{head} and {len(names) - shown} more"


def _timestamp(taken: datetime | str | None) -> float | None:
    """Seconds since the epoch; naive times (cameras record no zone) are all read as UTC."""
    if taken is None:
        return None
    if isinstance(taken, str):
        text = taken.strip()
        if len(text) >= 10 and text[4] == ":" and text[7] == ":":  # EXIF "2024:05:01 ..."
            text = f"{text[:4]}-{text[5:7]}-{text[8:]}"
        try:
            taken = datetime.fromisoformat(text)
        except ValueError:
            return None
    if taken.tzinfo is None:
        taken = taken.replace(tzinfo=UTC)
    return taken.timestamp()


def _identical(items: Sequence[DuplicateCandidate]) -> list[tuple[str, ...]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for item in items:
        if item.digest:
            groups[item.digest].append(item.name)
    return [tuple(g) for g in groups.values() if len(g) > 1]


def _near(items: Sequence[DuplicateCandidate], max_distance: int) -> list[NearPair]:
    hashed = [i for i in items if i.phash is not None]
    if len(hashed) < 2:
        return []
    hashes = np.array([i.phash for i in hashed], dtype=np.uint64)
    pairs: list[NearPair] = []
    for start in range(0, len(hashed), _ROWS):
        block = np.bitwise_count(hashes[start : start + _ROWS, None] ^ hashes[None, :])
        rows, cols = np.nonzero(block <= max_distance)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            i = start + r
            if c > i:
                pairs.append(NearPair(hashed[i].name, hashed[c].name, int(block[r, c])))
    return pairs


def _hovering(items: Sequence[DuplicateCandidate], settings: CheckSettings) -> list[HoverPair]:
    located = []
    for item in items:
        t = _timestamp(item.taken)
        if t is not None and item.lat is not None and item.lon is not None:
            located.append((t, item.lat, item.lon, item.alt, item.name))
    located.sort(key=lambda x: (x[0], x[4]))
    pairs: list[HoverPair] = []
    for i, (t1, lat1, lon1, alt1, name1) in enumerate(located):
        for t2, lat2, lon2, alt2, name2 in located[i + 1 :]:
            if t2 - t1 > settings.hover_max_seconds:
                break  # sorted by time: nothing later can be close enough
            metres = haversine_m(lat1, lon1, lat2, lon2)
            if alt1 is not None and alt2 is not None:  # straight-line distance when both known
                metres = math.hypot(metres, alt2 - alt1)
            if metres <= settings.hover_max_distance_m:
                pairs.append(HoverPair(name1, name2, round(metres, 2), round(t2 - t1, 1)))
    return pairs


def find_duplicates(
    items: Sequence[DuplicateCandidate], settings: CheckSettings | None = None
) -> DuplicateReport:
    """Find every duplicate relation in a site; pairs already byte-identical are reported once."""
    s = settings or CheckSettings()
    identical = _identical(items)
    same_file = {frozenset((a, b)) for g in identical for a in g for b in g if a != b}
    near = [
        p
        for p in _near(items, s.near_duplicate_max_distance)
        if frozenset((p.a, p.b)) not in same_file
    ]
    hovering = [p for p in _hovering(items, s) if frozenset((p.a, p.b)) not in same_file]
    return DuplicateReport(tuple(identical), tuple(near), tuple(hovering))
