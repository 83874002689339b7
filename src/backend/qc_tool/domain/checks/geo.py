"""Where the site is (median of its photos' positions) and which photos were taken elsewhere."""

from __future__ import annotations

import math
from collections.abc import Sequence

from .result import CheckOutcome

EARTH_RADIUS_M = 6_371_008.8  # IUGG mean radius
Point = tuple[float, float]  # (lat, lon) in degrees


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (good to ~0.5 %, far better than GPS over a site)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def _median(values: list[float]) -> float:
    values = sorted(values)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def site_centre(points: Sequence[Point | None]) -> Point | None:
    """Component-wise median of the known positions: a few stray photos cannot move it.

    Longitudes are unwrapped first when the positions straddle the 180° meridian.
    """
    known = [p for p in points if p is not None]
    if not known:
        return None
    lons = [lon for _, lon in known]
    if max(lons) - min(lons) > 180:
        lons = [lon + 360 if lon < 0 else lon for lon in lons]
    lon = _median(lons)
    return _median([lat for lat, _ in known]), lon - 360 if lon > 180 else lon


def outside_site_flags(
    points: Sequence[Point | None], max_distance_m: float, centre: Point | None = None
) -> list[bool]:
    """True for each position farther than ``max_distance_m`` from the site centre."""
    middle = centre or site_centre(points)
    if middle is None:
        return [False] * len(points)
    return [
        p is not None and haversine_m(p[0], p[1], middle[0], middle[1]) > max_distance_m
        for p in points
    ]


def position_outcome(
    point: Point | None, centre: Point | None, max_distance_m: float
) -> CheckOutcome:
    """Whether one photo was taken at the site, as the technician reads it."""
    if point is None or centre is None:
        what = "No GPS position" if point is None else "No site position"
        message = f"{what}; distance to the site not checked"
        return CheckOutcome("position", True, message, None, max_distance_m, judged=False)
    metres = round(haversine_m(point[0], point[1], centre[0], centre[1]), 1)
    if metres > max_distance_m:
        message = (
            f"Outside the site: {metres:.0f} m from the site's median position "
            f"(maximum {max_distance_m:g} m)"
        )
        return CheckOutcome("position", False, message, metres, max_distance_m)
    message = f"At the site: {metres:.0f} m from its median position"
    return CheckOutcome("position", True, message, metres, max_distance_m)
