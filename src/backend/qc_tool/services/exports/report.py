"""The printable report: one self-contained HTML page (inline CSS and an SVG map, no assets)."""

from __future__ import annotations

import base64
import functools
import hashlib
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import jinja2

from qc_tool import FRONTEND_DIR

from .document import Document, Photo, by_folder, flight_order, photos, with_gps

TEMPLATE = "report_print.html"
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


@dataclass(slots=True)
class FolderRow:
    name: str
    images: int = 0
    located: int = 0
    failed: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    skipped: str | None = None  # the folder was not read: why


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
    """The report's HTML: site, totals, per-folder failure counts, the site's structure and
    sequence gaps (when the document has them), map, failed photos, stats."""
    items = photos(document)
    groups = by_folder(document, items)
    skipped = {f["name"]: f.get("skipped") for f in document["folders"]}
    rows = [_folder_row(name, group, skipped.get(name)) for name, group in groups.items()]
    kinds = sorted({kind for row in rows for kind in row.kinds})
    totals = {
        "images": len(items),
        "located": len(with_gps(items)),
        "missing_gps": sum(1 for p in items if p.position is None and not p.image.get("error")),
        "unreadable": sum(1 for p in items if p.image.get("error")),
        "checked": sum(1 for p in items if p.checks is not None),
        "passed": sum(1 for p in items if p.valid),
        "failed": sum(1 for p in items if not p.valid),
    }
    return (
        _environment()
        .get_template(TEMPLATE)
        .render(
            site=document["site"],
            generated=(generated or datetime.now().astimezone()).strftime("%Y-%m-%d %H:%M"),
            totals=totals,
            rows=rows,
            kinds=kinds,
            failed=[p for p in items if not p.valid],
            layers=_map_layers(document, items),
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


def _folder_row(name: str, group: list[Photo], skipped: str | None = None) -> FolderRow:
    row = FolderRow(name, images=len(group), skipped=skipped)
    for p in group:
        row.located += p.position is not None
        row.failed += not p.valid
        row.kinds.update(p.kinds)
    return row


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
    """Each folder's located photos projected into the map box (equirectangular, north up)."""
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
            round(x, 1), round(y, 1), p.valid is True, f"{p.path}: {p.reasons or 'passed'}"
        )

    layers = []
    groups = by_folder(document, flight_order(located))
    for i, (folder, group) in enumerate(g for g in groups.items() if g[1]):
        points = [project(p) for p in group]
        line = " ".join(f"{pt.x},{pt.y}" for pt in points)
        layers.append(MapLayer(folder, PALETTE[i % len(PALETTE)], points, line))
    return layers
