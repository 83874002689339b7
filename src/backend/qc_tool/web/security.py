"""Cookie, CSRF and response-header hardening, configured from the settings in one place."""

from __future__ import annotations

import secrets
from datetime import timedelta
from urllib.parse import urlsplit

from flask import Flask, Response, request
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from qc_tool.config import Settings

# Endpoints whose responses may be cached by the browser: files that hold no user data.
# These set their own Cache-Control (photo previews: private, keyed by path and size).
CACHEABLE_ENDPOINTS = frozenset({"static", "vendor.leaflet_file", "review.preview"})


# How long a session cookie's signature outlives the login's absolute limit (see configure).
COOKIE_GRACE_S = 3600


class ConfigurationError(RuntimeError):
    """The app cannot start safely with these settings."""


# Anyone who knows the key can sign a cookie for any session id, and forge a CSRF token.
MIN_SECRET_KEY_CHARS = 32
# Values copied from examples and tutorials; refused in production whatever their length.
PLACEHOLDER_KEYS = frozenset(
    {
        "changeme",
        "change-me",
        "change_me",
        "secret",
        "secret-key",
        "secret_key",
        "your-secret-key",
        "dev",
        "development",
        "test",
        "test-secret-key",
        "qc-tool",
        "please-change-this-secret-key-in-production",
    }
)
_HOW = "set it to a long random value: python -c 'import secrets; print(secrets.token_hex(32))'"


def secret_key(settings: Settings) -> str:
    """QC_SECRET_KEY, or a random key for this process (logins then end with the process).

    In production (QC_PRODUCTION=1) a missing, short or placeholder key stops start-up.
    """
    key = settings.secret_key
    if settings.production:
        problem = weak_key_problem(key)
        if problem is not None:
            raise ConfigurationError(f"QC_PRODUCTION=1 but QC_SECRET_KEY {problem}: {_HOW}")
    return key or secrets.token_hex(32)


def weak_key_problem(key: str) -> str | None:
    """Why ``key`` must not sign production cookies, or None when it may."""
    if not key:
        return "is empty"
    if key.strip().lower() in PLACEHOLDER_KEYS:
        return "is a well-known placeholder"
    if len(key) < MIN_SECRET_KEY_CHARS:
        return f"has {len(key)} characters, fewer than {MIN_SECRET_KEY_CHARS}"
    if len(set(key)) < 8:
        return "repeats too few characters to be random"
    return None


def configure(app: Flask, settings: Settings) -> None:
    """Signed-cookie, CSRF and header settings; call before blueprints are registered."""
    # The cookie's signature is dated at login and never refreshed (the session is not
    # permanent), so it must not carry the idle timeout, which an active user never meets:
    # the SessionStore (services/logins/sessions.py) keeps both limits. The signature outlives the
    # absolute one a little, so it is always the store that ends a login, and wipes it.
    session_seconds = settings.session_max_hours * 3600 + COOKIE_GRACE_S
    app.config.update(
        SECRET_KEY=secret_key(settings),
        SESSION_COOKIE_NAME="qc_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.production,
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=session_seconds),
        # A CSRF token lives as long as a login may, so a page left open still works.
        WTF_CSRF_TIME_LIMIT=int(session_seconds),
        WTF_CSRF_HEADERS=["X-CSRFToken"],
        WTF_CSRF_FIELD_NAME="csrf_token",
        MAX_CONTENT_LENGTH=64 * 1024,  # the app only ever receives small forms
    )
    CSRFProtect(app)
    proxies = settings.trusted_proxies
    if proxies > 0:
        # Only as many hops as are really ours: a client could send any X-Forwarded-For.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]
    policy = content_security_policy(settings.tile_url)

    @app.after_request
    def add_security_headers(response: Response) -> Response:
        # A view may send its own stricter policy (the printable report allows its CSS by hash).
        response.headers.setdefault("Content-Security-Policy", policy)
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
