"""The web app's shared resources, built once per app, and the per-user objects made from them.

qc_tool.bootstrap picks the concrete adapters (paramiko connector, SQLite cache, pools) from the
settings; this module makes the app's ``QCContext`` of them, and views only ask it for them.
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass, fields
from typing import Any

from flask import current_app

from qc_tool.adapters.cache import UserCache
from qc_tool.bootstrap import AppCollaborators, bootstrap_app
from qc_tool.config import Settings
from qc_tool.domain.models import ScanResult
from qc_tool.domain.verdict import ChecksState
from qc_tool.errors import NotLoggedIn, QCError, RemoteUnavailable
from qc_tool.services.checks.result import site_verdict
from qc_tool.services.checks.run import CheckReport, check_site
from qc_tool.services.jobs import Job, JobRunner
from qc_tool.services.logins.sessions import Credentials, LoginConnector
from qc_tool.services.ports import Connector
from qc_tool.services.scan.overview import site_run, site_structure

EXTENSION_KEY = "qc"


@dataclass(frozen=True)
class QCContext(AppCollaborators):
    """What the views share (qc_tool.bootstrap builds it), and the web's use of it: a login's
    connector, the body of a QC job, forgetting a login, closing down."""

    @property
    def sites_root(self) -> str:
        return self.settings.sites_root

    def connector(self, creds: Credentials) -> Connector:
        """A connector for one user; connecting with it is one login attempt.

        The server's first refusal ends the login (``SessionStore.refused``), and an ended
        login never connects again.
        """
        if not self.endpoint.host:
            raise RemoteUnavailable("no SFTP server is configured (QC_SFTP_HOST is empty)")
        sftp = self.connect(self.endpoint, self.sites_root, creds.username, creds.password)
        return LoginConnector(sftp, creds, self.sessions.refused)

    @property
    def checks_enabled(self) -> bool:
        return self.settings.checks

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
            # The job's first connection is the login's kept one: a rescan costs no login.
            connector = self.held.lend(sid, self.connector(creds))
            key = self.site_lock_key(creds, site)
            job.waiting_for("another QC of this site to finish (it then reads from the cache)")
            if not self.site_locks.acquire(key, job.cancelled):
                return
            job.waiting_for(None)
            try:
                self._qc(job, connector, self.user_cache(creds.username), site, cap)
            finally:
                self.site_locks.release(key)

        return run

    def user_cache(self, username: str) -> UserCache:
        """The cache rows of one user (adapters/cache.py); the web app always has a cache."""
        assert self.cache is not None
        return self.cache.for_user(username)

    def site_lock_key(self, creds: Credentials, site: str) -> tuple[str, str]:
        """One QC of a site at a time per user: the cache is per user (adapters/cache.py), so
        only the same user's next QC of the site finds it warm; others need not wait."""
        return (f"{creds.username}@{self.endpoint.server_id}{self.sites_root}", site)

    def _qc(self, job: Job, connector: Connector, cache: UserCache, site: str, cap: int) -> None:
        result = self.scan(
            connector,
            cache,
            site,
            max_connections=cap,
            on_progress=job.progress,
            cancelled=job.cancelled,
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


def build_context(settings: Settings, **overrides: Any) -> QCContext:
    """The app's shared resources: ``bootstrap_app(settings, **overrides)``, its sweeper started."""
    parts = bootstrap_app(settings, **overrides)
    ctx = QCContext(**{f.name: getattr(parts, f.name) for f in fields(parts)})
    # A login that expires or is refused is forgotten as a logout is: jobs, uploads, connection.
    ctx.sessions.on_expire = ctx.forget_login
    if ctx.sweeper is not None:
        ctx.sweeper.start()
    return ctx


def qc() -> QCContext:
    """The current app's shared resources."""
    ctx = current_app.extensions[EXTENSION_KEY]
    assert isinstance(ctx, QCContext)
    return ctx
