"""The HTML pages: the sites list, starting a QC scan, and the QC page of one scan."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
from werkzeug.wrappers import Response

from qc_tool.domain.paths import safe_name
from qc_tool.domain.verdict import DECISION_LABELS
from qc_tool.errors import NotFound
from qc_tool.services.jobs import Job
from qc_tool.services.scan.sites import list_sites
from qc_tool.web.auth import current_login, login_required
from qc_tool.web.deps import qc

bp = login_required(Blueprint("pages", __name__))


@bp.get("/")
def sites() -> str:
    login = current_login()
    ctx = qc()
    connector = ctx.connector(login.creds)
    found = list_sites(connector)
    latest = {s.name: ctx.jobs.latest_for(login.sid, s.name) for s in found}
    # This user's own last QC of each site (no scan needed); never another user's.
    runs = ctx.user_cache(login.username).last_runs(connector.server_id)
    return render_template(
        "sites.html",
        sites=found,
        latest=latest,
        runs=runs,
        root=ctx.sites_root,
        decisions=DECISION_LABELS,
    )


@bp.post("/sites/<site>/qc")
def start_qc(site: str) -> Response:
    login = current_login()
    site = safe_name(site, "site")  # before anything reaches the server
    ctx = qc()
    job = ctx.jobs.start(
        login.sid, site, ctx.scan_runner(login.sid, site), checks=ctx.checks_enabled
    )
    return redirect(url_for("pages.qc_page", site=site, job_id=job.id), code=303)


def site_job(site: str, job_id: str) -> Job:
    """The current user's job ``job_id``, if it is a QC of ``site``; NotFound otherwise."""
    login = current_login()
    site = safe_name(site, "site")  # a bad name is refused before any job is looked up
    job = qc().jobs.get(job_id, login.sid)
    if job.site != site:
        raise NotFound("no such job for this site")
    return job


@bp.get("/sites/<site>/qc/<job_id>")
def qc_page(site: str, job_id: str) -> str:
    job = site_job(site, job_id)
    ctx = qc()
    return render_template(
        "qc.html",
        site=job.site,
        job=job,
        state=job.public_state,
        result=job.scan_ready,  # published when the GPS pass ends, while the checks still run
        tile_url=ctx.settings.tile_url,
        tile_attribution=ctx.settings.tile_attribution,
    )
