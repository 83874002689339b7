"""The printable report: one self-contained HTML page (inline CSS and an SVG map, no assets).

It opens with the same decision as the QC page: the document's ``verdict`` (domain/verdict.py),
rendered as it is, never counted again. Its map fits the site as the page's does: the photos
within the position check's distance of the site's centre (``site_area``); photos farther
away are listed under the map instead of shrinking the site to a dot.
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
            rejected=_rejected(items, labels),
            layers=_map_layers(document, [p for p in items if p.path not in far]),
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
    skipped = {f["name"]: f.get("skipped") for f in document["folders"]}
    rows = []
    for name, group in by_folder(document, items).items():
        item = refly.get(name, {"photos": [], "reasons": []})
        why = [labels.get(k, k) for k in item["reasons"]]
        located = len(with_gps(group))
        row = FolderRow(name, len(group), located, len(item["photos"]), why, skipped.get(name))
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


def _map_layers(document: Document, items: list[Photo]) -> list[MapLayer]:
    """Each folder's located photos projected into the map box (equirectangular, north up).

    ``items`` are the photos at the site: the far ones are left out, so the box fits the site.
    """
    located = with_gps(items)
    if not located:
        return []
    lats = [p.lat for p in located if p.lat is not None]
    lons = [p.lon for p in located if p.lon is not None]
    squeeze = math.cos(math.radians((min(lats) + max(lats)) / 2))  # metres per degree of lon
    width = max((max(lons) - min(lons)) * squeeze, MIN_SPAN_DEG)
    height = max(max(lats) - min(lats), MIN_SPAN_DEG)
    scale = min((MAP_WIDTH - 2 * MAP_MARGIN) / width, (MAP_HEIGHT - 2 * MAP_MARGIN) / height)
    left = (MAP_WIDTH - width * scale) / 2 - (min(lons) * squeeze) * scale
    top = (MAP_HEIGHT - height * scale) / 2 + max(lats) * scale

    def project(p: Photo) -> MapPoint:
        assert p.lat is not None and p.lon is not None
        x, y = left + p.lon * squeeze * scale, top - p.lat * scale
        return MapPoint(
            round(x, 1),
            round(y, 1),
            not p.rejected,
            f"{p.path}: {p.reasons or ('valid' if p.valid else 'not judged')}",
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
