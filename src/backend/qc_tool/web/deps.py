"""The web app's shared resources, built once per app, and the per-user objects made from them.

This is the web side's composition root: it is the one place that picks the concrete adapters
(paramiko connector, SQLite cache) and hands them to services; views only ask it for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import current_app

from qc_tool.adapters.cache import SqliteCache, UserCache
from qc_tool.adapters.sftp.connect import SftpEndpoint
from qc_tool.adapters.sftp.connection import SftpConnector
from qc_tool.config import cache_dir
from qc_tool.domain.models import ScanResult
from qc_tool.domain.structure import StructureProfile
from qc_tool.domain.verdict import ChecksState
from qc_tool.errors import NotLoggedIn, QCError, RemoteUnavailable
from qc_tool.services.checks.result import load_profile, parse_resolution, site_verdict
from qc_tool.services.checks.run import CheckOptions, CheckReport, check_site, memory_budget
from qc_tool.services.jobs import Job, JobManager, JobRunner, SiteLocks
from qc_tool.services.logins.held_connections import HeldConnections
from qc_tool.services.logins.sessions import Credentials, LoginConnector, SessionStore
from qc_tool.services.logins.sweeper import Sweeper, sweep_interval
from qc_tool.services.ports import Connector
from qc_tool.services.previews import PreviewService
from qc_tool.services.scan.overview import load_site_profile, site_run, site_structure
from qc_tool.services.scan.parsing import LazyParser, workers_setting
from qc_tool.services.scan.site_analysis_service import ScanOptions, scan_site
from qc_tool.services.uploads.store import UploadStore
from qc_tool.services.workers import MeasuringPool, check_workers_setting

EXTENSION_KEY = "qc"


@dataclass(frozen=True)
class QCContext:
    """Everything the views share: settings, where the server is, logins, jobs and the cache."""

    settings: Mapping[str, Any]
    endpoint: SftpEndpoint
    sessions: SessionStore
    jobs: JobManager
    cache: SqliteCache  # read and written per user only: cache.for_user(creds.username)
    parser: LazyParser | None  # EXIF parsing processes, started by the first scan
    check_options: CheckOptions = field(default_factory=CheckOptions)
    site_profile: StructureProfile | None = None  # QC_SITE_PROFILE: expected folders
    previews: PreviewService = field(default_factory=PreviewService)
    held: HeldConnections = field(default_factory=HeldConnections)  # one per login, previews
    uploads: UploadStore | None = None  # ZIP uploads (web/uploads.py)
    site_locks: SiteLocks = field(default_factory=SiteLocks)
    measuring: MeasuringPool = field(default_factory=lambda: MeasuringPool(0))
    sweeper: Sweeper | None = None  # closes idle kept connections, ends idle logins

    @property
    def sites_root(self) -> str:
        return str(self.settings["QC_SITES_ROOT"])

    def connector(self, creds: Credentials) -> Connector:
        """A connector for one user; connecting with it is one login attempt.

        The server's first refusal ends the login (``SessionStore.refused``), and an ended
        login never connects again.
        """
        if not self.endpoint.host:
            raise RemoteUnavailable("no SFTP server is configured (QC_SFTP_HOST is empty)")
        sftp = SftpConnector(self.endpoint, self.sites_root, creds.username, creds.password)
        return LoginConnector(sftp, creds, self.sessions.refused)

    @property
    def checks_enabled(self) -> bool:
        return bool(self.settings["QC_CHECKS"])

    def check_executor(self) -> tuple[Executor, int]:
        """Where the checks measure pixels, and how many photos at once."""
        return self.measuring.executor()

    def scan_runner(self, sid: str, site: str) -> JobRunner:
        """The job body for QC of ``site`` as the user of session ``sid``: GPS, then checks.

        The credentials are looked up when the job starts, not when it is queued, so a user
        who logs out while the job waits never has their password used again. The GPS
        result is published before the checks start; a failed check pass keeps it.
        """
        cap = self.check_options.max_connections

        def run(job: Job) -> None:
            creds = self.sessions.get(sid)
            if creds is None:
                raise NotLoggedIn("the login ended before the scan started")
            connector = self.connector(creds)
            key = self.site_lock_key(creds, site)
            job.waiting_for("another QC of this site to finish (it then reads from the cache)")
            if not self.site_locks.acquire(key, job.cancelled):
                return
            job.waiting_for(None)
            try:
                self._qc(job, connector, self.cache.for_user(creds.username), site, cap)
            finally:
                self.site_locks.release(key)

        return run

    def site_lock_key(self, creds: Credentials, site: str) -> tuple[str, str]:
        """One QC of a site at a time per user: the cache is per user (adapters/cache.py), so
        only the same user's next QC of the site finds it warm; others need not wait."""
        return (f"{creds.username}@{self.endpoint.server_id}{self.sites_root}", site)

    def _qc(self, job: Job, connector: Connector, cache: UserCache, site: str, cap: int) -> None:
        result = scan_site(
            connector,
            cache,
            site,
            options=ScanOptions(max_connections=cap),
            on_progress=job.progress,
            cancelled=job.cancelled,
            parser=self.parser,
        )
        if job.cancelled():
            return
        structure = site_structure(self.site_profile, result) if self.site_profile else None
        job.scan_finished(result, structure)
        report = self._check(job, connector, cache, result) if job.checks_wanted else None
        if not job.cancelled():
            # Checks wanted but no report: they failed (the job says why); not wanted: not run.
            state: ChecksState = (
                "done" if report is not None else "failed" if job.checks_wanted else "not_run"
            )
            verdict = site_verdict(result, report, structure, state)
            cache.record_run(connector.server_id, site_run(result.site, verdict))

    def _check(
        self, job: Job, connector: Connector, cache: UserCache, result: ScanResult
    ) -> CheckReport | None:
        job.checks_started()
        executor, workers = self.check_executor()
        try:
            report = check_site(
                connector,
                result,
                executor,
                options=self.check_options,
                on_progress=job.checks_progress,
                cancelled=job.cancelled,
                workers=workers,
                cache=cache,
            )
        except QCError as exc:  # the GPS result stands; the page says why the checks stopped
            job.checks_failed(exc.message)
            return None
        job.checks_finished(report)
        return report

    def forget_login(self, sid: str) -> None:
        """Logout or expiry: stop the login's jobs, drop its uploads and kept connection."""
        self.jobs.cancel_all(sid)
        if self.uploads is not None:
            self.uploads.drop_owner(sid)
        self.held.forget(sid)

    def close(self) -> None:
        """Cancel running jobs and wait for their threads (tests and orderly shutdown)."""
        if self.sweeper is not None:
            self.sweeper.stop()
        if self.uploads is not None:
            self.uploads.close()  # first: its checks measure on the measuring pool's processes
        self.jobs.shutdown()
        if self.parser is not None:
            self.parser.close()
        self.measuring.close()
        self.held.close_all()


def build_context(settings: Mapping[str, Any]) -> QCContext:
    """Make the app's shared resources from typed settings (see ``qc_tool.config``)."""
    known_hosts = settings.get("QC_KNOWN_HOSTS")
    endpoint = SftpEndpoint(
        host=str(settings.get("QC_SFTP_HOST") or ""),
        port=int(settings["QC_SFTP_PORT"]),
        known_hosts=Path(known_hosts) if known_hosts else None,
        connect_timeout=float(settings["QC_CONNECT_TIMEOUT"]),
        op_timeout=float(settings["QC_OP_TIMEOUT"]),
        max_connections=int(settings["QC_MAX_SERVER_CONNECTIONS"]),
        max_handshakes=int(settings["QC_MAX_SERVER_HANDSHAKES"]),
        trust_on_first_use=bool(settings["QC_TRUST_ON_FIRST_USE"]),
        max_listing=int(settings["QC_MAX_LISTING"]),
    )
    idle_s = float(settings["QC_SESSION_HOURS"]) * 3600
    keep_s = float(settings["QC_PREVIEW_IDLE_S"])
    sessions = SessionStore(
        idle_seconds=idle_s, max_seconds=float(settings["QC_SESSION_MAX_HOURS"]) * 3600
    )
    held = HeldConnections(idle_seconds=keep_s)
    ctx = QCContext(
        settings=settings,
        endpoint=endpoint,
        sessions=sessions,
        held=held,
        sweeper=Sweeper([held.close_idle, sessions.expire], sweep_interval(keep_s, idle_s)),
        jobs=JobManager(
            max_jobs=int(settings["QC_MAX_JOBS"]),
            per_login=int(settings["QC_MAX_JOBS_PER_LOGIN"]),
        ),
        cache=SqliteCache(cache_dir(settings)),
        parser=LazyParser(workers)
        if (workers := workers_setting(settings.get("QC_PARSE_WORKERS")))
        else None,
        check_options=check_options(settings),
        uploads=UploadStore.from_settings(settings),
        measuring=MeasuringPool(check_workers_setting(settings.get("QC_CHECK_WORKERS"))),
        site_profile=load_site_profile(Path(path))
        if (path := settings.get("QC_SITE_PROFILE"))
        else None,
    )
    # A login that expires or is refused is forgotten as a logout is: jobs, uploads, connection.
    ctx.sessions.on_expire = ctx.forget_login
    if ctx.sweeper is not None:
        ctx.sweeper.start()
    return ctx


def check_options(settings: Mapping[str, Any]) -> CheckOptions:
    """The photo checks' options from QC_CHECK_PROFILE and QC_MIN_RESOLUTION (bad ones stop start-up)."""
    profile = settings.get("QC_CHECK_PROFILE")
    resolution = settings.get("QC_MIN_RESOLUTION")
    return CheckOptions(
        profile=load_profile(Path(profile)) if profile else None,
        min_resolution=parse_resolution(resolution) if resolution else None,
        max_connections=int(settings["QC_MAX_CONNECTIONS"]),
        memory_budget=memory_budget(settings),
    )


def qc() -> QCContext:
    """The current app's shared resources."""
    ctx = current_app.extensions[EXTENSION_KEY]
    assert isinstance(ctx, QCContext)
    return ctx
