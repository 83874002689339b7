"""Duplicates across a site: byte-identical files, near-identical pictures, hovering shots.

Time and memory grow about linearly with the photos, whatever they hold:

* identical files: grouped by digest (one dictionary);
* near-duplicates: only hashes of the same source are compared (a thumbnail's with a
  thumbnail's, a preview's with a preview's: ``phash_source``); photos with the same pHash are
  one class at once; a class is compared only
  with the classes that share one band of its hash exactly. With at most d differing bits
  allowed, the 64 bits are cut into d + 1 bands, and any two hashes within d agree on at least
  one band (pigeonhole). Each band value remembers its ``BUCKET_KEEP`` latest classes, so a new
  hash is compared at most (d + 1) x ``BUCKET_KEEP`` times however alike the site's photos are;
* hovering: a sweep in time order; each shot is compared with at most ``HOVER_WINDOW`` earlier
  shots taken within the time limit.

Related photos are joined into groups (union-find). Each photo gets at most one outcome per
kind, naming its closest partner and its group (size and first photo), never every partner.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise

from .geo import EARTH_RADIUS_M
from .result import CheckOutcome
from .settings import CheckSettings

FLAT = "flat band"  # band.FLAT: a hash of featureless rows, compared with no other
BUCKET_KEEP = 64  # classes remembered per band value: bounds the comparisons per new hash
HOVER_WINDOW = 16  # earlier shots within the time limit that each shot is compared with
NAME_SHOWN = 120  # characters of a photo name a message shows at most
HASH_BITS = 64


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
    # What the pHash was computed from ("preview", "thumbnail", "band", "full"): hashes of
    # different pictures of a photo (a 160x120 thumbnail, a 1 MP preview) are not compared.
    phash_source: str = ""


Group = tuple[str, ...]  # names in input order; the first one stands for the group


@dataclass(frozen=True, slots=True)
class NearMatch:
    """A photo's closest look-alike that is not a copy of the same file."""

    partner: str
    distance: int  # pHash bits that differ

    def outcome(self, group: Group) -> CheckOutcome:
        why = f"Near-duplicate of {_shown(self.partner)} ({self.distance} of {HASH_BITS} hash bits differ)"
        return _failed("near_duplicate", why, group, "look-alike photos", self.distance)


@dataclass(frozen=True, slots=True)
class HoverMatch:
    """The nearest shot (not a copy of the same file) taken within the hovering limits."""

    partner: str
    metres: float
    seconds: float

    def outcome(self, group: Group) -> CheckOutcome:
        why = f"Taken while hovering: {self.metres:.1f} m and {self.seconds:.0f} s from {_shown(self.partner)}"
        return _failed("hovering", why, group, "shots of one hover", self.metres)


@dataclass(frozen=True, slots=True)
class DuplicateReport:
    """Groups of identical files, of look-alike photos and of hovering shots, and per photo
    its closest look-alike and hovering partner (photos without one are absent)."""

    identical: tuple[Group, ...]
    near: tuple[Group, ...]
    hovering: tuple[Group, ...]
    near_match: Mapping[str, NearMatch]
    hover_match: Mapping[str, HoverMatch]

    def outcomes(self) -> dict[str, list[CheckOutcome]]:
        """The failed outcomes per photo name, at most one per kind (photos without a problem
        are absent)."""
        out: dict[str, list[CheckOutcome]] = {}
        for group in self.identical:
            for name in group:
                partner = group[1] if name == group[0] else group[0]
                why = f"Byte-identical copy of {_shown(partner)}"
                outcome = _failed("duplicate", why, group, "identical files", len(group) - 1)
                out.setdefault(name, []).append(outcome)
        matched: tuple[tuple[tuple[Group, ...], Mapping[str, NearMatch | HoverMatch]], ...] = (
            (self.near, self.near_match),
            (self.hovering, self.hover_match),
        )
        for groups, matches in matched:
            for group in groups:
                for name in group:
                    match = matches.get(name)
                    if match is not None:  # None: its only partners are copies of its own file
                        out.setdefault(name, []).append(match.outcome(group))
        return out


def _failed(kind: str, why: str, group: Group, members: str, value: float) -> CheckOutcome:
    """A failed outcome whose message says why, and how many ``members`` its group holds."""
    return CheckOutcome(kind, False, why + _group_note(group, members), value)


def _shown(name: str) -> str:
    """A name as a message shows it: very long ones are cut in the middle."""
    if len(name) <= NAME_SHOWN:
        return name
    half = (NAME_SHOWN - 3) // 2
    return f"{name[:half]}...{name[-half:]}"


def _group_note(group: Group, what: str) -> str:
    # Not "; ": the CSV joins a photo's failures with it.
    return f", one of {len(group)} {what} (first: {_shown(group[0])})" if len(group) > 2 else ""


class _UnionFind:
    """Disjoint sets over 0..n-1 (union by size, path halving)."""

    def __init__(self, n: int) -> None:
        self._parent = list(range(n))
        self._size = [1] * n

    def find(self, i: int) -> int:
        parent = self._parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        a, b = self.find(a), self.find(b)
        if a == b:
            return
        if self._size[a] < self._size[b]:
            a, b = b, a
        self._parent[b] = a
        self._size[a] += self._size[b]

    def members(self) -> list[list[int]]:
        """Every set, each in increasing order, ordered by its smallest."""
        sets: dict[int, list[int]] = {}
        for i in range(len(self._parent)):
            sets.setdefault(self.find(i), []).append(i)
        return list(sets.values())


def _same_file(a: DuplicateCandidate, b: DuplicateCandidate) -> bool:
    return a.digest is not None and a.digest != "" and a.digest == b.digest


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


def _identical(items: Sequence[DuplicateCandidate]) -> list[Group]:
    groups: dict[str, list[str]] = {}
    for item in items:
        if item.digest:
            groups.setdefault(item.digest, []).append(item.name)
    return [tuple(g) for g in groups.values() if len(g) > 1]


def _bands(max_distance: int) -> list[tuple[int, int]]:
    """(shift, mask) of each of the d + 1 bands the 64 bits are cut into, as even as can be."""
    count = min(HASH_BITS, max(1, max_distance + 1))
    edges = [HASH_BITS * k // count for k in range(count + 1)]
    return [(lo, (1 << (hi - lo)) - 1) for lo, hi in pairwise(edges)]


def _closer(best: dict[int, tuple[float, int]], me: int, value: float, other: int) -> None:
    known = best.get(me)
    if known is None or value < known[0]:
        best[me] = (value, other)


def _near(
    items: Sequence[DuplicateCandidate], max_distance: int
) -> tuple[list[Group], dict[str, NearMatch]]:
    """Groups of look-alike photos, and each photo's closest look-alike of another file,
    comparing only hashes of one source."""
    sources: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        if item.phash is not None and item.phash_source != FLAT:
            sources.setdefault(item.phash_source, []).append(i)
    groups: list[Group] = []
    matches: dict[str, NearMatch] = {}
    for indices in sources.values():
        found, matched = _near_one_source(items, indices, max_distance)
        groups += found
        matches.update(matched)
    order = {item.name: i for i, item in enumerate(items)}
    groups.sort(key=lambda g: order[g[0]])
    return groups, matches


def _near_one_source(
    items: Sequence[DuplicateCandidate], indices: Sequence[int], max_distance: int
) -> tuple[list[Group], dict[str, NearMatch]]:
    """``_near`` over the photos ``indices`` (whose hashes share one source)."""
    classes: dict[int, list[int]] = {}  # pHash -> indices of the photos that have it
    for i in indices:
        phash = items[i].phash
        if phash is not None:
            classes.setdefault(phash, []).append(i)
    hashes = list(classes)
    sets = _UnionFind(len(hashes))
    best: dict[int, tuple[float, int]] = {}  # class -> (bits, closest other class)
    bands = _bands(max_distance)
    buckets: list[dict[int, list[int]]] = [{} for _ in bands]  # lists: a deque costs 600 B
    for c, h in enumerate(hashes):
        for (shift, mask), bucket_of in zip(bands, buckets, strict=True):
            key = (h >> shift) & mask
            bucket = bucket_of.get(key)
            if bucket is None:
                bucket_of[key] = [c]
                continue
            for other in bucket:  # a pair sharing two bands is compared twice: harmless
                bits = (h ^ hashes[other]).bit_count()
                if bits <= max_distance:
                    sets.union(c, other)
                    _closer(best, c, bits, other)
                    _closer(best, other, bits, c)
            bucket.append(c)
            if len(bucket) > BUCKET_KEEP:
                del bucket[0]  # the oldest: look-alikes tend to be taken close together
    matches: dict[str, NearMatch] = {}
    for c, h in enumerate(hashes):
        members = classes[h]
        closest = best.get(c)
        for i, twin in _twins(items, members):
            if twin is not None:
                matches[items[i].name] = NearMatch(items[twin].name, 0)
            elif closest is not None:
                other = classes[hashes[closest[1]]][0]
                matches[items[i].name] = NearMatch(items[other].name, int(closest[0]))
    groups = []
    for found in sets.members():
        indices = sorted(i for c in found for i in classes[hashes[c]])
        if len(indices) > 1:
            groups.append(tuple(items[i].name for i in indices))
    return _flagged(groups, matches), matches


def _twins(items: Sequence[DuplicateCandidate], members: list[int]) -> list[tuple[int, int | None]]:
    """Each photo of one pHash with another photo of that hash that is not the same file."""
    first = members[0]
    other = next(
        (j for j in members if not _same_file(items[j], items[first]) and j != first), None
    )
    out: list[tuple[int, int | None]] = []
    for i in members:
        if i != first and not _same_file(items[i], items[first]):
            out.append((i, first))
        else:  # the first photo, or a copy of its file
            out.append((i, other if other != i else None))
    return out


def _flagged(groups: list[Group], matches: Mapping[str, object]) -> list[Group]:
    """The groups in which some photo has a partner that is not a copy of its own file."""
    return [g for g in groups if any(name in matches for name in g)]


def _hovering(
    items: Sequence[DuplicateCandidate], settings: CheckSettings
) -> tuple[list[Group], dict[str, HoverMatch]]:
    """Groups of shots taken while hovering, and each shot's nearest such neighbour."""
    located: list[_Shot] = []
    for i, item in enumerate(items):
        t = _timestamp(item.taken)
        if t is not None and item.lat is not None and item.lon is not None:
            located.append(_Shot.of(t, item.name, i, item.lat, item.lon, item.alt))
    located.sort()
    limit_m, limit_s = settings.hover_max_distance_m, settings.hover_max_seconds
    # Ground distance <= straight-line distance, so the haversine term alone rejects most.
    ground_limit = math.sin(min(math.pi / 2, limit_m / (2 * EARTH_RADIUS_M))) ** 2
    sets = _UnionFind(len(items))
    best: dict[int, tuple[float, int]] = {}  # photo -> (metres, nearest other photo)
    times: dict[int, float] = {}
    window: deque[_Shot] = deque(maxlen=HOVER_WINDOW)  # the latest shots, in time order
    for shot in located:
        times[shot.index] = shot.t
        while window and shot.t - window[0].t > limit_s:
            window.popleft()
        for earlier in window:
            hav = shot.hav(earlier)
            if hav > ground_limit:
                continue
            metres = shot.metres_to(earlier, hav)
            if metres <= limit_m:
                i, j = shot.index, earlier.index
                sets.union(i, j)
                if not _same_file(items[i], items[j]):
                    _closer(best, i, metres, j)
                    _closer(best, j, metres, i)
        window.append(shot)
    matches = {
        items[i].name: HoverMatch(items[j].name, round(m, 2), round(abs(times[i] - times[j]), 1))
        for i, (m, j) in best.items()
    }
    groups = [tuple(items[i].name for i in found) for found in sets.members() if len(found) > 1]
    return _flagged(groups, matches), matches


@dataclass(frozen=True, slots=True, order=True)
class _Shot:
    t: float  # seconds since the epoch; shots sort by time, then name
    name: str
    index: int
    alt: float | None
    phi: float  # latitude in radians
    lam: float  # longitude in radians
    cos_phi: float

    @classmethod
    def of(cls, t: float, name: str, i: int, lat: float, lon: float, alt: float | None) -> _Shot:
        phi = math.radians(lat)
        return cls(t, name, i, alt, phi, math.radians(lon), math.cos(phi))

    def hav(self, other: _Shot) -> float:
        """The haversine of the angle between two shots (geo.haversine_m's ``a``)."""
        dp, dl = other.phi - self.phi, other.lam - self.lam
        return math.sin(dp / 2) ** 2 + self.cos_phi * other.cos_phi * math.sin(dl / 2) ** 2

    def metres_to(self, other: _Shot, hav: float) -> float:
        """Straight-line distance when both altitudes are known, else over the ground
        (as geo.haversine_m, from ``hav``)."""
        metres = 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(hav)))
        if self.alt is not None and other.alt is not None:
            metres = math.hypot(metres, other.alt - self.alt)
        return metres


def find_duplicates(
    items: Sequence[DuplicateCandidate], settings: CheckSettings | None = None
) -> DuplicateReport:
    """Every duplicate relation in a site, as groups; byte-identical copies are reported once
    (a copy of the same file is nobody's near-duplicate or hovering partner)."""
    s = settings or CheckSettings()
    near, near_match = _near(items, s.near_duplicate_max_distance)
    hovering, hover_match = _hovering(items, s)
    return DuplicateReport(
        tuple(_identical(items)), tuple(near), tuple(hovering), near_match, hover_match
    )
