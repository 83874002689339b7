"""One exception tree for the whole tool.

Third-party errors (paramiko, socket, exifread) are translated into these at
the adapter boundary, so nothing above ``adapters/`` sees a library exception
(``adapters/sftp/errors.py`` for the SFTP link). The errors say what went wrong, not how
to answer it: ``web/errors.py`` chooses each one's HTTP status.
"""

from __future__ import annotations


class QCError(Exception):
    """Base of every error the tool reports to a user."""

    code: str = "error"

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after  # seconds; answered as Retry-After when set


class BadRequest(QCError):
    code = "bad_request"


class PathRejected(BadRequest):
    """A site or folder name that would leave the sites root."""

    code = "path_rejected"


class NotLoggedIn(QCError):
    code = "not_logged_in"


class AuthFailed(QCError):
    """The SFTP server refused the username or password (one attempt was made)."""

    code = "auth_failed"


class Forbidden(QCError):
    code = "forbidden"


class NotFound(QCError):
    code = "not_found"


class TooManyRequests(QCError):
    code = "too_many_requests"


class HostKeyRejected(QCError):
    """The server's host key is unknown or has changed; no password was sent."""

    code = "host_key_rejected"


class RemoteUnavailable(QCError):
    """The SFTP server could not be reached, or dropped the connection."""

    code = "remote_unavailable"


class RemoteError(QCError):
    """The SFTP server answered, but an operation on it failed (no such folder, permission)."""

    code = "remote_error"


class UnreadableImage(QCError):
    """One image could not be read or parsed; costs that image's result only."""

    code = "unreadable_image"


class ServerBusy(RemoteUnavailable):
    """The server kept closing new connections before their SSH banner (OpenSSH past
    MaxStartups), after the connection's own retries."""

    code = "server_busy"


class ChannelRefused(RemoteUnavailable):
    """The server logged the user in but refused an SFTP channel (a session limit)."""

    code = "channel_refused"


class Busy(QCError):
    """The app has no room for this right now; the client may try again, or another way."""

    code = "busy"


class PreviewsBusy(Busy):
    """Every preview slot stayed taken while this request waited; try again shortly."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, retry_after=retry_after)


class TooManyJobs(TooManyRequests):
    """The login already has as many QC jobs queued or running as one login may."""

    code = "too_many_jobs"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, retry_after=retry_after)


class TooManyFailedLogins(TooManyRequests):
    """Refused without contacting the server; ``retry_after`` seconds until a place frees."""

    code = "too_many_failed_logins"

    retry_after: int

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, retry_after=retry_after)


class UploadRefused(BadRequest):
    """An uploaded ZIP that is not accepted; the message names the rule it broke."""

    code = "upload_refused"


class UploadTooLarge(UploadRefused):
    """The upload itself is larger than the configured limit."""

    code = "upload_too_large"


class InsufficientStorage(QCError):
    """The upload area has no room for this upload."""

    code = "insufficient_storage"


class Cancelled(QCError):
    """The scan was stopped before it finished."""

    code = "cancelled"


class SiteTooLarge(QCError):
    """The site holds more photos than one scan accepts."""

    code = "site_too_large"
