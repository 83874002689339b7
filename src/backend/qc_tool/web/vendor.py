"""Leaflet served by the app itself (from the xstatic-leaflet package): no CDN at run time."""

from __future__ import annotations

from flask import Blueprint, send_from_directory
from werkzeug.wrappers import Response
from xstatic.pkg import leaflet

bp = Blueprint("vendor", __name__, url_prefix="/vendor")

LEAFLET_VERSION: str = leaflet.VERSION


@bp.get("/leaflet/<path:filename>")
def leaflet_file(filename: str) -> Response:
    # send_from_directory refuses paths that leave BASE_DIR.
    return send_from_directory(leaflet.BASE_DIR, filename, max_age=86400)
