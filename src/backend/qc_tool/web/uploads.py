"""Upload a ZIP of photos, follow its checks, read the results, download the CSV and sorted ZIP.

The results page, ``GET /api/uploads/<id>``, the CSV and the sorted ZIP all render the
upload's result document and its verdict (``check_report.result_document``), View QC's.

Only the session that uploaded can see an upload; anyone else gets a 404. The app refuses
request bodies over 64 KB (web/security.py); the upload POST alone may be as large as
QC_UPLOAD_MAX_MB. That limit must be raised before Flask-WTF reads the form for the CSRF
token, so this blueprint is exempt from the app-wide CSRF hook and runs the same check
itself, right after raising the limit (and only for a logged-in user: an anonymous client
cannot make the server read a large body).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import (
    Blueprint,
    current_app,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from flask_wtf.csrf import CSRFProtect
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response

from qc_tool.domain.paths import IMAGE_SUFFIXES_TEXT
from qc_tool.domain.verdict import DECISION_LABELS
from qc_tool.errors import NotFound, UploadRefused, UploadTooLarge
from qc_tool.services.previews import max_edge_for
from qc_tool.services.uploads.store import Upload, UploadStore
from qc_tool.services.uploads.zip_safety import MB, size_text
from qc_tool.web.auth import current_login, login_required
from qc_tool.web.deps import qc
from qc_tool.web.errors import status_of
from qc_tool.web.review import jpeg_response

bp = login_required(Blueprint("uploads", __name__, url_prefix="/uploads"))
api = login_required(
    Blueprint("uploads_api", __name__, url_prefix="/api/uploads")
)  # JSON errors, as /api/
PREVIEW_MAX_AGE_S = 3600

FORM_SLACK = 64 * 1024  # the multipart framing and the other fields around the ZIP


@bp.record_once
def _attach(state: BlueprintSetupState) -> None:
    """This blueprint checks CSRF itself (see the module docstring)."""
    csrf = state.app.extensions["csrf"]
    assert isinstance(csrf, CSRFProtect)
    csrf.exempt(bp)


def store() -> UploadStore:
    found = qc().uploads
    assert found is not None
    return found


@bp.before_request
def _body_limit_then_csrf() -> tuple[str, int] | None:
    if request.method != "POST":
        return None
    # login_required ran first: an anonymous client never makes the server read a large body.
    request.max_content_length = store().limits.max_zip_bytes + FORM_SLACK
    if not current_app.config["WTF_CSRF_ENABLED"]:
        return None  # as the app-wide hook does
    csrf = current_app.extensions["csrf"]
    try:
        csrf.protect()  # reads the form, so the ZIP, within the limit just set
    except RequestEntityTooLarge:
        limit = size_text(store().limits.max_zip_bytes)
        problem = UploadTooLarge(f"The upload is larger than {limit}, the most accepted.")
        return _form(problem.message, status_of(problem))
    return None


@bp.get("")
def form() -> tuple[str, int]:
    return _form(None, 200)


@bp.post("")
def upload() -> Response | tuple[str, int]:
    login = current_login()
    sent = request.files.get("zip")
    if sent is None or not sent.filename:
        return _form("Choose a ZIP file of photos to upload.", 400)
    ctx = qc()
    try:
        accepted = store().accept(
            login.sid,
            sent.filename,
            sent.stream,
            executor=ctx.check_executor,
            options=ctx.check_options,
            whole_files=request.form.get("whole_files") == "1",
            site_profile=ctx.site_profile,
        )
    except UploadRefused as exc:
        return _form(exc.message, status_of(exc))
    finally:
        sent.close()
    return redirect(url_for("uploads.result", upload_id=accepted.id), code=303)


@bp.get("/<upload_id>")
def result(upload_id: str) -> str:
    login = current_login()
    found = store().get(upload_id, login.sid)
    # The state first, then the document: the runner stores the document before it says
    # done, so a page that read "done" has it, and one that read "running" shows progress
    # even if the checks end while it renders.
    state = found.state
    document = found.document() if state == "done" else None
    settings = qc().settings
    return render_template(
        "upload_result.html",
        upload=found,
        state=state,
        document=document,
        page=ResultPage.of(document) if document is not None else None,
        keep_minutes=round(store().keep_seconds / 60),
        tile_url=settings.tile_url,
        tile_attribution=settings.tile_attribution,
    )


@bp.get("/<upload_id>/checks.csv")
def checks_csv(upload_id: str) -> Response:
    login = current_login()
    found = store().get(upload_id, login.sid)
    response = current_app.response_class(found.checks_csv(), mimetype="text/csv")
    response.headers.set("Content-Disposition", "attachment", filename=f"{found.site}-checks.csv")
    return response


@bp.get("/<upload_id>/sorted.zip")
def sorted_zip(upload_id: str) -> Response:
    found = _finished(upload_id)
    return send_file(
        found.sorted_zip,
        mimetype="application/zip",
        as_attachment=True,
        download_name=f"{found.site}-sorted.zip",
    )


@bp.get("/<upload_id>/preview")
def preview(upload_id: str) -> Response:
    """A small upright JPEG of one photo of the upload (only one the sorted ZIP holds)."""
    login = current_login()
    found = store().get(upload_id, login.sid)
    max_edge = max_edge_for(request.args.get("size", "large"))
    return jpeg_response(found.preview(request.args.get("path", ""), qc().previews, max_edge))


@api.get("/<upload_id>")
def upload_state(upload_id: str) -> Response:
    """``{"id", "state", "done", "total", "result"}``: the result document once done (null
    before), the owner's only."""
    login = current_login()
    found = store().get(upload_id, login.sid)
    return current_app.response_class(found.state_json(), mimetype="application/json")


@dataclass(frozen=True)
class ImageRow:
    """One line of the results table: the verdict, why, and every measured value."""

    path: str
    valid: bool | None
    problems: list[str]  # the verdict's kinds, by their names
    reasons: list[str]  # the verdict's reasons
    values: list[tuple[str, str]]


@dataclass(frozen=True)
class FolderRow:
    name: str
    images: int
    invalid: int
    why: list[str]  # the verdict's kinds (and folder reasons) for this folder, by their names


@dataclass(frozen=True)
class ResultPage:
    """What the results page shows of a document: its verdict's rows, nothing judged here."""

    verdict: dict[str, Any]
    labels: dict[str, str]
    rows: list[ImageRow]
    folders: list[FolderRow]

    @classmethod
    def of(cls, document: dict[str, Any]) -> ResultPage:
        verdict = document["verdict"]
        labels = {k["kind"]: k["label"] for k in verdict["kinds"] + verdict["folder_reasons"]}
        rows = [
            ImageRow(
                image["path"],
                image["valid"],
                [labels.get(k, k) for k in image["problems"]],
                list(image["reasons"]),
                [
                    (o["name"], str(o["value"]))
                    for o in (image.get("checks") or {}).get("outcomes", [])
                    if o["value"] is not None
                ],
            )
            for image in document["images"]
        ]
        refly = {item["folder"]: item for item in verdict["refly"]}
        folders = [
            FolderRow(
                f["name"],
                f["images"],
                len(refly[f["name"]]["photos"]) if f["name"] in refly else 0,
                [labels.get(k, k) for k in refly[f["name"]]["reasons"]]
                if f["name"] in refly
                else [],
            )
            for f in document["folders"]
        ]
        return cls(verdict, labels, rows, folders)


def _finished(upload_id: str) -> Upload:
    login = current_login()
    found = store().get(upload_id, login.sid)
    if found.state != "done":
        raise NotFound("the results of this upload are not ready")
    return found


def _form(problem: str | None, status: int) -> tuple[str, int]:
    login = current_login()
    limits = store().limits
    page = render_template(
        "upload.html",
        problem=problem,
        uploads=store().mine(login.sid),
        max_mb=limits.max_zip_bytes / MB,
        max_total_mb=limits.max_photo_bytes / MB,
        max_files=limits.max_entries,
        decisions=DECISION_LABELS,
        photo_suffixes=IMAGE_SUFFIXES_TEXT,
    )
    return page, status
