"""The HTTP status each error is answered with, chosen in web/errors.py (issue 12, item 3).

The errors carry no status of their own; this pins what each one, subclasses included,
is answered with, so a new error class or a table edit that changes an answer shows here.
"""

from __future__ import annotations

import inspect

from qc_tool import errors
from qc_tool.adapters.sftp.errors import translate
from qc_tool.errors import QCError, RemoteUnavailable
from qc_tool.web.errors import status_of

EXPECTED = {
    "QCError": 500,
    "BadRequest": 400,
    "PathRejected": 400,
    "UploadRefused": 400,
    "NotLoggedIn": 401,
    "AuthFailed": 401,
    "Forbidden": 403,
    "NotFound": 404,
    "Cancelled": 409,
    "UploadTooLarge": 413,  # its parent UploadRefused is a 400: the nearer entry wins
    "SiteTooLarge": 413,
    "UnreadableImage": 422,
    "TooManyRequests": 429,
    "TooManyJobs": 429,
    "TooManyFailedLogins": 429,
    "HostKeyRejected": 502,
    "RemoteError": 502,
    "RemoteUnavailable": 503,
    "ServerBusy": 503,
    "ChannelRefused": 503,
    "Busy": 503,
    "PreviewsBusy": 503,
    "InsufficientStorage": 507,
}


def _error_classes() -> dict[str, type[QCError]]:
    return {
        name: cls
        for name, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, QCError)
    }


def test_every_error_in_the_tree_is_answered_with_its_status() -> None:
    classes = _error_classes()
    assert set(classes) == set(EXPECTED)  # a new error needs its status decided here
    answered = {name: status_of(cls("x", retry_after=1)) for name, cls in classes.items()}
    assert answered == EXPECTED


def test_the_errors_carry_no_status_of_their_own() -> None:
    assert not [name for name, cls in _error_classes().items() if "status" in vars(cls)]


def test_an_error_defined_elsewhere_takes_its_nearest_ancestors_status() -> None:
    class Dropped(RemoteUnavailable):  # as adapters/sftp/connect.py's _Dropped
        pass

    assert status_of(Dropped("gone")) == 503


def test_translate_turns_a_timeout_into_remote_unavailable_and_lets_qc_errors_through() -> None:
    caught: list[QCError] = []
    for raised in (TimeoutError("timed out"), ConnectionResetError(104, "Connection reset")):
        try:
            with translate("the SFTP server stopped answering"):
                raise raised
        except QCError as exc:
            caught.append(exc)
    assert [str(c) for c in caught] == [
        "the SFTP server stopped answering (timed out)",
        "the SFTP server stopped answering (Connection reset)",
    ]
    assert all(isinstance(c, RemoteUnavailable) and c.__cause__ is not None for c in caught)
    mine = errors.AuthFailed("wrong username or password")
    try:
        with translate("the login"):
            raise mine
    except QCError as exc:
        assert exc is mine
