"""What the QC page fetches besides the job: photo previews and the exports of a result."""

from __future__ import annotations

from flask import Blueprint, request
from werkzeug.wrappers import Response

from qc_tool.domain.models import RemoteFile
from qc_tool.errors import BadRequest, NotFound
from qc_tool.services.exports import render_export
from qc_tool.services.jobs import Job
from qc_tool.services.previews import max_edge_for
from qc_tool.web.auth import current_login, login_required
from qc_tool.web.deps import qc
from qc_tool.web.pages import site_job

bp = login_required(Blueprint("review", __name__))
PREVIEW_MAX_AGE_S = 3600


@bp.get("/sites/<site>/qc/<job_id>/preview")
def preview(site: str, job_id: str) -> Response:
    """A small upright JPEG of one photo of the job's result (never the file itself).

    Only a path the job's scan listed can be asked for, so no other path ever reaches
    the server, whatever the query string says. The photo is read over the user's own
    connection and cached for that user alone: listing a file does not mean reading it.
    """
    job = site_job(site, job_id)
    file = _listed_file(job, request.args.get("path", ""))
    max_edge = max_edge_for(request.args.get("size", "large"))
    ctx = qc()
    login = current_login()
    connector = ctx.connector(login.creds)
    data = ctx.held.run(
        login.sid,
        connector,
        lambda conn: ctx.previews.preview(
            conn, connector.server_id, job.site, file, max_edge, user=login.username
        ),
    )
    return jpeg_response(data)


def jpeg_response(data: bytes) -> Response:
    """A preview as the browser should keep it: private, for a while."""
    response = Response(data, mimetype="image/jpeg")
    response.headers["Cache-Control"] = f"private, max-age={PREVIEW_MAX_AGE_S}"
    return response


@bp.get("/sites/<site>/qc/<job_id>/export/<kind>")
def export(site: str, job_id: str, kind: str) -> Response:
    """One export of the job's result document (``?folder=`` for one folder only)."""
    job = site_job(site, job_id)
    document = job.document()
    if document is None:
        raise NotFound("this QC has no result to export yet")
    folder = request.args.get("folder")
    download = render_export(document, kind, folder=folder)
    response = Response(download.body, content_type=download.mimetype)
    # The printable report opens in the browser (to print it); the other formats are files.
    disposition = "inline" if kind == "report" else "attachment"
    response.headers["Content-Disposition"] = f'{disposition}; filename="{download.filename}"'
    if download.policy:
        response.headers["Content-Security-Policy"] = download.policy
    return response


def _listed_file(job: Job, path: str) -> RemoteFile:
    if not path:
        raise BadRequest("which photo? the path parameter is missing")
    if not job.scan_ready:
        raise NotFound("the scan has not listed the photos yet")
    file = job.listed_file(path)
    if file is None:
        raise NotFound("no such photo in this QC")
    return file
