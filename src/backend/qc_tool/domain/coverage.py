"""Did the flight cover the tower? Orbits around it, their holes, and photos aimed elsewhere.

A tower inspection flies orbits around the tower at several heights and climbs each antenna
sector. From each photo's position, height and camera yaw this module finds:

- the tower: from the site profile, else the centre of a robust circle fit (RANSAC over
  three-point circles, then an algebraic (Kasa) least-squares refit on the inliers) of each
  orbit, weighted by its photos;
- the orbit folders: named by the profile, else detected (a height group of at least
  ``MIN_ORBIT_PHOTOS`` photos of which most lie on one circle all around its centre);
- per orbit folder, orbits = photos grouped by height (a step of more than
  ``ORBIT_HEIGHT_STEP_M`` starts a new one; a group spanning more than
  ``ORBIT_HEIGHT_SPAN_M`` is a climb, not an orbit), and per orbit the azimuths of its shots
  (from the tower to the drone, clockwise from true north), the largest gap between
  neighbours and every gap wider than ``max_orbit_gap_deg``;
- photos of orbit and sector folders whose camera yaw is more than ``max_aim_off_deg`` away
  from the bearing to the tower. Sector folders are named by the profile, else detected: a
  climb, i.e. photos within ``CLIMB_SPREAD`` of their distance to the tower of one spot,
  spanning at least ``CLIMB_MIN_SPAN_M`` of height.

Pure: no I/O. Bounded: at most ``RANSAC_TRIALS`` three-point fits per height group.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

EARTH_RADIUS_M = 6_371_008.8
MIN_ORBIT_PHOTOS = 8  # a detected orbit has at least this many photos
MIN_DECLARED_ORBIT_PHOTOS = 3  # a height group of a folder the profile names an orbit folder
ORBIT_HEIGHT_STEP_M = 3.0  # sorted heights further apart than this start a new orbit
ORBIT_HEIGHT_SPAN_M = 6.0  # an orbit's heights span at most this; more is a climb
RADIUS_TOLERANCE = 0.25  # a shot is on its orbit within 25 % of the orbit's median radius
MIN_INLIER_SHARE = 0.7  # a detected orbit: this share of its group lies on the fitted circle
MIN_RADIUS_M, MAX_RADIUS_M = 3.0, 500.0  # a detected orbit's plausible radius
MAX_DETECTED_GAP_DEG = 180.0  # a detected orbit goes more than half-way around
MIN_TOWER_DISTANCE_M = 2.0  # nearer than this, the bearing to the tower means nothing
RANSAC_TRIALS = 200
MIN_CLIMB_PHOTOS = 3
CLIMB_SPREAD = 0.3  # a climb's photos lie within 30 % of its distance to the tower of one spot
CLIMB_MIN_SPREAD_M = 3.0
CLIMB_MIN_SPAN_M = 5.0

Array = npt.NDArray[np.float64]


class CoverageProfileError(ValueError):
    """A coverage setting of the site profile that cannot be used."""


@dataclass(frozen=True, slots=True)
class CoverageProfile:
    """The site profile's coverage keys; None: estimated or detected."""

    tower: tuple[float, float] | None = None  # (lat, lon)
    orbits: tuple[str, ...] | None = None  # orbit folder names or shell patterns
    sectors: tuple[str, ...] | None = None  # sector climb folders (aim is checked there)
    max_orbit_gap_deg: float = 15.0
    max_aim_off_deg: float = 30.0

    KEYS = frozenset({"tower", "orbits", "sectors", "max_orbit_gap_deg", "max_aim_off_deg"})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CoverageProfile:
        """From the site profile's coverage keys (others are ignored here)."""
        tower = data.get("tower")
        orbits, sectors = data.get("orbits"), data.get("sectors")
        return cls(
            tower=None if tower is None else _tower(tower),
            orbits=None if orbits is None else _names("orbits", orbits),
            sectors=None if sectors is None else _names("sectors", sectors),
            max_orbit_gap_deg=_degrees("max_orbit_gap_deg", data.get("max_orbit_gap_deg", 15.0)),
            max_aim_off_deg=_degrees("max_aim_off_deg", data.get("max_aim_off_deg", 30.0)),
        )

    def is_orbit_folder(self, folder: str) -> bool:
        return self.orbits is not None and _matches(folder, self.orbits)

    def is_sector_folder(self, folder: str) -> bool:
        return self.sectors is not None and _matches(folder, self.sectors)


def _matches(folder: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(folder.casefold(), p.casefold()) for p in patterns)


def _tower(value: object) -> tuple[float, float]:
    if not isinstance(value, Mapping):
        raise CoverageProfileError('tower must be {"lat": .., "lon": ..}')
    lat, lon = value.get("lat"), value.get("lon")
    for name, v, limit in (("lat", lat, 90), ("lon", lon, 180)):
        if isinstance(v, bool) or not isinstance(v, int | float) or not -limit <= v <= limit:
            raise CoverageProfileError(f"tower {name} must be a number within ±{limit}, not {v!r}")
    assert isinstance(lat, int | float) and isinstance(lon, int | float)
    return float(lat), float(lon)


def _names(key: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise CoverageProfileError(f"{key} must be a list of folder names, not {value!r}")
    return tuple(v.strip() for v in value)


def _degrees(key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 360:
        raise CoverageProfileError(f"{key} must be a number of degrees in (0, 360), not {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class Shot:
    """One photo as coverage sees it (None: not recorded)."""

    path: str
    folder: str
    lat: float | None
    lon: float | None
    height_m: float | None = None  # above take-off (DJI XMP)
    alt: float | None = None  # GPS altitude
    yaw: float | None = None  # camera yaw, degrees clockwise from true north


HeightFrom = Literal["take-off", "gps"] | None


@dataclass(frozen=True, slots=True)
class Gap:
    from_deg: float
    to_deg: float

    @property
    def width(self) -> float:
        return (self.to_deg - self.from_deg) % 360.0

    def to_json(self) -> dict[str, float]:
        return {"from_deg": self.from_deg, "to_deg": self.to_deg}


@dataclass(frozen=True, slots=True)
class Orbit:
    folder: str
    altitude_m: float | None  # median height above take-off, else GPS altitude
    photos: int
    largest_gap_deg: float
    gaps: tuple[Gap, ...]  # wider than the profile's max_orbit_gap_deg, clockwise
    radius_m: float  # median distance from the tower (for the maps)
    # What altitude_m measures: height above take-off (the DJI XMP the checks read), the GPS
    # altitude (a scan without the checks), or None with no height.
    altitude_from: HeightFrom = None

    @property
    def height_text(self) -> str:
        """The orbit's height as every surface shows it, saying which height it is."""
        if self.altitude_m is None:
            return "unknown height"
        which = {"take-off": " above take-off", "gps": " (GPS altitude)"}
        return f"{self.altitude_m:.0f} m{which.get(self.altitude_from or '', '')}"

    def to_json(self) -> dict[str, Any]:
        return {
            "folder": self.folder,
            "altitude_m": self.altitude_m,
            "photos": self.photos,
            "largest_gap_deg": self.largest_gap_deg,
            "gaps": [g.to_json() for g in self.gaps],
        }


@dataclass(frozen=True, slots=True)
class Aim:
    path: str
    off_by_deg: float

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "off_by_deg": self.off_by_deg}


TowerSource = Literal["profile", "estimated"]


@dataclass(frozen=True, slots=True)
class Coverage:
    tower: tuple[float, float] | None = None
    source: TowerSource | None = None
    orbits: tuple[Orbit, ...] = ()
    pointing_away: tuple[Aim, ...] = ()

    @property
    def gapped(self) -> tuple[Orbit, ...]:
        return tuple(o for o in self.orbits if o.gaps)

    def to_json(self) -> dict[str, Any]:
        tower = None
        if self.tower is not None:
            tower = {"lat": self.tower[0], "lon": self.tower[1], "source": self.source}
        return {
            "tower": tower,
            "orbits": [o.to_json() for o in self.orbits],
            "pointing_away": [a.to_json() for a in self.pointing_away],
        }

    def rings_json(self) -> list[dict[str, Any]]:
        """Each orbit's ring for the maps: its folder, height and radius around the tower."""
        return [
            {"folder": o.folder, "altitude_m": o.altitude_m, "radius_m": o.radius_m}
            for o in self.orbits
        ]


@dataclass(frozen=True, slots=True)
class CircleFit:
    x: float
    y: float
    r: float
    inliers: npt.NDArray[np.bool_]


def fit_circle(points: Array, seed: int = 0) -> CircleFit | None:
    """A circle through most of ``points`` (N x 2, metres), robust to outliers; None if none.

    RANSAC: up to ``RANSAC_TRIALS`` circles through three points (all triples when there are
    fewer), computed and scored at once with numpy, each scored by the points within
    max(1 m, 5 % of its radius); circles larger than the points' extent are not tried. The
    best is refitted by least squares (Kasa) on its inliers, twice. Deterministic per seed.
    """
    n = len(points)
    if n < 3:
        return None
    mean = points.mean(axis=0)
    local = points - mean  # better conditioned
    if math.comb(n, 3) <= RANSAC_TRIALS:
        triples = np.array(_all_triples(n))
    else:
        drawn = np.random.default_rng(seed).integers(0, n, size=(RANSAC_TRIALS, 3))
        distinct = (
            (drawn[:, 0] != drawn[:, 1])
            & (drawn[:, 1] != drawn[:, 2])
            & (drawn[:, 0] != drawn[:, 2])
        )
        triples = drawn[distinct]
    circles = _circumcircles(local[triples])
    # A circle far bigger than the points' extent is a straight line in disguise: its band
    # of tolerance would take in everything.
    extent = float(np.hypot(*(local.max(axis=0) - local.min(axis=0))))
    circles = circles[circles[:, 2] <= extent]
    if len(circles) == 0:
        return None
    distance = np.hypot(
        local[None, :, 0] - circles[:, None, 0], local[None, :, 1] - circles[:, None, 1]
    )
    tolerance = np.maximum(1.0, 0.05 * circles[:, 2])
    counts = np.count_nonzero(np.abs(distance - circles[:, 2:3]) <= tolerance[:, None], axis=1)
    x, y, r = (float(v) for v in circles[int(np.argmax(counts))])
    mask = _inliers(local, x, y, r)
    for _ in range(2):
        refit = _kasa(local[mask]) if np.count_nonzero(mask) >= 3 else None
        if refit is None:
            break
        x, y, r = refit
        mask = _inliers(local, x, y, r)
    if np.count_nonzero(mask) < 3:
        return None
    return CircleFit(float(x + mean[0]), float(y + mean[1]), float(r), mask)


def _circumcircles(triangles: Array) -> Array:
    """(x, y, r) of the circle through each triangle's corners (T x 3 x 2); collinear dropped."""
    a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]
    d = 2 * (
        a[:, 0] * (b[:, 1] - c[:, 1])
        + b[:, 0] * (c[:, 1] - a[:, 1])
        + c[:, 0] * (a[:, 1] - b[:, 1])
    )
    ok = np.abs(d) > 1e-9
    a, b, c, d = a[ok], b[ok], c[ok], d[ok]
    a2, b2, c2 = (a**2).sum(axis=1), (b**2).sum(axis=1), (c**2).sum(axis=1)
    ux = (a2 * (b[:, 1] - c[:, 1]) + b2 * (c[:, 1] - a[:, 1]) + c2 * (a[:, 1] - b[:, 1])) / d
    uy = (a2 * (c[:, 0] - b[:, 0]) + b2 * (a[:, 0] - c[:, 0]) + c2 * (b[:, 0] - a[:, 0])) / d
    r = np.hypot(a[:, 0] - ux, a[:, 1] - uy)
    return np.column_stack([ux, uy, r])


def _all_triples(n: int) -> list[tuple[int, int, int]]:
    return [(a, b, c) for a in range(n) for b in range(a + 1, n) for c in range(b + 1, n)]


def _inliers(points: Array, x: float, y: float, r: float) -> npt.NDArray[np.bool_]:
    distance = np.hypot(points[:, 0] - x, points[:, 1] - y)
    result: npt.NDArray[np.bool_] = np.abs(distance - r) <= max(1.0, 0.05 * r)
    return result


def _kasa(points: Array) -> tuple[float, float, float] | None:
    """Least-squares circle: x² + y² = a x + b y + c; None for (nearly) collinear points."""
    a_matrix = np.column_stack([points[:, 0], points[:, 1], np.ones(len(points))])
    rhs = points[:, 0] ** 2 + points[:, 1] ** 2
    solution, _, rank, _ = np.linalg.lstsq(a_matrix, rhs, rcond=None)
    if rank < 3:
        return None
    a, b, c = (float(v) for v in solution)
    x, y = a / 2, b / 2
    r2 = c + x * x + y * y
    if not math.isfinite(r2) or r2 <= 0 or r2 > (100 * MAX_RADIUS_M) ** 2:
        return None
    return x, y, math.sqrt(r2)


class _Plane:
    """Local east/north metres around an origin (equirectangular: exact enough over a site)."""

    def __init__(self, lat0: float, lon0: float) -> None:
        self.lat0, self.lon0 = lat0, lon0
        self.k = math.pi / 180 * EARTH_RADIUS_M
        self.cos = math.cos(math.radians(lat0))

    def xy(self, lat: float, lon: float) -> tuple[float, float]:
        dlon = (lon - self.lon0 + 180.0) % 360.0 - 180.0
        return dlon * self.k * self.cos, (lat - self.lat0) * self.k

    def latlon(self, x: float, y: float) -> tuple[float, float]:
        lon = self.lon0 + x / (self.k * self.cos)
        return self.lat0 + y / self.k, (lon + 180.0) % 360.0 - 180.0


def azimuth_deg(dx: float, dy: float) -> float:
    """Bearing of (dx east, dy north) clockwise from north, in [0, 360)."""
    return math.degrees(math.atan2(dx, dy)) % 360.0


def azimuth_gaps(azimuths: Sequence[float], max_gap_deg: float) -> tuple[float, list[Gap]]:
    """The largest gap between neighbouring azimuths around the circle, and those wider than
    ``max_gap_deg`` (clockwise, bounded by the two shots; the one across north included)."""
    ordered = sorted(a % 360.0 for a in azimuths)
    if not ordered:
        return 360.0, []
    largest, gaps = 0.0, []
    for i, here in enumerate(ordered):
        after = ordered[(i + 1) % len(ordered)]
        width = (after - here) % 360.0 or (360.0 if len(ordered) == 1 else 0.0)
        largest = max(largest, width)
        if width > max_gap_deg:
            # Whole degrees: what a pilot flies by, and every surface shows the same number.
            gaps.append(Gap(float(round(here) % 360), float(round(after) % 360)))
    return float(round(largest)), gaps


def _height_groups(heights: list[tuple[float, int]]) -> list[list[int]]:
    """Indices grouped by height: sorted, split where neighbours are more than a step apart."""
    groups: list[list[int]] = []
    last: float | None = None
    for height, index in sorted(heights):
        if last is None or height - last > ORBIT_HEIGHT_STEP_M:
            groups.append([])
        groups[-1].append(index)
        last = height
    return groups


@dataclass(frozen=True, slots=True)
class _Group:
    folder: str
    members: list[int]  # indices into the located shots
    heights: list[float | None]
    height_from: HeightFrom = None


def _folder_groups(
    located: list[Shot], members: Mapping[str, list[int]], minimum: Mapping[str, int]
) -> list[_Group]:
    """Each candidate folder's photos grouped by height; groups too small or too tall dropped.

    Height above take-off when every located photo of the folder has it, else GPS altitude,
    else one group without a height.
    """
    out = []
    for folder in minimum:
        idx = members[folder]
        height_from: HeightFrom = None
        if all(located[i].height_m is not None for i in idx):
            heights: list[float | None] = [located[i].height_m for i in idx]
            height_from = "take-off"
        elif all(located[i].alt is not None for i in idx):
            heights, height_from = [located[i].alt for i in idx], "gps"
        else:
            heights = [None] * len(idx)
        if all(h is None for h in heights):
            groups = [list(range(len(idx)))]
        else:
            groups = _height_groups([(h, k) for k, h in enumerate(heights) if h is not None])
        for group in groups:
            hs = [heights[k] for k in group]
            known = [h for h in hs if h is not None]
            if len(group) < minimum[folder]:
                continue
            if known and max(known) - min(known) > ORBIT_HEIGHT_SPAN_M:
                continue
            out.append(_Group(folder, [idx[k] for k in group], hs, height_from))
    return out


def judge_coverage(shots: Sequence[Shot], profile: CoverageProfile | None = None) -> Coverage:
    """The tower, each orbit's azimuth coverage and gaps, and the photos aimed elsewhere."""
    p = profile or CoverageProfile()
    located = [s for s in shots if s.lat is not None and s.lon is not None]
    if not located:
        return Coverage()
    if p.tower is not None:
        plane = _Plane(*p.tower)
    else:
        plane = _Plane(
            float(np.median([s.lat for s in located])), float(np.median([s.lon for s in located]))
        )
    xy = np.array(
        [plane.xy(s.lat, s.lon) for s in located if s.lat is not None and s.lon is not None]
    )
    folders = sorted({s.folder for s in located}, key=str.casefold)
    declared = [f for f in folders if p.is_orbit_folder(f)]
    candidates = declared if p.orbits is not None else folders
    minimum = {
        f: MIN_DECLARED_ORBIT_PHOTOS if p.orbits is not None else MIN_ORBIT_PHOTOS
        for f in candidates
    }
    members: dict[str, list[int]] = {}
    for i, shot in enumerate(located):
        members.setdefault(shot.folder, []).append(i)
    groups = _folder_groups(located, members, minimum)
    # Each group is fitted once: the fit both detects an orbit and places the tower.
    fits = [fit_circle(xy[g.members]) if p.tower is None else None for g in groups]
    if p.orbits is None:
        kept = [i for i, g in enumerate(groups) if _looks_like_orbit(xy, g, fits[i], p.tower)]
        groups, fits = [groups[i] for i in kept], [fits[i] for i in kept]
    if p.tower is not None:
        tower_xy, source = (0.0, 0.0), "profile"
    else:
        estimate = _estimate_tower(fits)
        if estimate is None:
            return Coverage()
        tower_xy, source = estimate, "estimated"
    tower = plane.latlon(*tower_xy) if source == "estimated" else p.tower
    assert tower is not None
    offsets = xy - np.array(tower_xy)
    distances = np.hypot(offsets[:, 0], offsets[:, 1])
    azimuths = [azimuth_deg(float(dx), float(dy)) for dx, dy in offsets]
    orbits = [_orbit(g, distances, azimuths, p.max_orbit_gap_deg) for g in groups]
    orbit_folders = {o.folder for o in orbits if o is not None} | set(declared)
    if p.sectors is not None:
        aimed_folders = orbit_folders | {f for f in folders if p.is_sector_folder(f)}
    else:
        climbs = {
            f for f in folders if f not in orbit_folders and _is_climb(located, members[f], offsets)
        }
        aimed_folders = orbit_folders | climbs
    aims = []
    for i, shot in enumerate(located):
        if shot.yaw is None or distances[i] < MIN_TOWER_DISTANCE_M:
            continue
        if shot.folder not in aimed_folders:
            continue
        to_tower = (azimuths[i] + 180.0) % 360.0
        off = abs((shot.yaw - to_tower + 180.0) % 360.0 - 180.0)
        if off > p.max_aim_off_deg:
            aims.append(Aim(shot.path, round(off, 1)))
    return Coverage(
        (round(tower[0], 6), round(tower[1], 6)),
        "profile" if source == "profile" else "estimated",
        tuple(o for o in orbits if o is not None),
        tuple(sorted(aims, key=lambda a: (a.path.casefold(), a.path))),
    )


def _is_climb(located: list[Shot], idx: list[int], offsets: Array) -> bool:
    """A sector climb: a folder's photos taken from about one spot, at rising heights."""
    if len(idx) < MIN_CLIMB_PHOTOS:
        return False
    points = offsets[idx]
    spot = np.median(points, axis=0)
    spread = float(np.max(np.hypot(*(points - spot).T)))
    if spread > max(CLIMB_MIN_SPREAD_M, CLIMB_SPREAD * float(np.hypot(*spot))):
        return False
    heights = [h for i in idx if (h := _height(located[i])) is not None]
    return not heights or max(heights) - min(heights) >= CLIMB_MIN_SPAN_M


def _height(shot: Shot) -> float | None:
    return shot.height_m if shot.height_m is not None else shot.alt


def _looks_like_orbit(
    xy: Array, group: _Group, fit: CircleFit | None, tower: tuple[float, float] | None
) -> bool:
    """A detected orbit: most of its photos on one circle of plausible size, all around it
    (around the profile's tower when there is one, which is the plane's origin)."""
    points = xy[group.members]
    if tower is not None:
        distances = np.hypot(points[:, 0], points[:, 1])
        centre, radius = (0.0, 0.0), float(np.median(distances))
        on = np.abs(distances - radius) <= RADIUS_TOLERANCE * radius
    else:
        if fit is None:
            return False
        centre, radius, on = (fit.x, fit.y), fit.r, fit.inliers
    if not MIN_RADIUS_M <= radius <= MAX_RADIUS_M:
        return False
    if np.count_nonzero(on) < MIN_INLIER_SHARE * len(points):
        return False
    around = [azimuth_deg(float(x - centre[0]), float(y - centre[1])) for x, y in points[on]]
    largest, _ = azimuth_gaps(around, 360.0)
    return largest < MAX_DETECTED_GAP_DEG


def _estimate_tower(fits: list[CircleFit | None]) -> tuple[float, float] | None:
    """The photo-weighted mean of the centres of each orbit's robust circle fit."""
    centres, weights = [], []
    for fit in fits:
        if fit is None or not MIN_RADIUS_M <= fit.r <= MAX_RADIUS_M:
            continue
        centres.append((fit.x, fit.y))
        weights.append(int(np.count_nonzero(fit.inliers)))
    if not centres:
        return None
    mean = np.average(np.array(centres), axis=0, weights=np.array(weights, dtype=float))
    return float(mean[0]), float(mean[1])


def _orbit(group: _Group, distances: Array, azimuths: list[float], max_gap: float) -> Orbit | None:
    """One orbit around the tower: the group's photos near its median radius (a stray is not)."""
    radius = float(np.median(distances[group.members]))
    if radius < MIN_TOWER_DISTANCE_M:
        return None
    keep = [
        k
        for k, i in enumerate(group.members)
        if abs(distances[i] - radius) <= RADIUS_TOLERANCE * radius
    ]
    if not keep:
        return None
    members = [group.members[k] for k in keep]
    known = [h for k in keep if (h := group.heights[k]) is not None]
    largest, gaps = azimuth_gaps([azimuths[i] for i in members], max_gap)
    return Orbit(
        group.folder,
        round(float(np.median(known)), 1) if known else None,
        len(members),
        largest,
        tuple(gaps),
        round(float(np.median(distances[members])), 1),
        group.height_from if known else None,
    )
