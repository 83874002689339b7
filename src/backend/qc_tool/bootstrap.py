"""The one place that builds the collaborators from the settings: the web app, the CLI, the tests.

cosmicpython's ``bootstrap.py`` is the model: ``bootstrap(settings)`` picks the concrete
adapters (paramiko connector, SQLite cache, process pools) and hands them to the services;
each keyword replaces one collaborator, so a test passes a fake and the CLI its own choices.
Nothing here starts a thread or a process: pools start at their first use, and the web app
starts the sweeper (web/deps.build_context).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Final

from qc_tool.adapters.sftp.connect import SftpEndpoint
from qc_tool.config import Settings, load

if TYPE_CHECKING:
    # The scan's and the checks' parts, imported where they are built: the CLI builds its
    # endpoint from here first, and its login starts while they import (cli.py).
    from qc_tool.adapters.cache import SqliteCache
    from qc_tool.services.checks.options import CheckOptions
    from qc_tool.services.ports import Connector, ResultCache
    from qc_tool.services.scan.parsing import LazyParser
    from qc_tool.services.scan.site_analysis_service import ProgressCallback
    from qc_tool.services.workers import MeasuringPool

if TYPE_CHECKING:  # the web app's own parts: imported by bootstrap_app, never by the CLI
    from qc_tool.domain.models import ScanResult
    from qc_tool.domain.structure import StructureProfile
    from qc_tool.services.jobs import JobManager, SiteLocks
    from qc_tool.services.logins.held_connections import HeldConnections
    from qc_tool.services.logins.ratelimit import LoginLimiter
    from qc_tool.services.logins.sessions import SessionStore
    from qc_tool.services.logins.sweeper import Sweeper
    from qc_tool.services.previews import PreviewService
    from qc_tool.services.uploads.store import UploadStore

# (endpoint, sites root, username, password) -> a connector for that login.
Connect = Callable[[SftpEndpoint, str, str, str], "Connector"]


class _Unset:
    """A keyword not given: build the collaborator from the settings (None means none)."""


UNSET: Final = _Unset()


@dataclass(frozen=True)
class Collaborators:
    """What every entry point needs to scan and check a site: the CLI's whole world."""

    settings: Settings
    endpoint: SftpEndpoint
    connect: Connect  # the adapter a login's connector is made with (SftpConnector)
    # Read and written per user only: cache.for_user(creds.username). None: no cache (the
    # CLI's --no-cache, which must not even create the file).
    cache: SqliteCache | None
    parser: LazyParser | None  # EXIF parsing processes, started by the first scan
    check_options: CheckOptions = field(default_factory=lambda: _check_options())
    site_profile: StructureProfile | None = None  # QC_SITE_PROFILE: expected folders
    measuring: MeasuringPool = field(default_factory=lambda: _measuring(0))

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
        from qc_tool.services.scan.site_analysis_service import ScanOptions, scan_site

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


@dataclass(frozen=True, kw_only=True)
class AppCollaborators(Collaborators):
    """The web app's: the core ones, plus logins, jobs, previews, uploads and the sweeper."""

    sessions: SessionStore
    jobs: JobManager
    login_limiter: LoginLimiter
    previews: PreviewService
    held: HeldConnections  # one kept connection per login (previews, jobs' first pass)
    site_locks: SiteLocks
    uploads: UploadStore | None = None  # ZIP uploads (web/uploads.py)
    sweeper: Sweeper | None = None  # closes idle kept connections, ends idle logins


def bootstrap(
    settings: Settings | None = None,
    *,
    endpoint: SftpEndpoint | None = None,
    connect: Connect | None = None,
    cache: SqliteCache | None | _Unset = UNSET,
    parser: LazyParser | None | _Unset = UNSET,
    measuring: MeasuringPool | None = None,
    check_options: CheckOptions | None = None,
    site_profile: StructureProfile | None | _Unset = UNSET,
) -> Collaborators:
    """The core collaborators from ``settings`` (default: the environment's); keywords replace one.

    Bad settings files (check profile, site profile, minimum resolution) stop here, at start-up.
    """
    from qc_tool.adapters.cache import SqliteCache
    from qc_tool.adapters.sftp.connection import SftpConnector
    from qc_tool.services.workers import check_workers_setting

    s = settings if settings is not None else load()
    return Collaborators(
        settings=s,
        endpoint=sftp_endpoint(s) if endpoint is None else endpoint,
        connect=SftpConnector if connect is None else connect,
        cache=SqliteCache(s.cache_folder()) if isinstance(cache, _Unset) else cache,
        parser=_parser(s) if isinstance(parser, _Unset) else parser,
        check_options=settings_check_options(s) if check_options is None else check_options,
        measuring=_measuring(check_workers_setting(s.check_workers))
        if measuring is None
        else measuring,
        site_profile=_site_profile(s) if isinstance(site_profile, _Unset) else site_profile,
    )


def bootstrap_app(
    settings: Settings | None = None,
    *,
    uploads: UploadStore | None | _Unset = UNSET,
    sessions: SessionStore | None = None,
    held: HeldConnections | None = None,
    jobs: JobManager | None = None,
    login_limiter: LoginLimiter | None = None,
    **core: Any,
) -> AppCollaborators:
    """The web app's collaborators: ``bootstrap``'s (``core`` keywords go to it), and its own.

    The web's modules are imported here, so the CLI, which needs only ``bootstrap``, starts
    without Pillow, the upload store or the job manager (docs/performance.md: start-up).
    """
    from qc_tool.adapters.local import LocalConnector
    from qc_tool.services.jobs import JobManager, SiteLocks
    from qc_tool.services.logins.held_connections import HeldConnections
    from qc_tool.services.logins.ratelimit import LoginLimiter
    from qc_tool.services.logins.sessions import SessionStore
    from qc_tool.services.logins.sweeper import Sweeper, sweep_interval
    from qc_tool.services.previews import PreviewService
    from qc_tool.services.uploads.store import UploadStore
    from qc_tool.services.uploads.zip_safety import ZipLimits

    base = bootstrap(settings, **core)
    s = base.settings
    idle_s = s.session_hours * 3600
    if sessions is None:
        sessions = SessionStore(idle_seconds=idle_s, max_seconds=s.session_max_hours * 3600)
    if held is None:
        held = HeldConnections(idle_seconds=s.preview_idle_s)
    if jobs is None:
        jobs = JobManager(max_jobs=s.max_jobs, per_login=s.max_jobs_per_login)
    if login_limiter is None:
        login_limiter = LoginLimiter(max_failures=s.login_max_failures, window_s=s.login_window_s)
    if isinstance(uploads, _Unset):
        limits = ZipLimits.of_megabytes(s.upload_max_mb, s.upload_max_files, s.upload_max_total_mb)
        uploads = UploadStore(
            limits, keep_seconds=s.upload_keep_minutes * 60, open_folder=LocalConnector
        )
    return AppCollaborators(
        **{f.name: getattr(base, f.name) for f in fields(base)},
        sessions=sessions,
        jobs=jobs,
        login_limiter=login_limiter,
        previews=PreviewService(),
        held=held,
        site_locks=SiteLocks(),
        uploads=uploads,
        sweeper=Sweeper(
            [held.close_idle, sessions.expire], sweep_interval(s.preview_idle_s, idle_s)
        ),
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
    from qc_tool.services.checks.options import MB, load_profile, parse_resolution

    return _check_options(
        profile=load_profile(settings.check_profile) if settings.check_profile else None,
        min_resolution=parse_resolution(settings.min_resolution)
        if settings.min_resolution
        else None,
        max_connections=settings.max_connections,
        memory_budget=settings.check_memory_mb * MB,
    )


def _check_options(**options: Any) -> CheckOptions:
    from qc_tool.services.checks.options import CheckOptions

    return CheckOptions(**options)


def _measuring(workers: int) -> MeasuringPool:
    from qc_tool.services.workers import MeasuringPool

    return MeasuringPool(workers)


def _parser(settings: Settings) -> LazyParser | None:
    from qc_tool.services.scan.parsing import LazyParser, workers_setting

    workers = workers_setting(settings.parse_workers)
    return LazyParser(workers) if workers else None  # 0: parse in the scan's own thread


def _site_profile(settings: Settings) -> StructureProfile | None:
    path = settings.site_profile
    if path is None:
        return None
    from qc_tool.services.scan.overview import load_site_profile  # numpy: only when one is set

    return load_site_profile(path)
