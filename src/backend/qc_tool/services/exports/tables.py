"""The text exports: every image as CSV, the rejected photos for the pilot, ODM's geo.txt."""

from __future__ import annotations

import csv
import io
import zipfile
from collections import Counter
from collections.abc import Sequence
from typing import Any

from qc_tool.domain.paths import display_name, display_text
from qc_tool.domain.verdict import OUTCOME_NAMES

from .document import Document, flight_order, photos, select_folder, with_gps

# The image fields of the result document, in the CSV's column order.
IMAGE_FIELDS = (
    "lat",
    "lon",
    "alt",
    "taken",
    "camera",
    "iso",
    "exposure_time",
    "size",
    "error",
    "gps_note",
    "cached",
)
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """A cell a spreadsheet shows as text: text that could start a formula gets a leading '.

    Only text is guarded: numbers (a negative longitude) are ours, not user input.
    """
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return "" if value is None else value


def _write(rows: Sequence[Sequence[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")  # RFC 4180
    writer.writerows([[safe_cell(v) for v in row] for row in rows])
    return buf.getvalue()


def images_csv(document: Document) -> str:
    """Every image, every field, and every check's measured value (empty without checks)."""
    items = photos(document)
    # The same value columns for every site with checks (merged CSVs line up); an outcome the
    # domain does not list yet still gets its column, after the known ones.
    seen = {o["name"] for p in items for o in (p.checks or {}).get("outcomes", [])}
    names = [*OUTCOME_NAMES, *sorted(seen - set(OUTCOME_NAMES))] if seen else []
    header = ["path", "folder", "file", *IMAGE_FIELDS, "valid", "failures", "reasons", "source"]
    rows: list[list[Any]] = [header + [f"{n}_value" for n in names]]
    for p in items:
        values = {o["name"]: o["value"] for o in (p.checks or {}).get("outcomes", [])}
        rows.append(
            [p.path, p.folder, p.name]
            + [p.image.get(field) for field in IMAGE_FIELDS]
            + [p.valid, " ".join(p.kinds), p.reasons, (p.checks or {}).get("source")]
            + [values.get(n) for n in names]
        )
    return _write(rows)


def rejected_csv(document: Document) -> str:
    """The photos to re-take, one row each, with every reason (for the pilot)."""
    rows: list[list[Any]] = [["path", "folder", "file", "failures", "reasons"]]
    for p in photos(document):
        if p.rejected:
            rows.append([p.path, p.folder, p.name, " ".join(p.kinds), p.reasons])
    return _write(rows)


def odm_geo_txt(document: Document) -> str:
    """OpenDroneMap's image geolocation file: ``EPSG:4326``, then ``name lon lat [alt]``.

    ODM matches each line to an image by its bare file name (one images folder per
    project) and splits lines on whitespace. So a name that occurs in more than one
    folder, or that holds whitespace, would place a photo wrongly or break the line: such
    photos are written as ``#`` comment lines, which ODM skips. Export one folder at a
    time when folders repeat names (DJI restarts numbering per folder).
    """
    items = flight_order(with_gps(photos(document)))
    uses = Counter(p.name for p in items)
    lines = ["EPSG:4326"]
    skipped: list[str] = []
    for p in items:
        assert p.lat is not None and p.lon is not None  # with_gps
        coords = " ".join(repr(v) for v in (p.lon, p.lat, p.alt) if v is not None)
        if uses[p.name] > 1:
            skipped.append(f"# {p.path} {coords}  (file name also in another folder)")
        elif p.name != p.name.strip() or any(c.isspace() for c in p.name):
            skipped.append(f"# {p.path} {coords}  (white space in the file name)")
        elif display_name(p.name) != p.name:
            skipped.append(f"# {p.path} {coords}  (the file name is not plain text)")
        else:
            lines.append(f"{p.name} {coords}")
    missing = len(document["images"]) - len(items)
    lines.append(f"# site {_one_line(document['site'])}, photos located: {len(lines) - 1}")
    if missing:
        lines.append(f"# left out, no GPS or unreadable: {missing}")
    if skipped:
        lines.append(f"# left out, ODM cannot tell them apart by file name: {len(skipped)}")
        lines.append("# download the per-folder geo.txt files (a ZIP) to process every folder")
    return "\n".join(lines + [_one_line(s) for s in skipped]) + "\n"


def odm_geo_zip(document: Document) -> bytes:
    """One ``<folder>/geo.txt`` per folder, for a site whose folders repeat file names.

    DJI restarts its numbering in each folder, so a whole site's geo.txt can place only the
    names that occur once; ODM processes one images folder per project anyway, and each
    folder's own geo.txt names every located photo in it.
    """
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as out:
        listed = [f["name"] for f in document["folders"] if not f.get("skipped")]
        for folder in sorted(listed, key=str.casefold):
            text = odm_geo_txt(select_folder(document, folder))
            # A name the server could not decode (surrogate escapes) must not stop the ZIP.
            out.writestr(f"{_zip_component(folder)}/geo.txt", text.encode("utf-8", "replace"))
    return buf.getvalue()


def _zip_component(name: str) -> str:
    """A folder name as one path component of a ZIP entry, whatever it holds."""
    cleaned = "".join(c if c.isprintable() and c not in "/\\" else "_" for c in name)
    return cleaned.strip(". ") or "_"


def _one_line(text: str) -> str:
    """Text for a comment line: a line break or terminal control in a name is escaped."""
    return display_text(text)
