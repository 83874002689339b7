"""The web app's shared resources, built once per app, and the per-user objects made from them.

This is the web side's composition root: it is the one place that picks the concrete adapters
(paramiko connector, SQLite cache) and hands them to services; views only ask it for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import current_app

from qc_tool.adapters.cache import SqliteCache
from qc_tool.adapters.sftp.connect import SftpEndpoint
from qc_tool.adapters.sftp.connection import SftpConnector
from qc_tool.config import cache_dir
from qc_tool.domain.models import ScanResult
from qc_tool.errors import NotLoggedIn, RemoteUnavailable
from qc_tool.services.jobs import Job, JobManager, JobRunner
from qc_tool.services.parsing import LazyParser, workers_setting
from qc_tool.services.sessions import Credentials, SessionStore
from qc_tool.services.site_analysis_service import ScanOptions, scan_site

EXTENSION_KEY = "qc"


@dataclass(frozen=True)
class QCContext:
    """Everything the views share: settings, where the server is, logins, jobs and the cache."""

    settings: Mapping[str, Any]
    endpoint: SftpEndpoint
    sessions: SessionStore
    jobs: JobManager
    cache: SqliteCache
    parser: LazyParser | None  # EXIF parsing processes, started by the first scan

    @property
    def sites_root(self) -> str:
        return str(self.settings["QC_SITES_ROOT"])

    def connector(self, creds: Credentials) -> SftpConnector:
        """A connector for one user; connecting with it is one login attempt."""
        if not self.endpoint.host:
            raise RemoteUnavailable("no SFTP server is configured (QC_SFTP_HOST is empty)")
        return SftpConnector(self.endpoint, self.sites_root, creds.username, creds.password)

    def scan_runner(self, sid: str, site: str) -> JobRunner:
        """The job body for scanning ``site`` as the user of session ``sid``.

        The credentials are looked up when the job starts, not when it is queued, so a user
        who logs out while the job waits never has their password used again.
        """
        options = ScanOptions(max_connections=int(self.settings["QC_MAX_CONNECTIONS"]))

        def run(job: Job) -> ScanResult:
            creds = self.sessions.get(sid)
            if creds is None:
                raise NotLoggedIn("the login ended before the scan started")
            return scan_site(
                self.connector(creds),
                self.cache,
                site,
                options=options,
                on_progress=job.progress,
                cancelled=job.cancelled,
                parser=self.parser,
            )

        return run

    def close(self) -> None:
        """Cancel running scans and wait for their threads (tests and orderly shutdown)."""
        self.jobs.shutdown()
        if self.parser is not None:
            self.parser.close()


def build_context(settings: Mapping[str, Any]) -> QCContext:
    """Make the app's shared resources from typed settings (see ``qc_tool.config``)."""
    known_hosts = settings.get("QC_KNOWN_HOSTS")
    endpoint = SftpEndpoint(
        host=str(settings.get("QC_SFTP_HOST") or ""),
        port=int(settings["QC_SFTP_PORT"]),
        known_hosts=Path(known_hosts) if known_hosts else None,
        connect_timeout=float(settings["QC_CONNECT_TIMEOUT"]),
        op_timeout=float(settings["QC_OP_TIMEOUT"]),
    )
    return QCContext(
        settings=settings,
        endpoint=endpoint,
        sessions=SessionStore(idle_seconds=float(settings["QC_SESSION_HOURS"]) * 3600),
        jobs=JobManager(max_jobs=int(settings["QC_MAX_JOBS"])),
        cache=SqliteCache(cache_dir(settings)),
        parser=LazyParser(workers)
        if (workers := workers_setting(settings.get("QC_PARSE_WORKERS")))
        else None,
    )


def qc() -> QCContext:
    """The current app's shared resources."""
    ctx = current_app.extensions[EXTENSION_KEY]
    assert isinstance(ctx, QCContext)
    return ctx
