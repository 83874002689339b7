"""Cookie, CSRF and response-header hardening, configured from the settings in one place."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, request
from flask_wtf.csrf import CSRFProtect

# Endpoints whose responses may be cached by the browser: files that hold no user data.
CACHEABLE_ENDPOINTS = frozenset({"static", "vendor.leaflet_file"})


class ConfigurationError(RuntimeError):
    """The app cannot start safely with these settings."""


def secret_key(settings: Mapping[str, Any]) -> str:
    """QC_SECRET_KEY, or a random key for this process (logins then end with the process)."""
    key = str(settings.get("QC_SECRET_KEY") or "")
    if key:
        return key
    if settings.get("QC_PRODUCTION"):
        raise ConfigurationError(
            "QC_PRODUCTION=1 but QC_SECRET_KEY is empty: set QC_SECRET_KEY to a long random "
            "value (e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)"
        )
    return secrets.token_hex(32)


def configure(app: Flask, settings: Mapping[str, Any]) -> None:
    """Signed-cookie, CSRF and header settings; call before blueprints are registered."""
    session_seconds = float(settings["QC_SESSION_HOURS"]) * 3600
    app.config.update(
        SECRET_KEY=secret_key(settings),
        SESSION_COOKIE_NAME="qc_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=bool(settings.get("QC_PRODUCTION")),
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=session_seconds),
        # A CSRF token lives as long as an idle login may, so a page left open still works.
        WTF_CSRF_TIME_LIMIT=int(session_seconds),
        WTF_CSRF_HEADERS=["X-CSRFToken"],
        WTF_CSRF_FIELD_NAME="csrf_token",
        MAX_CONTENT_LENGTH=64 * 1024,  # the app only ever receives small forms
    )
    CSRFProtect(app)
    policy = content_security_policy(str(settings.get("QC_TILE_URL") or ""))

    @app.after_request
    def add_security_headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = policy
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        if request.endpoint not in CACHEABLE_ENDPOINTS:
            response.headers["Cache-Control"] = "no-store"
        return response


def content_security_policy(tile_url: str) -> str:
    """Scripts and styles only from this app (no inline code); images also from the tile host."""
    images = ["'self'", "data:"]
    tiles = tile_source(tile_url)
    if tiles:
        images.append(tiles)
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {' '.join(images)}",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def tile_source(tile_url: str) -> str | None:
    """The CSP source of a tile URL template: its origin, with ``{s}`` as a wildcard subdomain."""
    parts = urlsplit(tile_url)
    if not parts.scheme or not parts.netloc:
        return None  # a relative template is served by this app: 'self' covers it
    host = parts.netloc.replace("{s}", "*")
    if "{" in host or "}" in host or any(c in host for c in " ;,'"):
        return f"{parts.scheme}:"  # a placeholder we cannot express: allow the scheme only
    return f"{parts.scheme}://{host}"
