"""Every setting in one table: name, default, help, kind. Read from the environment once, at start-up.

``load()`` parses and checks each value once and returns a frozen ``Settings``: typed fields,
so nothing downstream looks a setting up by its name or re-casts a string (httpx's ``Timeout``
and datasette's settings are the models). docs/configuration.md is checked against this table
by a test, so a setting cannot be added without being documented.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Kind:
    """How a setting's text becomes its value; ``name`` is what an error says it should be."""

    name: str
    parse: Callable[[str], Any]


def _flag(raw: str) -> bool:
    return int(raw) != 0  # as documented: 1 on, 0 off (any other whole number is on)


def _count(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError(raw)
    return value


def _positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError(raw)
    return value


TEXT = Kind("text", str)
INT = Kind("int", int)
POSITIVE = Kind("whole number of 1 or more", _positive)
FLOAT = Kind("float", float)
FLAG = Kind("flag (1 or 0)", _flag)
COUNT = Kind("whole number of 0 or more", _count)  # empty: None, the setting's computed default
PATH = Kind("path", Path)  # empty: None, not set
OPTIONAL = Kind("text", str)  # empty: None, not set


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    default: str
    help: str
    kind: Kind = TEXT

    @property
    def attribute(self) -> str:
        """Its field of ``Settings``: the name without ``QC_``, in lower case."""
        return self.name.removeprefix("QC_").lower()


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "QC_SFTP_HOST",
        "",
        "SFTP server host. Empty: start_qc_tool.sh runs the built-in demo server.",
    ),
    Setting("QC_SFTP_PORT", "22", "SFTP server port.", INT),
    Setting(
        "QC_SITES_ROOT",
        "/sites",
        "Absolute path of the folder holding the sites on the SFTP server.",
    ),
    Setting(
        "QC_KNOWN_HOSTS",
        "",
        "known_hosts file with the SFTP server's host key; unknown or changed keys are refused.",
        PATH,
    ),
    Setting(
        "QC_TRUST_ON_FIRST_USE",
        "0",
        "1: an unknown server's host key is recorded in QC_KNOWN_HOSTS after the first successful "
        "login (changed keys are still refused); 0: unknown keys are refused.",
        FLAG,
    ),
    Setting(
        "QC_SECRET_KEY",
        "",
        "Key signing session cookies. Required in production; a random one is made per process otherwise.",
    ),
    Setting("QC_HTTP_HOST", "127.0.0.1", "Address the web server listens on.", TEXT),
    Setting("QC_PORT", "8080", "Port the web server listens on.", INT),
    Setting(
        "QC_TRUSTED_PROXIES",
        "0",
        "How many reverse proxies in front of the app to believe X-Forwarded-For and "
        "X-Forwarded-Proto from (0: none; the client's address is the connection's). Behind one "
        "nginx, 1: the login rate limit then counts each client's own address.",
        INT,
    ),
    Setting(
        "QC_REQUEST_TIMEOUT",
        "10",
        "Seconds a client has to send a request's head (and a form body) before the web server "
        "answers 408 and closes; requests are read in full before a thread takes them.",
        FLOAT,
    ),
    Setting(
        "QC_MAX_CONNECTIONS",
        "4",
        "Most SSH connections one scan opens (the pool is 2-4 by folder size).",
        INT,
    ),
    Setting(
        "QC_MAX_SERVER_CONNECTIONS",
        "16",
        "Most SSH connections this process holds to the SFTP server, all users together; "
        "a scan's first connection waits up to 60 s for a free one, extra pool connections do not wait.",
        INT,
    ),
    Setting(
        "QC_MAX_SERVER_HANDSHAKES",
        "8",
        "Most SSH connections of this process logging in to the SFTP server at once (TCP connect "
        "to login done), all users together; keep it below the server's MaxStartups (OpenSSH: 10).",
        INT,
    ),
    Setting(
        "QC_MAX_LISTING",
        "20000",
        "Most entries one folder listing on the SFTP server may hold (sites root, a site, a "
        "folder); a larger folder is an error naming it, never a listing silently cut short.",
        INT,
    ),
    Setting(
        "QC_CACHE_DIR",
        "",
        "Folder of the per-file result cache (SQLite). Empty: ~/.cache/qc-tool.",
        PATH,
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
        FLOAT,
    ),
    Setting(
        "QC_SESSION_MAX_HOURS",
        "12",
        "Hours a login stays valid at most, however active; then the user logs in again.",
        FLOAT,
    ),
    Setting(
        "QC_PREVIEW_IDLE_S",
        "120",
        "Seconds a login's preview connection stays open after its last use (it holds one of "
        "QC_MAX_SERVER_CONNECTIONS meanwhile); closed within a quarter of this more, 10 s at most.",
        FLOAT,
    ),
    Setting(
        "QC_LOGIN_MAX_FAILURES",
        "5",
        "Refused passwords allowed per client address and per username within QC_LOGIN_WINDOW_S; "
        "then logins answer 429 without contacting the SFTP server.",
        INT,
    ),
    Setting(
        "QC_LOGIN_WINDOW_S",
        "900",
        "Seconds over which failed logins are counted (a refused client may try again once its "
        "oldest counted failure is this old).",
        FLOAT,
    ),
    Setting(
        "QC_CONNECT_TIMEOUT", "10", "Seconds to connect and authenticate to the SFTP server.", FLOAT
    ),
    Setting(
        "QC_OP_TIMEOUT",
        "30",
        "Seconds an SFTP operation may wait for a reply before the connection is dropped.",
        FLOAT,
    ),
    Setting(
        "QC_PARSE_WORKERS",
        "",
        "Processes parsing EXIF while the scan reads. Empty: cores - 1; 0: parse in the scan's own thread.",
        COUNT,
    ),
    Setting(
        "QC_CHECK_WORKERS",
        "",
        "Processes measuring photos for the checks. Empty: one per core; 0: threads in the app's process.",
        COUNT,
    ),
    Setting(
        "QC_CHECK_MEMORY_MB",
        "128",
        "Photos hold at most this much memory per check pass, from their first read until "
        "measured (a larger photo is read and measured alone).",
        POSITIVE,
    ),
    Setting("QC_MAX_JOBS", "4", "Scans that may run at once; more wait in a queue.", POSITIVE),
    Setting(
        "QC_MAX_JOBS_PER_LOGIN",
        "2",
        "QC runs one login may have queued or running; one more is refused (429) until one ends.",
        POSITIVE,
    ),
    Setting(
        "QC_CHECKS",
        "1",
        "1: View QC checks the photos (blur, exposure, duplicates ...) after the GPS pass; 0: GPS only.",
        FLAG,
    ),
    Setting(
        "QC_CHECK_PROFILE",
        "",
        "JSON file of capture rules (max ISO, slowest shutter, gimbal pitch, cameras); see docs/checks.md.",
        PATH,
    ),
    Setting(
        "QC_SITE_PROFILE",
        "",
        "JSON file of what every site holds (expected folders, minimum photos); see docs/checks.md.",
        PATH,
    ),
    Setting(
        "QC_MIN_RESOLUTION",
        "",
        "Flag photos smaller than WIDTHxHEIGHT (e.g. 4000x3000). Empty: no resolution check.",
        OPTIONAL,
    ),
    Setting(
        "QC_PRODUCTION",
        "0",
        "1 in production: refuse to start without QC_SECRET_KEY, mark cookies Secure.",
        FLAG,
    ),
    Setting("QC_LOG_LEVEL", "INFO", "Log level of the tool's own messages."),
    Setting(
        "QC_UPLOAD_MAX_MB",
        "2048",
        "Largest ZIP of photos accepted for upload, in MB (the file as sent).",
        FLOAT,
    ),
    Setting(
        "QC_UPLOAD_MAX_FILES",
        "5000",
        "Most entries (files and folders) an uploaded ZIP may hold.",
        INT,
    ),
    Setting(
        "QC_UPLOAD_MAX_TOTAL_MB",
        "2560",
        "Most MB the photos of an uploaded ZIP may unpack to (declared, and counted while unpacking).",
        FLOAT,
    ),
    Setting(
        "QC_UPLOAD_KEEP_MINUTES",
        "60",
        "Minutes an upload's results and files are kept after its checks finish; then deleted.",
        FLOAT,
    ),
)


@dataclass(frozen=True, slots=True)
class Settings:
    """The settings, typed: one field per ``SETTINGS`` row, named as ``Setting.attribute`` says.

    Empty values: a path, a worker count or the minimum resolution is None (not set; a
    worker count then takes its computed default), a number or flag its default, text stays empty.
    """

    sftp_host: str
    sftp_port: int
    sites_root: str
    known_hosts: Path | None
    trust_on_first_use: bool
    secret_key: str = field(repr=False)  # never in a log line or a traceback's locals
    http_host: str
    port: int
    trusted_proxies: int
    request_timeout: float
    max_connections: int
    max_server_connections: int
    max_server_handshakes: int
    max_listing: int
    cache_dir: Path | None
    tile_url: str
    tile_attribution: str
    session_hours: float
    session_max_hours: float
    preview_idle_s: float
    login_max_failures: int
    login_window_s: float
    connect_timeout: float
    op_timeout: float
    parse_workers: int | None
    check_workers: int | None
    check_memory_mb: int
    max_jobs: int
    max_jobs_per_login: int
    checks: bool
    check_profile: Path | None
    site_profile: Path | None
    min_resolution: str | None
    production: bool
    log_level: str
    upload_max_mb: float
    upload_max_files: int
    upload_max_total_mb: float
    upload_keep_minutes: float

    def cache_folder(self) -> Path:
        """QC_CACHE_DIR, or the user's cache folder (XDG_CACHE_HOME, else ~/.cache) + qc-tool."""
        if self.cache_dir is not None:
            return self.cache_dir
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(base) / "qc-tool"


_OPTIONAL = (PATH, COUNT, OPTIONAL)  # an empty value of these kinds is None: not set


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the environment (or ``environ``), each parsed and checked once.

    A value that does not parse stops start-up with an error naming the setting.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = env.get(setting.name, setting.default)
        values[setting.attribute] = _parse(setting, raw)
    return Settings(**values)


def _parse(setting: Setting, raw: str) -> Any:
    if setting.kind is TEXT:
        return raw
    if not raw.strip():
        if setting.kind in _OPTIONAL:
            return None
        raw = setting.default  # a number or flag left empty: its default
    try:
        return setting.kind.parse(raw)
    except ValueError as exc:
        raise ValueError(f"{setting.name}={raw!r} is not a valid {setting.kind.name}") from exc
