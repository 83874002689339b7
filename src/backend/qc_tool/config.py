"""Every setting in one table: name, default, help. Read from the environment once, at start-up.

docs/configuration.md is checked against this table by a test, so a setting
cannot be added without being documented.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    default: str
    help: str
    kind: type = str


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "QC_SFTP_HOST",
        "",
        "SFTP server host. Empty: start_qc_tool.sh runs the built-in demo server.",
    ),
    Setting("QC_SFTP_PORT", "22", "SFTP server port.", int),
    Setting(
        "QC_SITES_ROOT",
        "/sites",
        "Absolute path of the folder holding the sites on the SFTP server.",
    ),
    Setting(
        "QC_KNOWN_HOSTS",
        "",
        "known_hosts file with the SFTP server's host key; unknown or changed keys are refused.",
    ),
    Setting(
        "QC_TRUST_ON_FIRST_USE",
        "0",
        "1: an unknown server's host key is recorded in QC_KNOWN_HOSTS after the first successful "
        "login (changed keys are still refused); 0: unknown keys are refused.",
        int,
    ),
    Setting(
        "QC_SECRET_KEY",
        "",
        "Key signing session cookies. Required in production; a random one is made per process otherwise.",
    ),
    Setting("QC_HTTP_HOST", "127.0.0.1", "Address the web server listens on.", str),
    Setting("QC_PORT", "8080", "Port the web server listens on.", int),
    Setting(
        "QC_TRUSTED_PROXIES",
        "0",
        "How many reverse proxies in front of the app to believe X-Forwarded-For and "
        "X-Forwarded-Proto from (0: none; the client's address is the connection's). Behind one "
        "nginx, 1: the login rate limit then counts each client's own address.",
        int,
    ),
    Setting(
        "QC_REQUEST_TIMEOUT",
        "10",
        "Seconds a client has to send a request's head (and a form body) before the web server "
        "answers 408 and closes; requests are read in full before a thread takes them.",
        float,
    ),
    Setting(
        "QC_MAX_CONNECTIONS",
        "4",
        "Most SSH connections one scan opens (the pool is 2-4 by folder size).",
        int,
    ),
    Setting(
        "QC_MAX_SERVER_CONNECTIONS",
        "16",
        "Most SSH connections this process holds to the SFTP server, all users together; "
        "a scan's first connection waits up to 60 s for a free one, extra pool connections do not wait.",
        int,
    ),
    Setting(
        "QC_MAX_SERVER_HANDSHAKES",
        "8",
        "Most SSH connections of this process logging in to the SFTP server at once (TCP connect "
        "to login done), all users together; keep it below the server's MaxStartups (OpenSSH: 10).",
        int,
    ),
    Setting(
        "QC_MAX_LISTING",
        "20000",
        "Most entries one folder listing on the SFTP server may hold (sites root, a site, a "
        "folder); a larger folder is an error naming it, never a listing silently cut short.",
        int,
    ),
    Setting(
        "QC_CACHE_DIR",
        "",
        "Folder of the per-file result cache (SQLite). Empty: ~/.cache/qc-tool.",
        str,
    ),
    Setting(
        "QC_TILE_URL",
        "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        "Map tile URL template; points and paths draw without tiles.",
    ),
    Setting(
        "QC_TILE_ATTRIBUTION",
        "&copy; OpenStreetMap contributors",
        "Attribution shown for the map tiles.",
    ),
    Setting(
        "QC_SESSION_HOURS",
        "8",
        "Hours a login stays valid without use; then its password is wiped, its scans "
        "cancelled and its connections closed (checked every 10 s at most, without a request).",
        float,
    ),
    Setting(
        "QC_SESSION_MAX_HOURS",
        "12",
        "Hours a login stays valid at most, however active; then the user logs in again.",
        float,
    ),
    Setting(
        "QC_PREVIEW_IDLE_S",
        "120",
        "Seconds a login's preview connection stays open after its last use (it holds one of "
        "QC_MAX_SERVER_CONNECTIONS meanwhile); closed within a quarter of this more, 10 s at most.",
        float,
    ),
    Setting(
        "QC_LOGIN_MAX_FAILURES",
        "5",
        "Refused passwords allowed per client address and per username within QC_LOGIN_WINDOW_S; "
        "then logins answer 429 without contacting the SFTP server.",
        int,
    ),
    Setting(
        "QC_LOGIN_WINDOW_S",
        "900",
        "Seconds over which failed logins are counted (a refused client may try again once its "
        "oldest counted failure is this old).",
        float,
    ),
    Setting(
        "QC_CONNECT_TIMEOUT", "10", "Seconds to connect and authenticate to the SFTP server.", float
    ),
    Setting(
        "QC_OP_TIMEOUT",
        "30",
        "Seconds an SFTP operation may wait for a reply before the connection is dropped.",
        float,
    ),
    Setting(
        "QC_PARSE_WORKERS",
        "",
        "Processes parsing EXIF while the scan reads. Empty: cores - 1; 0: parse in the scan's own thread.",
        str,
    ),
    Setting(
        "QC_CHECK_WORKERS",
        "",
        "Processes measuring photos for the checks. Empty: one per core; 0: threads in the app's process.",
        str,
    ),
    Setting(
        "QC_CHECK_MEMORY_MB",
        "128",
        "Photos read and not yet measured hold at most this much memory per check pass "
        "(a larger photo is measured alone).",
        int,
    ),
    Setting("QC_MAX_JOBS", "4", "Scans that may run at once; more wait in a queue.", int),
    Setting(
        "QC_MAX_JOBS_PER_LOGIN",
        "2",
        "QC runs one login may have queued or running; one more is refused (429) until one ends.",
        int,
    ),
    Setting(
        "QC_CHECKS",
        "1",
        "1: View QC checks the photos (blur, exposure, duplicates ...) after the GPS pass; 0: GPS only.",
        int,
    ),
    Setting(
        "QC_CHECK_PROFILE",
        "",
        "JSON file of capture rules (max ISO, slowest shutter, gimbal pitch, cameras); see docs/checks.md.",
    ),
    Setting(
        "QC_SITE_PROFILE",
        "",
        "JSON file of what every site holds (expected folders, minimum photos); see docs/checks.md.",
    ),
    Setting(
        "QC_MIN_RESOLUTION",
        "",
        "Flag photos smaller than WIDTHxHEIGHT (e.g. 4000x3000). Empty: no resolution check.",
    ),
    Setting(
        "QC_PRODUCTION",
        "0",
        "1 in production: refuse to start without QC_SECRET_KEY, mark cookies Secure.",
        int,
    ),
    Setting("QC_LOG_LEVEL", "INFO", "Log level of the tool's own messages."),
    Setting(
        "QC_UPLOAD_MAX_MB",
        "2048",
        "Largest ZIP of photos accepted for upload, in MB (the file as sent).",
        float,
    ),
    Setting(
        "QC_UPLOAD_MAX_FILES",
        "5000",
        "Most entries (files and folders) an uploaded ZIP may hold.",
        int,
    ),
    Setting(
        "QC_UPLOAD_MAX_TOTAL_MB",
        "2560",
        "Most MB the photos of an uploaded ZIP may unpack to (declared, and counted while unpacking).",
        float,
    ),
    Setting(
        "QC_UPLOAD_KEEP_MINUTES",
        "60",
        "Minutes an upload's results and files are kept after its checks finish; then deleted.",
        float,
    ),
)


def load(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Settings from the environment (or ``environ``), typed, with defaults filled in."""
    env = os.environ if environ is None else environ
    out: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = env.get(setting.name, setting.default)
        try:
            out[setting.name] = setting.kind(raw) if raw != "" or setting.kind is str else None
        except ValueError as exc:
            raise ValueError(
                f"{setting.name}={raw!r} is not a valid {setting.kind.__name__}"
            ) from exc
    return out


def cache_dir(settings: Mapping[str, Any]) -> Path:
    configured = settings.get("QC_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "qc-tool"
