"""The HTML pages: the sites list, starting a QC scan, and the QC page of one scan."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from flask import Blueprint, redirect, render_template, url_for
from werkzeug.wrappers import Response

from qc_tool.domain.checks.result import ImageChecks
from qc_tool.domain.models import ScanResult
from qc_tool.domain.paths import safe_name
from qc_tool.errors import NotFound
from qc_tool.services.login import list_sites
from qc_tool.services.site_analysis_service import images_without_gps
from qc_tool.services.validation_service import CheckReport, CheckStats
from qc_tool.web.auth import current_login
from qc_tool.web.deps import qc

bp = Blueprint("pages", __name__)

FOLDER_COLOURS = 12  # CSS classes .c0 ... .c11; the map reads each folder's colour from them


@dataclass(frozen=True)
class Totals:
    """The numbers at the top of the QC page."""

    images: int
    gps_points: int
    missing_gps: int
    errors: int
    seconds: float
    images_per_s: float
    connections: int
    cached: int

    @classmethod
    def of(cls, result: ScanResult) -> Totals:
        s = result.stats
        return cls(
            images=len(result.images),
            gps_points=result.gps_points,
            missing_gps=sum(f.missing_gps for f in result.folders),
            errors=sum(f.errors for f in result.folders),
            seconds=s.seconds,
            images_per_s=s.images_per_s,
            connections=s.connections,
            cached=s.cached,
        )


@dataclass(frozen=True)
class CheckSummary:
    """The photo checks on the QC page: counts per failure kind and the photos that failed."""

    checked: int
    failed: list[ImageChecks]
    kinds: dict[str, int]  # failure kind -> photos
    folders: dict[str, Counter[str]]
    stats: CheckStats

    @classmethod
    def of(cls, report: CheckReport) -> CheckSummary:
        failed = [c for c in report.images if not c.valid]
        kinds: Counter[str] = Counter()
        for checks in failed:
            kinds.update({o.name for o in checks.failures})
        return cls(len(report.images), failed, dict(kinds.most_common()), report.folders, report.stats)


@bp.get("/")
def sites() -> str:
    login = current_login()
    ctx = qc()
    connector = ctx.connector(login.creds)
    found = list_sites(connector)
    latest = {s.name: ctx.jobs.latest_for(login.sid, s.name) for s in found}
    runs = ctx.cache.last_runs(connector.server_id)  # the last QC of each site, no scan needed
    return render_template(
        "sites.html", sites=found, latest=latest, runs=runs, root=ctx.sites_root
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


@bp.get("/sites/<site>/qc/<job_id>")
def qc_page(site: str, job_id: str) -> str:
    login = current_login()
    site = safe_name(site, "site")
    ctx = qc()
    job = ctx.jobs.get(job_id, login.sid)
    if job.site != site:
        raise NotFound("no such job for this site")
    result = job.result  # published when the GPS pass ends, while the checks still run
    return render_template(
        "qc.html",
        site=site,
        job=job,
        state=job.public_state,
        result=result,
        totals=Totals.of(result) if result is not None else None,
        problems=list(images_without_gps(result)) if result is not None else [],
        checks=CheckSummary.of(job.report) if job.report is not None else None,
        colours=FOLDER_COLOURS,
        tile_url=ctx.settings.get("QC_TILE_URL") or "",
        tile_attribution=ctx.settings.get("QC_TILE_ATTRIBUTION") or "",
    )

