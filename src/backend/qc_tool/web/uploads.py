"""Upload a ZIP of photos, follow its checks, read the results, download the CSV and sorted ZIP.

Only the session that uploaded can see an upload; anyone else gets a 404. The app refuses
request bodies over 64 KB (web/security.py); the upload POST alone may be as large as
QC_UPLOAD_MAX_MB. That limit must be raised before Flask-WTF reads the form for the CSRF
token, so this blueprint is exempt from the app-wide CSRF hook and runs the same check
itself, right after raising the limit (and only for a logged-in user: an anonymous client
cannot make the server read a large body).
"""

from __future__ import annotations

from dataclasses import dataclass

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

from qc_tool.domain.checks.result import ImageChecks
from qc_tool.errors import NotFound, NotLoggedIn
from qc_tool.services.uploads import Upload, UploadStore
from qc_tool.services.zip_safety import MB, UploadRefused, UploadTooLarge, size_text
from qc_tool.web.auth import current_login, optional_login
from qc_tool.web.deps import qc

bp = Blueprint("uploads", __name__, url_prefix="/uploads")

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
    if optional_login() is None:
        raise NotLoggedIn("please log in")  # before a byte of the body is read
    request.max_content_length = store().limits.max_zip_bytes + FORM_SLACK
    if not current_app.config["WTF_CSRF_ENABLED"]:
        return None  # as the app-wide hook does
    csrf = current_app.extensions["csrf"]
    try:
        csrf.protect()  # reads the form, so the ZIP, within the limit just set
    except RequestEntityTooLarge:
        limit = size_text(store().limits.max_zip_bytes)
        problem = UploadTooLarge(f"The upload is larger than {limit}, the most accepted.")
        return _form(problem.message, problem.status)
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
        )
    except UploadRefused as exc:
        return _form(exc.message, exc.status)
    finally:
        sent.close()
    return redirect(url_for("uploads.result", upload_id=accepted.id), code=303)


@bp.get("/<upload_id>")
def result(upload_id: str) -> str:
    login = current_login()
    found = store().get(upload_id, login.sid)
    return render_template(
        "upload_result.html",
        upload=found,
        rows=[ImageRow.of(c) for c in found.report.images] if found.report else [],
        invalid_by_folder=found.invalid_by_folder(),
        keep_minutes=round(store().keep_seconds / 60),
    )


@bp.get("/<upload_id>/checks.csv")
def checks_csv(upload_id: str) -> Response:
    found = _finished(upload_id)
    assert found.csv is not None
    response = current_app.response_class(found.csv, mimetype="text/csv")
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


@dataclass(frozen=True)
class ImageRow:
    """One line of the results table: the verdict, what failed, and every measured value."""

    path: str
    valid: bool
    problems: list[str]
    values: list[tuple[str, str]]

    @classmethod
    def of(cls, checks: ImageChecks) -> ImageRow:
        values = [(o.name, str(o.value)) for o in checks.outcomes if o.value is not None]
        return cls(checks.name, checks.valid, [o.message for o in checks.failures], values)


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
    )
    return page, status
