"""Exports of a finished job's result document, and the registry the web layer serves them from.

``render_export(document, "kml")`` returns the bytes, the media type and a download name;
``EXPORTS`` lists every format. docs/exports.md describes each format and its readers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from qc_tool.errors import NotFound

from .document import (
    Document,
    Photo,
    photos,
    select_folder,
)
from .geo import geojson, gpx, kml
from .report import print_report, report_policy
from .tables import images_csv, odm_geo_txt, odm_geo_zip, rejected_csv, safe_cell

__all__ = [
    "EXPORTS",
    "Download",
    "ExportFormat",
    "Photo",
    "download_name",
    "geojson",
    "gpx",
    "images_csv",
    "kml",
    "odm_geo_txt",
    "odm_geo_zip",
    "photos",
    "print_report",
    "rejected_csv",
    "render_export",
    "report_policy",
    "safe_cell",
]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_NAME = 120


@dataclass(frozen=True, slots=True)
class ExportFormat:
    """One downloadable format: how to render it, its media type, and the file's kind and suffix."""

    render: Callable[[Document], str | bytes]
    mimetype: str
    kind: str  # the "<kind>" of "<site>-<kind>.<ext>"
    extension: str
    label: str  # for a download link
    # HTML only: the Content-Security-Policy the document needs (the app's allows no inline CSS).
    policy: Callable[[str], str] | None = None


EXPORTS: dict[str, ExportFormat] = {
    "csv": ExportFormat(
        images_csv, "text/csv; charset=utf-8", "images", "csv", "CSV (every image)"
    ),
    "geojson": ExportFormat(geojson, "application/geo+json", "photos", "geojson", "GeoJSON"),
    "kml": ExportFormat(
        kml, "application/vnd.google-earth.kml+xml", "photos", "kml", "KML (Google Earth)"
    ),
    "gpx": ExportFormat(gpx, "application/gpx+xml", "flights", "gpx", "GPX track"),
    "odm": ExportFormat(
        odm_geo_txt, "text/plain; charset=utf-8", "geo", "txt", "OpenDroneMap geo.txt"
    ),
    "odm-folders": ExportFormat(
        odm_geo_zip, "application/zip", "geo-per-folder", "zip", "geo.txt per folder (ZIP)"
    ),
    "rejected": ExportFormat(
        rejected_csv, "text/csv; charset=utf-8", "rejected", "csv", "Rejected photos"
    ),
    "report": ExportFormat(
        print_report,
        "text/html; charset=utf-8",
        "report",
        "html",
        "Printable report",
        policy=report_policy,
    ),
}


@dataclass(frozen=True, slots=True)
class Download:
    body: bytes
    mimetype: str
    filename: str
    policy: str | None = None  # a Content-Security-Policy to send instead of the app's


def download_name(site: str, kind: str, extension: str) -> str:
    """``<site>-<kind>.<ext>`` with anything but letters, digits, ``.``, ``_``, ``-`` made ``_``."""
    # No leading dot (hidden file) or dash (read as an option by shell tools).
    stem = _UNSAFE.sub("_", f"{site}-{kind}").strip("._-")[:MAX_NAME] or "export"
    return f"{stem}.{re.sub('[^A-Za-z0-9]', '', extension) or 'txt'}"


def render_export(document: Document, name: str, folder: str | None = None) -> Download:
    """One export of the document, optionally of one folder only (``<site>-<folder>-<kind>``)."""
    fmt = EXPORTS.get(name)
    if fmt is None:
        raise NotFound(f"no export format {name!r}; choose one of {', '.join(EXPORTS)}")
    kind = fmt.kind
    if folder is not None:
        document = select_folder(document, folder)
        kind = f"{folder}-{kind}"
    body = fmt.render(document)
    policy = fmt.policy(body) if fmt.policy is not None and isinstance(body, str) else None
    # A file name the server could not decode (surrogate escapes) must not stop the download.
    data = body.encode("utf-8", "replace") if isinstance(body, str) else body
    name = download_name(str(document["site"]), kind, fmt.extension)
    return Download(data, fmt.mimetype, name, policy)
