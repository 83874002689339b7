"""Many users at once through gunicorn, as production runs the app (issue 6, point 14; issue 10, 8).

The app runs under gunicorn with start_qc_tool.sh's command and config module; eight users
with their own passwords log in, open the sites page, start "View QC" at once, each on their
own copy of a site (QC of one site runs one job at a time, so a shared site would queue them),
follow the job's event stream and check the result against the site's truth (bench/load.py
does each step, as a browser would). The server's cap on connections is set
below what the users want together, so it has to hold. The full-size run of 20 users is
``python -m bench.load``; its figures are in docs/reliability.md ("Load").

Then twenty users against OpenSSH's sshd with its stock ``MaxStartups 10:30:100`` (every user a
session of the test account): all twenty jobs must succeed, and sshd must never have had to
drop a connection.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from qc_tool.demo.sftp_server import SftpServerHandle
from qc_tool.demo.sites import SiteLayout, SiteTruth, generate_site, make_body

from bench.load import (
    AuthLog,
    ServerStats,
    UserSpec,
    account_logins,
    app_settings,
    link_sites,
    make_users,
    reopened_connections,
    run_users,
    sshd_log_stats,
    start_gunicorn,
    verdict_differences,
    worker_figures,
)

SITE = "30000001"
LAYOUT = SiteLayout(
    folders=(("Tower-Scans", 30), ("Antenna-Sector-A", 20), ("Site-Sign", 10)), without_gps=4
)
USERS = 8
CAP = 4  # connections to the server at once, all users together: below the 8 jobs' demand
MAX_RSS_MB = 600  # the gunicorn worker's peak resident memory (about 120 MB measured)
DEADLINE_S = 100.0  # a failure ends the test by then; a passing run takes ~10 s


SITES = [f"{SITE}-{i + 1:02d}" for i in range(USERS)]


@pytest.fixture
def site(sftp_root: Path, tmp_path: Path) -> SiteTruth:
    """The truth of every user's site: one generated site, hard-linked under each name."""
    truth = generate_site(tmp_path / "source", SITE, LAYOUT, body=make_body(LAYOUT))
    link_sites(tmp_path / "source" / SITE, sftp_root / "sites", SITES)
    return truth


@pytest.fixture
def auth_log() -> Iterator[AuthLog]:
    """The in-process server's password checks, by outcome and user."""
    log = AuthLog()
    logger = log.attach()
    level = logger.level
    yield log
    log.detach()
    logger.setLevel(level)


@pytest.fixture
def users() -> list[UserSpec]:
    return make_users(USERS, SITES)


@pytest.fixture
def server(
    make_sftp_server: Callable[..., SftpServerHandle],
    sftp_root: Path,
    users: list[UserSpec],
    site: SiteTruth,
) -> SftpServerHandle:
    return make_sftp_server(sftp_root, {u.username: u.password for u in users}, sites_root="/sites")


@pytest.mark.timeout(180)
def test_eight_users_at_once_through_gunicorn_get_right_results_within_the_cap(
    server: SftpServerHandle,
    site: SiteTruth,
    users: list[UserSpec],
    auth_log: AuthLog,
    tmp_path: Path,
) -> None:
    # One connection per pass, so each user's password attempts are known exactly; the jobs
    # all run at once (QC_MAX_JOBS), and want more connections together than the cap allows.
    settings = app_settings(
        server.port,
        server.sites_root,
        server.write_known_hosts(tmp_path / "known_hosts"),
        tmp_path / "cache",
        QC_MAX_SERVER_CONNECTIONS=str(CAP),
        QC_MAX_JOBS=str(USERS),
        QC_MAX_CONNECTIONS="1",
    )
    app = start_gunicorn(settings, tmp_path / "gunicorn.log")
    try:
        runs = run_users(
            app.host, app.port, users, site, checks=True, deadline=time.monotonic() + DEADLINE_S
        ).runs
        worker = worker_figures(app)
    finally:
        app.stop()

    # Every job ended done, its result equal to the truth image by image, with every readable
    # photo checked; each user then got 404 for a neighbour's job by every route, and logged out.
    assert [f"{r.username}: {p}" for r in runs if r.problems for p in r.problems] == []
    assert all(r.images == len(site.images) for r in runs)
    assert all(r.isolation_probes == 5 and r.logged_out for r in runs)
    # The same photos got the same verdicts, whether a job measured them or the cache had them.
    assert verdict_differences(runs) == []
    # No credential crossed: each user's attempts are exactly their own login, sites page, GPS
    # pass and (when it read photos) check pass; none was refused; one attempt per connection.
    stats = ServerStats.of(server, auth_log)
    logins = account_logins(runs, stats, max_connections=1, checks=True)
    assert logins.exact
    assert logins.problems == []
    assert sum(auth_log.ok.values()) == stats.connections
    assert any(r.checks_read for r in runs)
    # The cap held across all users (and was reached), and memory stayed bounded.
    assert stats.max_concurrent_channels == CAP
    assert worker.vm_hwm_mb < MAX_RSS_MB


SSHD_USERS = 20
THROTTLING = "beginning MaxStartups throttling"


@pytest.mark.timeout(600)
def test_twenty_users_against_a_stock_sshd_all_get_their_results(sshd: Any, tmp_path: Path) -> None:
    truth = generate_site(tmp_path / "source", SITE, LAYOUT, body=make_body(LAYOUT))
    sites = [f"{SITE}-{i + 1:02d}" for i in range(SSHD_USERS)]
    link_sites(tmp_path / "source" / SITE, tmp_path / "sshd-sites", sites)
    server = sshd(tmp_path / "sshd-sites")
    users = [UserSpec(server.username, server.password, site) for site in sites]
    # Every job at once, with the default pools and the default cap of 16 connections: the
    # logins of 20 sites pages, 20 GPS passes and 20 check passes come in bursts.
    settings = app_settings(
        server.port,
        server.sites_root,
        server.known_hosts,
        tmp_path / "cache",
        QC_MAX_JOBS=str(SSHD_USERS),
    )
    app = start_gunicorn(settings, tmp_path / "gunicorn.log")
    try:
        runs = run_users(
            app.host, app.port, users, truth, checks=True, deadline=time.monotonic() + 400
        ).runs
        worker = worker_figures(app)
    finally:
        app.stop()
    assert [f"{r.site}: {p}" for r in runs if r.problems for p in r.problems] == []
    assert all(r.images == len(truth.images) and r.logged_out for r in runs)
    assert verdict_differences(runs) == []
    log = server.log_text()
    stats = sshd_log_stats(log)
    assert account_logins(runs, stats, max_connections=4, checks=True).problems == []
    assert THROTTLING not in log  # never past MaxStartups: the cap on logins in progress
    assert reopened_connections(app.log_path.read_text(errors="replace")) == 0
    assert worker.vm_hwm_mb < MAX_RSS_MB
