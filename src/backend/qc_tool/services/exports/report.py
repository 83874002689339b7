"""The printable report: one self-contained HTML page (inline CSS and an SVG map, no assets).

It opens with the same decision as the QC page: the document's ``verdict`` (domain/verdict.py),
rendered as it is, never counted again. Its map fits the site as the page's does: the photos
within the position check's distance of the site's centre (``site_area``); photos farther
away are listed under the map instead of shrinking the site to a dot. The map draws the
document's ``coverage`` as the page does: the tower, each orbit's ring with its holes, and a
short line per photo where its camera looked; the orbits are listed beneath it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jinja2

from qc_tool import FRONTEND_DIR
from qc_tool.domain.listing import MAX_SHOWN
from qc_tool.services.uploads.zip_safety import size_text

from .document import Document, Photo, by_folder, flight_order, photos, with_gps

TEMPLATE = "report_print.html"
FAVICON = FRONTEND_DIR / "static" / "favicon.svg"
MAP_WIDTH, MAP_HEIGHT, MAP_MARGIN = 680.0, 380.0, 12.0
MIN_SPAN_DEG = 1e-4  # about 11 m: a site of one point still gets a sensible scale
# Distinct, print-safe colours; folders past the twelfth reuse them.
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#7f7f7f",
    "#393b79",
    "#637939",
    "#843c39",
)


@dataclass(frozen=True, slots=True)
class FolderRow:
    name: str
    images: int
    located: int
    invalid: int  # the verdict's re-fly item of the folder: its photos
    why: list[str]  # and its reasons, by name
    skipped: str | None = None  # the folder was not read: why
    in_subfolders: int = 0  # of ``images``, those found in folders below it
    other_files: int = 0  # files that are not photos (videos, flight logs, text)
    others: tuple[tuple[str, str], ...] = ()  # the first ones listed: (path, size as text)
    not_searched: tuple[tuple[str, str], ...] = ()  # (path, why)


@dataclass(frozen=True, slots=True)
class Rejected:
    """An invalid photo: why, by the verdict's names, and the messages behind them."""

    path: str
    taken: str
    why: list[str]
    messages: list[str]


@dataclass(frozen=True, slots=True)
class FarPhoto:
    path: str
    distance: str


@dataclass(frozen=True, slots=True)
class MapPoint:
    x: float
    y: float
    valid: bool
    title: str


@dataclass(frozen=True, slots=True)
class MapLayer:
    folder: str
    colour: str
    points: list[MapPoint]
    line: str  # the SVG polyline's points: the flight in time order


@dataclass(frozen=True, slots=True)
class CoverageDrawing:
    """The document's coverage in the map's coordinates."""

    tower: tuple[float, float]
    rings: list[str]  # SVG polyline points of each orbit's ring
    holes: list[str]  # and of each hole in it
    aims: list[tuple[float, float, float, float, bool]]  # x1, y1, x2, y2, aimed away


@dataclass(frozen=True, slots=True)
class _Projection:
    """Equirectangular, north up, fitted to the site's photos."""

    squeeze: float
    scale: float
    left: float
    top: float

    def xy(self, lat: float, lon: float) -> tuple[float, float]:
        return (
            round(self.left + lon * self.squeeze * self.scale, 1),
            round(self.top - lat * self.scale, 1),
        )


AIM_M = 6.0  # length of a photo's camera line, as on the page
_M_PER_DEG = 111_320.0


def _destination(lat: float, lon: float, metres: float, bearing: float) -> tuple[float, float]:
    rad = math.radians(bearing)
    north, east = metres * math.cos(rad), metres * math.sin(rad)
    return lat + north / _M_PER_DEG, lon + east / (_M_PER_DEG * math.cos(math.radians(lat)))


def _arc(
    proj: _Projection, centre: tuple[float, float], radius: float, start: float, end: float
) -> str:
    width = (end - start) % 360.0 or 360.0
    steps = max(2, math.ceil(width / 3))
    points = [
        proj.xy(*_destination(*centre, radius, start + width * i / steps)) for i in range(steps + 1)
    ]
    return " ".join(f"{x},{y}" for x, y in points)


_STYLE = re.compile(r"<style>(.*?)</style>", re.DOTALL)


@functools.cache
def _environment() -> jinja2.Environment:
    loader = jinja2.FileSystemLoader(FRONTEND_DIR / "templates")
    return jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined)


def print_report(document: Document, generated: datetime | None = None) -> str:
    """The report's HTML: the verdict (decision, headline, counts, notes), what to fly again,
    the folders, the site's structure and sequence gaps (when the document has them), the
    site's map and the photos far from it, the invalid photos, and the statistics."""
    verdict: Mapping[str, Any] = document["verdict"]
    labels = {k["kind"]: k["label"] for k in [*verdict["kinds"], *verdict["folder_reasons"]]}
    items = photos(document)
    area = document.get("site_area") or {}
    far = {o["path"]: o["distance_m"] for o in area.get("outside", [])}
    near = [p for p in items if p.path not in far]
    projection = _projection(near)
    coverage = document.get("coverage") or {}
    return (
        _environment()
        .get_template(TEMPLATE)
        .render(
            site=document["site"],
            generated=(generated or datetime.now().astimezone()).strftime("%Y-%m-%d %H:%M"),
            favicon=_favicon(),
            verdict=verdict,
            decision=verdict["label"],
            headline=verdict["detail"][:1].upper() + verdict["detail"][1:],
            labels=labels,
            refly=verdict["refly"],
            rows=_folder_rows(document, items, verdict, labels),
            max_shown=MAX_SHOWN,
            rejected=_rejected(items, labels),
            layers=_map_layers(document, near, projection),
            coverage=coverage if coverage.get("tower") else None,
            drawing=_coverage_drawing(document, near, projection),
            far=[FarPhoto(path, _distance(metres)) for path, metres in far.items()],
            outside_site=_distance(area.get("outside_site_m") or 0.0),
            map_size=(MAP_WIDTH, MAP_HEIGHT),
            structure=document.get("structure"),  # None without a site profile
            gaps=document.get("gaps") or [],
            scan_stats=_stats(document.get("stats")),
            check_stats=_stats(document.get("check_stats")),
        )
    )


def report_policy(html: str) -> str:
    """The Content-Security-Policy to serve a report with: its own style elements, by hash.

    The app's policy allows no inline style, and the report must carry its CSS to stay one
    self-contained file; hashing the exact CSS allows it without 'unsafe-inline'.
    """
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()}'"
        for css in _STYLE.findall(html)
    )
    return "; ".join(
        [
            "default-src 'none'",
            "style-src " + (hashes or "'none'"),
            "img-src data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def _distance(metres: float) -> str:
    return f"{metres / 1000:.1f} km" if metres >= 1000 else f"{metres:.0f} m"


@functools.cache
def _favicon() -> str:
    """The app's icon as a data: URL (the report fetches nothing; its policy allows data:)."""
    return "data:image/svg+xml;base64," + base64.b64encode(FAVICON.read_bytes()).decode()


def _folder_rows(
    document: Document, items: list[Photo], verdict: Mapping[str, Any], labels: dict[str, str]
) -> list[FolderRow]:
    """Every folder, alphabetical, with the verdict's re-fly item of it (if any)."""
    refly = {item["folder"]: item for item in verdict["refly"]}
    summaries = {f["name"]: f for f in document["folders"]}
    rows = []
    for name, group in by_folder(document, items).items():
        item = refly.get(name, {"photos": [], "reasons": []})
        why = [labels.get(k, k) for k in item["reasons"]]
        located = len(with_gps(group))
        summary = summaries.get(name, {})  # a document of an older version lacks the counts
        row = FolderRow(
            name,
            len(group),
            located,
            len(item["photos"]),
            why,
            summary.get("skipped"),
            in_subfolders=summary.get("in_subfolders", 0),
            other_files=summary.get("other_files", 0),
            others=tuple((o["path"], size_text(o["size"])) for o in summary.get("others", [])),
            not_searched=tuple((n["path"], n["reason"]) for n in summary.get("not_searched", [])),
        )
        rows.append(row)
    return sorted(rows, key=lambda row: (row.name.casefold(), row.name))


def _rejected(items: list[Photo], labels: dict[str, str]) -> list[Rejected]:
    """The photos the verdict calls invalid, in the document's order."""
    return [
        Rejected(
            p.path,
            (p.taken or "").replace("T", " "),
            [labels.get(k, k) for k in p.kinds],
            p.messages,
        )
        for p in items
        if p.rejected
    ]


def _stats(stats: Any) -> list[tuple[str, str]]:
    if not isinstance(stats, dict):
        return []
    return [(key.replace("_", " "), _number(value)) for key, value in stats.items()]


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _projection(items: list[Photo]) -> _Projection | None:
    """The map box fitted to ``items``, the photos at the site (the far ones are left out)."""
    located = with_gps(items)
    if not located:
        return None
    lats = [p.lat for p in located if p.lat is not None]
    lons = [p.lon for p in located if p.lon is not None]
    squeeze = math.cos(math.radians((min(lats) + max(lats)) / 2))  # metres per degree of lon
    width = max((max(lons) - min(lons)) * squeeze, MIN_SPAN_DEG)
    height = max(max(lats) - min(lats), MIN_SPAN_DEG)
    scale = min((MAP_WIDTH - 2 * MAP_MARGIN) / width, (MAP_HEIGHT - 2 * MAP_MARGIN) / height)
    left = (MAP_WIDTH - width * scale) / 2 - (min(lons) * squeeze) * scale
    top = (MAP_HEIGHT - height * scale) / 2 + max(lats) * scale
    return _Projection(squeeze, scale, left, top)


def _map_layers(document: Document, items: list[Photo], proj: _Projection | None) -> list[MapLayer]:
    """Each folder's located photos projected into the map box (equirectangular, north up)."""
    located = with_gps(items)
    if proj is None or not located:
        return []

    def project(p: Photo) -> MapPoint:
        assert p.lat is not None and p.lon is not None
        x, y = proj.xy(p.lat, p.lon)
        return MapPoint(
            x, y, not p.rejected, f"{p.path}: {p.reasons or ('valid' if p.valid else 'not judged')}"
        )

    layers = []
    groups = by_folder(document, flight_order(located))
    names = sorted((n for n, g in groups.items() if g), key=lambda n: (n.casefold(), n))
    for i, folder in enumerate(names):
        group = groups[folder]
        points = [project(p) for p in group]
        line = " ".join(f"{pt.x},{pt.y}" for pt in points)
        layers.append(MapLayer(folder, PALETTE[i % len(PALETTE)], points, line))
    return layers


def _coverage_drawing(
    document: Document, items: list[Photo], proj: _Projection | None
) -> CoverageDrawing | None:
    """The tower, the orbit rings (radius from ``site_area.rings``) with their holes, and each
    photo's camera line, in the map's coordinates; None when coverage found no tower."""
    coverage = document.get("coverage") or {}
    tower = coverage.get("tower")
    if proj is None or not tower:
        return None
    centre = (float(tower["lat"]), float(tower["lon"]))
    rings = (document.get("site_area") or {}).get("rings") or []
    circles, holes = [], []
    for orbit, ring in zip(coverage.get("orbits", []), rings, strict=False):
        radius = float(ring["radius_m"])
        circles.append(_arc(proj, centre, radius, 0.0, 360.0))
        holes += [_arc(proj, centre, radius, g["from_deg"], g["to_deg"]) for g in orbit["gaps"]]
    away = {a["path"] for a in coverage.get("pointing_away", [])}
    aims = []
    for p in with_gps(items):
        yaw = (p.image.get("gimbal") or {}).get("yaw")
        if yaw is None or p.lat is None or p.lon is None:
            continue
        x1, y1 = proj.xy(p.lat, p.lon)
        x2, y2 = proj.xy(*_destination(p.lat, p.lon, AIM_M, float(yaw)))
        aims.append((x1, y1, x2, y2, p.path in away))
    return CoverageDrawing(proj.xy(*centre), circles, holes, aims)
