"""The one place that builds the collaborators from the settings: the web app, the CLI, the tests.

cosmicpython's ``bootstrap.py`` is the model: ``bootstrap(settings)`` picks the concrete
adapters (paramiko connector, SQLite cache, process pools) and hands them to the services;
each keyword replaces one collaborator, so a test passes a fake and the CLI its own choices.
Nothing here starts a thread or a process: pools start at their first use, and the web app
starts the sweeper (web/deps.build_context).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from qc_tool.adapters.cache import SqliteCache
from qc_tool.adapters.local import LocalConnector
from qc_tool.adapters.sftp.connect import SftpEndpoint
from qc_tool.adapters.sftp.connection import SftpConnector
from qc_tool.config import Settings, load
from qc_tool.domain.models import ScanResult
from qc_tool.domain.structure import StructureProfile
from qc_tool.services.checks.result import load_profile, parse_resolution
from qc_tool.services.checks.run import MB, CheckOptions
from qc_tool.services.jobs import JobManager, SiteLocks
from qc_tool.services.logins.held_connections import HeldConnections
from qc_tool.services.logins.ratelimit import LoginLimiter
from qc_tool.services.logins.sessions import SessionStore
from qc_tool.services.logins.sweeper import Sweeper, sweep_interval
from qc_tool.services.ports import Connector, ResultCache
from qc_tool.services.previews import PreviewService
from qc_tool.services.scan.overview import load_site_profile
from qc_tool.services.scan.parsing import LazyParser, workers_setting
from qc_tool.services.scan.site_analysis_service import ProgressCallback, ScanOptions, scan_site
from qc_tool.services.uploads.store import UploadStore
from qc_tool.services.uploads.zip_safety import ZipLimits
from qc_tool.services.workers import MeasuringPool, check_workers_setting

# (endpoint, sites root, username, password) -> a connector for that login.
Connect = Callable[[SftpEndpoint, str, str, str], Connector]


class _Unset:
    """A keyword not given: build the collaborator from the settings (None means none)."""


UNSET: Final = _Unset()


@dataclass(frozen=True)
class Collaborators:
    """Everything the entry points share: settings, where the server is, logins, jobs, caches."""

    settings: Settings
    endpoint: SftpEndpoint
    connect: Connect  # the adapter a login's connector is made with (SftpConnector)
    sessions: SessionStore
    jobs: JobManager
    # Read and written per user only: cache.for_user(creds.username). None: no cache (the
    # CLI's --no-cache, which must not even create the file).
    cache: SqliteCache | None
    parser: LazyParser | None  # EXIF parsing processes, started by the first scan
    login_limiter: LoginLimiter
    check_options: CheckOptions = field(default_factory=CheckOptions)
    site_profile: StructureProfile | None = None  # QC_SITE_PROFILE: expected folders
    previews: PreviewService = field(default_factory=PreviewService)
    held: HeldConnections = field(default_factory=HeldConnections)  # one per login, previews
    uploads: UploadStore | None = None  # ZIP uploads (web/uploads.py)
    site_locks: SiteLocks = field(default_factory=SiteLocks)
    measuring: MeasuringPool = field(default_factory=lambda: MeasuringPool(0))
    sweeper: Sweeper | None = None  # closes idle kept connections, ends idle logins

    def scan(
        self,
        connector: Connector,
        cache: ResultCache,
        site: str,
        *,
        max_connections: int,
        on_progress: ProgressCallback,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> ScanResult:
        """The GPS pass of ``site`` as the web app and the CLI run it: on this parsing pool."""
        options = ScanOptions(max_connections=max_connections)
        return scan_site(
            connector,
            cache,
            site,
            options=options,
            on_progress=on_progress,
            cancelled=cancelled,
            parser=self.parser,
        )


def bootstrap(
    settings: Settings | None = None,
    *,
    endpoint: SftpEndpoint | None = None,
    connect: Connect = SftpConnector,
    cache: SqliteCache | None | _Unset = UNSET,
    parser: LazyParser | None | _Unset = UNSET,
    measuring: MeasuringPool | None = None,
    check_options: CheckOptions | None = None,
    site_profile: StructureProfile | None | _Unset = UNSET,
    uploads: UploadStore | None | _Unset = UNSET,
    sessions: SessionStore | None = None,
    held: HeldConnections | None = None,
    jobs: JobManager | None = None,
    login_limiter: LoginLimiter | None = None,
) -> Collaborators:
    """The collaborators from ``settings`` (default: the environment's); keywords replace one.

    Bad settings files (check profile, site profile, minimum resolution) stop here, at start-up.
    """
    s = settings if settings is not None else load()
    idle_s = s.session_hours * 3600
    if sessions is None:
        sessions = SessionStore(idle_seconds=idle_s, max_seconds=s.session_max_hours * 3600)
    if held is None:
        held = HeldConnections(idle_seconds=s.preview_idle_s)
    if jobs is None:
        jobs = JobManager(max_jobs=s.max_jobs, per_login=s.max_jobs_per_login)
    if login_limiter is None:
        login_limiter = LoginLimiter(max_failures=s.login_max_failures, window_s=s.login_window_s)
    return Collaborators(
        settings=s,
        endpoint=sftp_endpoint(s) if endpoint is None else endpoint,
        connect=connect,
        sessions=sessions,
        held=held,
        sweeper=Sweeper(
            [held.close_idle, sessions.expire], sweep_interval(s.preview_idle_s, idle_s)
        ),
        jobs=jobs,
        cache=SqliteCache(s.cache_folder()) if isinstance(cache, _Unset) else cache,
        parser=_parser(s) if isinstance(parser, _Unset) else parser,
        login_limiter=login_limiter,
        check_options=settings_check_options(s) if check_options is None else check_options,
        uploads=_uploads(s) if isinstance(uploads, _Unset) else uploads,
        measuring=MeasuringPool(check_workers_setting(s.check_workers))
        if measuring is None
        else measuring,
        site_profile=_site_profile(s) if isinstance(site_profile, _Unset) else site_profile,
    )


def sftp_endpoint(settings: Settings) -> SftpEndpoint:
    """The configured SFTP server with the settings' limits (the CLI replaces where it is)."""
    return SftpEndpoint(
        host=settings.sftp_host,
        port=settings.sftp_port,
        known_hosts=settings.known_hosts,
        connect_timeout=settings.connect_timeout,
        op_timeout=settings.op_timeout,
        max_connections=settings.max_server_connections,
        max_handshakes=settings.max_server_handshakes,
        trust_on_first_use=settings.trust_on_first_use,
        max_listing=settings.max_listing,
    )


def settings_check_options(settings: Settings) -> CheckOptions:
    """The photo checks' options from QC_CHECK_PROFILE, QC_MIN_RESOLUTION, QC_MAX_CONNECTIONS."""
    return CheckOptions(
        profile=load_profile(settings.check_profile) if settings.check_profile else None,
        min_resolution=parse_resolution(settings.min_resolution)
        if settings.min_resolution
        else None,
        max_connections=settings.max_connections,
        memory_budget=settings.check_memory_mb * MB,
    )


def _parser(settings: Settings) -> LazyParser | None:
    workers = workers_setting(settings.parse_workers)
    return LazyParser(workers) if workers else None  # 0: parse in the scan's own thread


def _site_profile(settings: Settings) -> StructureProfile | None:
    path = settings.site_profile
    return load_site_profile(path) if path is not None else None


def _uploads(settings: Settings) -> UploadStore:
    limits = ZipLimits.of_megabytes(
        settings.upload_max_mb, settings.upload_max_files, settings.upload_max_total_mb
    )
    return UploadStore(
        limits, keep_seconds=settings.upload_keep_minutes * 60, open_folder=LocalConnector
    )
