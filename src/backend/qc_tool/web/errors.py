"""One place that turns errors into responses: JSON for the API, a page for people."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, make_response, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from qc_tool.errors import (
    AuthFailed,
    BadRequest,
    Busy,
    Cancelled,
    Forbidden,
    HostKeyRejected,
    InsufficientStorage,
    NotFound,
    NotLoggedIn,
    QCError,
    RemoteError,
    RemoteUnavailable,
    SiteTooLarge,
    TooManyRequests,
    UnreadableImage,
    UploadTooLarge,
)
from qc_tool.web import auth  # the module, not its names: web.auth imports this one too

log = logging.getLogger(__name__)

# The HTTP status of each error, by class: an error not listed takes its nearest listed
# ancestor's (ServerBusy and ChannelRefused are RemoteUnavailable's 503, PathRejected and
# UploadRefused BadRequest's 400). QCError itself is the 500 of anything else.
_STATUS: dict[type, int] = {
    QCError: 500,
    BadRequest: 400,
    NotLoggedIn: 401,
    AuthFailed: 401,
    Forbidden: 403,
    NotFound: 404,
    Cancelled: 409,
    UploadTooLarge: 413,
    SiteTooLarge: 413,
    UnreadableImage: 422,
    TooManyRequests: 429,
    HostKeyRejected: 502,
    RemoteError: 502,
    RemoteUnavailable: 503,
    Busy: 503,
    InsufficientStorage: 507,
}

# Headlines of the error page, by status; the error's own message is shown under it.
_TITLES = {
    400: "That request was refused",
    401: "Please log in again",
    403: "Not allowed",
    404: "Not found",
    429: "Too many requests",
    502: "The SFTP server refused",
    503: "The SFTP server is unavailable",
}


def wants_json() -> bool:
    """API paths, and clients that prefer JSON to HTML, get JSON errors."""
    if request.path.startswith("/api/"):
        return True
    # On a tie (e.g. "*/*") the first of these wins, so browsers keep getting pages.
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def status_of(exc: QCError) -> int:
    """The HTTP status that answers ``exc``: its class's, or its nearest listed ancestor's."""
    return next(_STATUS[cls] for cls in type(exc).__mro__ if cls in _STATUS)


def register(app: Flask) -> None:
    app.register_error_handler(QCError, _qc_error)
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)


def _qc_error(exc: QCError) -> Response:
    response = make_response(_qc_body(exc))
    if exc.retry_after is not None:  # busy, or a limit: told when to try again
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _qc_body(exc: QCError) -> Response | tuple[Response | str, int]:
    status = status_of(exc)
    if status >= 500:
        log.warning("%s %s: %s", request.method, request.path, exc.message)
    if isinstance(exc, AuthFailed):
        # The stored password stopped working (changed on the server): the login is over.
        auth.end_login()
    if wants_json():
        return jsonify({"error": exc.code, "message": exc.message}), status
    if isinstance(exc, NotLoggedIn):
        return redirect(url_for("auth.login_form"))
    return _page(status, exc.message), status


def _csrf_error(exc: CSRFError) -> tuple[Response | str, int]:
    message = (
        f"The form expired or did not come from this site ({exc.description}). Reload the page."
    )
    if wants_json():
        return jsonify({"error": "csrf_failed", "message": exc.description}), 400
    return _page(400, message), 400


def _http_error(exc: HTTPException) -> Response | tuple[Response | str, int]:
    status = exc.code or 500
    if status >= 500:
        log.error("%s %s failed with %d", request.method, request.path, status)
    if wants_json():
        code = (exc.name or "error").lower().replace(" ", "_")
        return jsonify({"error": code, "message": exc.description}), status
    if status < 400:
        return exc.get_response()  # redirects raised as exceptions (e.g. a missing slash)
    return _page(status, exc.description or exc.name), status


def _page(status: int, message: str) -> str:
    title = _TITLES.get(status, "Something went wrong")
    return render_template("error.html", status=status, title=title, message=message)
