"""Log in with SFTP credentials, log out, and find the current user's login.

The signed session cookie holds only an opaque session id; the username and password stay in
this process's SessionStore. A login check is one connection, hence one password attempt.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Blueprint, g, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from qc_tool.errors import AuthFailed, HostKeyRejected, NotLoggedIn, QCError, RemoteUnavailable
from qc_tool.services.login import check_login
from qc_tool.services.sessions import Credentials
from qc_tool.web.deps import qc

bp = Blueprint("auth", __name__)
log = logging.getLogger(__name__)

SESSION_ID = "sid"
MAX_USERNAME = 128
MAX_PASSWORD = 1024


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
def login() -> Response | tuple[str, int]:
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    if not username or not password:
        return _form_again(username, "Enter your SFTP username and password.", None, 400)
    if len(username) > MAX_USERNAME or len(password) > MAX_PASSWORD:
        return _form_again("", "That username or password is too long.", None, 400)
    ctx = qc()
    try:
        check_login(ctx.connector(Credentials(username, password)))
    except (AuthFailed, HostKeyRejected, RemoteUnavailable) as exc:
        log.info("login refused for %r: %s", username, exc.code)
        return _form_again(username, _problem(exc), _detail(exc), exc.status)
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
        ctx.jobs.cancel_all(sid)
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
