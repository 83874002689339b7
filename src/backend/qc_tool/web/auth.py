"""Log in with SFTP credentials, log out, and find the current user's login.

The signed session cookie holds only an opaque session id; the username and password stay in
this process's SessionStore. A login check is one connection, hence one password attempt.
After QC_LOGIN_MAX_FAILURES refused passwords from one address or for one username within
QC_LOGIN_WINDOW_S, further logins are answered 429 without any connection to the server; each
attempt takes its place in that count before it is made (services/logins/ratelimit.py).
The form's only inputs are username and password: the server is the configured one, always
(any other field, such as a host, is never read).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from flask import Blueprint, g, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from qc_tool.errors import (
    AuthFailed,
    Busy,
    HostKeyRejected,
    NotLoggedIn,
    QCError,
    RemoteUnavailable,
    TooManyFailedLogins,
)
from qc_tool.services.logins.ratelimit import LoginLimiter
from qc_tool.services.logins.sessions import Credentials
from qc_tool.services.scan.sites import check_login
from qc_tool.web import errors as web_errors  # the module: web.errors imports this one
from qc_tool.web.deps import qc

bp = Blueprint("auth", __name__)
log = logging.getLogger(__name__)

SESSION_ID = "sid"
MAX_USERNAME = 128
MAX_PASSWORD = 1024


def login_limiter() -> LoginLimiter:
    """The app's one login limiter (qc_tool.bootstrap builds it from the settings)."""
    return qc().login_limiter


@dataclass(frozen=True)
class Login:
    """The logged-in user of this request: the session id (job owner) and the credentials."""

    sid: str
    creds: Credentials

    @property
    def username(self) -> str:
        return self.creds.username


def optional_login() -> Login | None:
    """This request's login, or None; looked up once per request."""
    if "qc_login" not in g:
        sid = session.get(SESSION_ID)
        creds = qc().sessions.get(sid) if isinstance(sid, str) else None
        g.qc_login = Login(sid, creds) if sid and creds is not None else None
    login: Login | None = g.qc_login
    return login


def current_login() -> Login:
    """This request's login; NotLoggedIn (401, or a redirect to the login page) otherwise."""
    login = optional_login()
    if login is None:
        raise NotLoggedIn("please log in")
    return login


def login_required(blueprint: Blueprint) -> Blueprint:
    """Every view of ``blueprint`` needs a login, checked before the view runs, so a view
    added later cannot forget it (flaskr's ``login_required``, for a whole blueprint)."""

    @blueprint.before_request
    def _require_login() -> None:
        current_login()

    return blueprint


# What the login form says for each refusal; the server's own detail is shown under it.
_LOGIN_PROBLEMS: dict[type[QCError], str] = {
    AuthFailed: "Wrong username or password.",
    HostKeyRejected: (
        "The SFTP server could not be verified (its host key is unknown or has changed), "
        "so your password was not sent. Tell the administrator."
    ),
    RemoteUnavailable: "The SFTP server cannot be reached right now. Try again later.",
}


@bp.get("/login")
def login_form() -> Response | str:
    if optional_login() is not None:
        return redirect(url_for("pages.sites"))
    return render_template("login.html", username="")


@bp.post("/login")
def login() -> Response | tuple[str, int] | tuple[str, int, dict[str, str]]:
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    if not username or not password:
        return _form_again(username, "Enter your SFTP username and password.", None, 400)
    if len(username) > MAX_USERNAME or len(password) > MAX_PASSWORD:
        return _form_again("", "That username or password is too long.", None, 400)
    # Behind a reverse proxy this is the proxy's address unless QC_TRUSTED_PROXIES says how
    # many proxies' X-Forwarded-For to believe (web/security.py; docs/deployment.md).
    address = request.remote_addr or "unknown"
    try:
        attempt = login_limiter().reserve(address, username)
    except TooManyFailedLogins as exc:  # refused here: no connection, no attempt to count
        log.warning("login refused for %r from %s: too many failed logins", username, address)
        minutes = math.ceil(exc.retry_after / 60)
        problem = f"Too many failed logins. Try again in {minutes} minute{'s' * (minutes != 1)}."
        page, status = _form_again(username, problem, None, 429)
        return page, status, {"Retry-After": str(exc.retry_after)}
    except Busy:
        log.warning("login for %r from %s waited too long for a place", username, address)
        problem = "Many logins are being checked right now. Try again in a moment."
        page, status = _form_again(username, problem, None, 503)
        return page, status, {"Retry-After": "5"}
    ctx = qc()
    with attempt:  # given back on leaving unless the password was refused
        try:
            check_login(ctx.connector(Credentials(username, password)))
        except (AuthFailed, HostKeyRejected, RemoteUnavailable) as exc:
            if isinstance(exc, AuthFailed):  # a wrong guess; an unreachable server is not one
                attempt.wrong_password()
            log.info("login refused for %r: %s", username, exc.code)
            return _form_again(username, _problem(exc), _detail(exc), web_errors.status_of(exc))
        attempt.succeeded()
    session.clear()  # a fresh session (and CSRF token) for the new login
    session[SESSION_ID] = ctx.sessions.create(username, password)
    log.info("login for %r", username)
    return redirect(url_for("pages.sites"), code=303)


@bp.post("/logout")
def logout() -> Response:
    end_login()
    return redirect(url_for("auth.login_form"), code=303)


def end_login() -> None:
    """Forget this browser's login: cancel its scans, wipe its credentials, clear the cookie."""
    sid = session.get(SESSION_ID)
    if isinstance(sid, str):
        ctx = qc()
        ctx.forget_login(sid)
        ctx.sessions.drop(sid)
    session.clear()
    g.pop("qc_login", None)


def _problem(exc: QCError) -> str:
    for kind, text in _LOGIN_PROBLEMS.items():
        if isinstance(exc, kind):
            return text
    return exc.message


def _detail(exc: QCError) -> str | None:
    """The server's own words, unless they only repeat the headline."""
    return None if _problem(exc).lower().startswith(exc.message.lower()) else exc.message


def _form_again(username: str, problem: str, detail: str | None, status: int) -> tuple[str, int]:
    """The login form with a message; the password is never sent back."""
    page = render_template("login.html", username=username, problem=problem, detail=detail)
    return page, status
