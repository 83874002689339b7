"""Security headers, cookie flags, the production secret-key rule, and no inline scripts."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from qc_tool import FRONTEND_DIR, create_app
from qc_tool.web.security import ConfigurationError, content_security_policy, tile_source

from web.support import MakeApp, log_in


@pytest.mark.parametrize("path", ["/login", "/api/sites", "/static/css/app.css", "/nowhere"])
def test_every_response_carries_the_security_headers(client: FlaskClient, path: str) -> None:
    headers = client.get(path).headers
    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "img-src 'self' data: https://tile.openstreetmap.org" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Frame-Options"] == "DENY"


def test_pages_with_user_data_are_not_cached(client: FlaskClient) -> None:
    assert client.get("/login").headers["Cache-Control"] == "no-store"
    assert client.get("/api/sites").headers["Cache-Control"] == "no-store"


def test_tile_hosts_become_csp_sources() -> None:
    assert tile_source("https://tile.openstreetmap.org/{z}/{x}/{y}.png") == (
        "https://tile.openstreetmap.org"
    )
    assert tile_source("https://{s}.tile.example.com:8443/{z}/{x}/{y}.png") == (
        "https://*.tile.example.com:8443"
    )
    assert tile_source("/tiles/{z}/{x}/{y}.png") is None
    assert "img-src 'self' data:;" in content_security_policy("")


def test_session_cookie_is_httponly_and_samesite(
    client: FlaskClient, sftp_username: str, sftp_password: str
) -> None:
    cookie = log_in(client, sftp_username, sftp_password).headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def test_production_cookies_are_secure(
    make_app: MakeApp, sftp_username: str, sftp_password: str
) -> None:
    app = make_app(QC_PRODUCTION=1, QC_SECRET_KEY="a-long-production-secret-key-0123456789")
    assert app.config["SESSION_COOKIE_SECURE"] is True
    client = app.test_client()
    cookie = log_in(client, sftp_username, sftp_password).headers["Set-Cookie"]
    assert "Secure" in cookie


def test_production_without_a_secret_key_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="QC_SECRET_KEY"):
        create_app({"QC_PRODUCTION": 1, "QC_SECRET_KEY": "", "QC_CACHE_DIR": tmp_path})


def test_without_a_secret_key_each_app_makes_its_own(tmp_path: Path) -> None:
    config = {"QC_SECRET_KEY": "", "QC_PRODUCTION": 0, "QC_CACHE_DIR": tmp_path}
    first, second = create_app(config), create_app(config)
    try:
        assert first.secret_key and second.secret_key and first.secret_key != second.secret_key
    finally:
        first.extensions["qc"].close()
        second.extensions["qc"].close()


def test_templates_have_no_inline_scripts_or_styles() -> None:
    for template in (FRONTEND_DIR / "templates").glob("*.html"):
        text = template.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            assert "src=" in tag, f"inline script in {template.name}: {tag}"
        assert not re.search(r"\son[a-z]+\s*=", text), f"event handler attribute in {template.name}"
        assert not re.search(r"\sstyle\s*=", text), f"style attribute in {template.name}"
        if template.name != "report_print.html":  # a self-contained download, CSS allowed by hash
            assert "<style" not in text, f"style element in {template.name}"


def test_importing_the_package_starts_nothing() -> None:
    code = (
        "import sys, threading, qc_tool; "
        "print('flask' in sys.modules, 'paramiko' in sys.modules, threading.active_count())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    )
    assert out.stdout.split() == ["False", "False", "1"]
