"""The JSON API the pages' scripts (and other clients) use; POSTs need the X-CSRFToken header."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, url_for
from werkzeug.wrappers import Response

from qc_tool.domain.paths import safe_name
from qc_tool.services.login import list_sites
from qc_tool.web.auth import current_login
from qc_tool.web.deps import qc

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.get("/sites")
def sites() -> Response:
    login = current_login()
    found = list_sites(qc().connector(login.creds))
    return jsonify([s.to_json() for s in found])


@bp.post("/sites/<site>/qc")
def start_qc(site: str) -> tuple[Response, int, dict[str, str]]:
    login = current_login()
    site = safe_name(site, "site")  # before anything reaches the server
    ctx = qc()
    job = ctx.jobs.start(
        login.sid, site, ctx.scan_runner(login.sid, site), checks=ctx.checks_enabled
    )
    location = url_for("api.job", job_id=job.id)
    return jsonify({"job": job.id, "url": location}), 202, {"Location": location}


@bp.get("/jobs/<job_id>")
def job(job_id: str) -> dict[str, Any]:
    login = current_login()
    return qc().jobs.get(job_id, login.sid).to_json()


@bp.get("/jobs/<job_id>/state")
def job_state(job_id: str) -> dict[str, Any]:
    """Progress without the result document: what a page polls once a second."""
    login = current_login()
    return qc().jobs.get(job_id, login.sid).state_json()


@bp.post("/jobs/<job_id>/cancel")
def cancel(job_id: str) -> dict[str, Any]:
    login = current_login()
    return qc().jobs.cancel(job_id, login.sid).state_json()
