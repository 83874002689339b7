"""The map exports: GeoJSON (QGIS), KML (Google Earth), GPX (GPS tools), one flight path per folder.

Photos without a GPS position cannot be placed; each format says how many were left out.
XML is built with ElementTree, which escapes text and attributes; characters XML 1.0
cannot hold at all (control characters, lone surrogates) are dropped first.
"""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

from .document import Document, Photo, by_folder, flight_order, photos, with_gps

KML_NS = "http://www.opengis.net/kml/2.2"
GPX_NS = "http://www.topografix.com/GPX/1/1"
CREATOR = "qc-tool"
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# KML colours are aabbggrr.
_KML_GOOD, _KML_BAD, _KML_PATH = "ff37a11a", "ff2828c6", "ffad5f0b"
_KML_UNCHECKED = "ff9e9e9e"  # grey: not judged, neither a pass nor a failure


def _xml(text: object) -> str:
    return _NOT_XML.sub("", str(text))


def _position(p: Photo) -> list[float]:
    """RFC 7946 order: longitude, latitude, then altitude when known."""
    assert p.lat is not None and p.lon is not None
    return [p.lon, p.lat] if p.alt is None else [p.lon, p.lat, p.alt]


def _paths(document: Document) -> dict[str, list[Photo]]:
    """Per folder, the located photos in flight order (folders without any left out)."""
    groups = by_folder(document, flight_order(with_gps(photos(document))))
    return {folder: items for folder, items in groups.items() if items}


def geojson(document: Document) -> str:
    """A FeatureCollection: a Point per located photo, a LineString per folder's flight."""
    located = with_gps(photos(document))
    features: list[dict[str, Any]] = [
        {
            "type": "Feature",
            "id": p.path,
            "geometry": {"type": "Point", "coordinates": _position(p)},
            "properties": {
                "kind": "photo",
                "path": p.path,
                "folder": p.folder,
                "file": p.name,
                "taken": p.taken,
                "camera": p.camera,
                "alt": p.alt,
                "valid": p.valid,
                "failures": p.kinds,
                "reasons": p.reasons,
            },
        }
        for p in located
    ]
    for folder, items in _paths(document).items():
        if len(items) < 2:  # a LineString needs two positions (RFC 7946, 3.1.4)
            continue
        # Mixed 2-D and 3-D positions in one line confuse readers: 3-D only when all have it.
        three_d = all(p.alt is not None for p in items)
        features.append(
            {
                "type": "Feature",
                "id": f"path:{folder}",
                "geometry": {
                    "type": "LineString",
                    "coordinates": [_position(p) if three_d else _position(p)[:2] for p in items],
                },
                "properties": {
                    "kind": "flight_path",
                    "folder": folder,
                    "photos": len(items),
                    "start": items[0].taken,
                    "end": items[-1].taken,
                },
            }
        )
    collection = {
        "type": "FeatureCollection",
        "name": document["site"],  # foreign members (RFC 7946, 6.1); GDAL names the layer by it
        "site": document["site"],
        "photos": len(document["images"]),
        "without_gps": len(document["images"]) - len(located),  # no GPS, or unreadable
        "features": features,
    }
    return json.dumps(collection, indent=1)


def _sub(parent: ET.Element, tag: str, text: object = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: _xml(v) for k, v in attrs.items()})
    if text is not None:
        element.text = _xml(text)
    return element


def _serialise(root: ET.Element) -> bytes:
    ET.indent(root)
    out = io.BytesIO()
    ET.ElementTree(root).write(out, encoding="UTF-8", xml_declaration=True)
    return out.getvalue()


def _kml_style(document: ET.Element, style_id: str, colour: str, line: bool = False) -> None:
    style = _sub(document, "Style", id=style_id)
    if line:
        line_style = _sub(style, "LineStyle")
        _sub(line_style, "color", colour)
        _sub(line_style, "width", 2)
    else:
        _sub(_sub(style, "IconStyle"), "color", colour)


def _kml_data(placemark: ET.Element, fields: Sequence[tuple[str, object]]) -> None:
    extended = _sub(placemark, "ExtendedData")
    for name, value in fields:
        _sub(_sub(extended, "Data", name=name), "value", "" if value is None else value)


def kml(document: Document) -> bytes:
    """KML 2.2: a Folder per site folder with a Placemark per photo and the flight as a LineString.

    Altitudes are written but not used for drawing (the default ``clampToGround``): drone
    GPS altitudes are not reliably above the terrain model Google Earth uses.
    """
    # The namespace as a plain attribute: ElementTree's register_namespace is process-global.
    root = ET.Element("kml", xmlns=KML_NS)
    doc = _sub(root, "Document")
    _sub(doc, "name", f"{document['site']} photo QC")
    missing = sum(1 for p in photos(document) if p.position is None)
    _sub(
        doc,
        "description",
        f"{len(document['images'])} photos, {missing} left out (no GPS, or unreadable)",
    )
    _kml_style(doc, "valid", _KML_GOOD)
    _kml_style(doc, "failed", _KML_BAD)
    _kml_style(doc, "unchecked", _KML_UNCHECKED)
    _kml_style(doc, "path", _KML_PATH, line=True)
    for folder, items in _paths(document).items():
        kml_folder = _sub(doc, "Folder")
        _sub(kml_folder, "name", folder)
        for p in items:
            placemark = _sub(kml_folder, "Placemark")
            _sub(placemark, "name", p.name)
            _sub(placemark, "description", p.reasons or ("passed" if p.valid else "not judged"))
            _sub(placemark, "styleUrl", f"#{_status(p.valid)}")
            _kml_data(
                placemark,
                [
                    ("path", p.path),
                    ("taken", p.taken),
                    ("camera", p.camera),
                    ("alt", p.alt),
                    ("valid", str(p.valid).lower()),
                    ("failures", " ".join(p.kinds)),
                ],
            )
            point = _sub(placemark, "Point")
            _sub(point, "coordinates", ",".join(repr(v) for v in _position(p)))
        if len(items) >= 2:
            line = _sub(kml_folder, "Placemark")
            _sub(line, "name", f"{folder} flight path")
            _sub(line, "styleUrl", "#path")
            string = _sub(line, "LineString")
            _sub(string, "tessellate", 1)
            coords = " ".join(",".join(repr(v) for v in _position(p)[:2]) for p in items)
            _sub(string, "coordinates", coords)
    return _serialise(root)


def _status(valid: bool | None) -> str:
    """The verdict's three states: a photo not judged (None) is neither valid nor failed."""
    if valid is None:
        return "unchecked"
    return "valid" if valid else "failed"


def gpx(document: Document) -> bytes:
    """GPX 1.1: a waypoint per photo, a track per folder of its photos in flight order.

    Times are the camera's clock as recorded, without a zone (EXIF stores none); GPX
    expects UTC, so a reader may show them shifted by the site's offset.
    """
    root = ET.Element("gpx", xmlns=GPX_NS, version="1.1", creator=CREATOR)
    located = with_gps(photos(document))
    metadata = _sub(root, "metadata")
    _sub(metadata, "name", f"{document['site']} photo QC")
    _sub(
        metadata,
        "desc",
        f"{len(document['images']) - len(located)} photos left out (no GPS, or unreadable)",
    )
    if located:
        lats = [p.lat for p in located if p.lat is not None]
        lons = [p.lon for p in located if p.lon is not None]
        _sub(
            metadata,
            "bounds",
            minlat=repr(min(lats)),
            minlon=repr(min(lons)),
            maxlat=repr(max(lats)),
            maxlon=repr(max(lons)),
        )
    # Schema order inside <gpx>: metadata, wpt*, rte*, trk*.
    for p in located:
        wpt = _point(root, "wpt", p)
        _sub(wpt, "name", p.path)
        if p.reasons:
            _sub(wpt, "desc", p.reasons)
        _sub(wpt, "type", _status(p.valid))
    for folder, items in _paths(document).items():
        trk = _sub(root, "trk")
        _sub(trk, "name", folder)
        segment = _sub(trk, "trkseg")
        for p in items:
            _point(segment, "trkpt", p)
    return _serialise(root)


def _point(parent: ET.Element, tag: str, p: Photo) -> ET.Element:
    """A wptType element: lat/lon attributes, then <ele> and <time> (the schema's order)."""
    element = _sub(parent, tag, lat=repr(p.lat), lon=repr(p.lon))
    if p.alt is not None:
        _sub(element, "ele", repr(p.alt))
    if p.taken is not None:
        _sub(element, "time", p.taken)
    return element
