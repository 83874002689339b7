"""One exception tree for the whole tool; each error knows its HTTP status.

Third-party errors (paramiko, socket, exifread) are translated into these at
the adapter boundary, so nothing above ``adapters/`` sees a library exception.
"""

from __future__ import annotations


class QCError(Exception):
    """Base of every error the tool reports to a user."""

    status: int = 500
    code: str = "error"

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after  # seconds; answered as Retry-After when set


class BadRequest(QCError):
    status = 400
    code = "bad_request"


class PathRejected(BadRequest):
    """A site or folder name that would leave the sites root."""

    code = "path_rejected"


class NotLoggedIn(QCError):
    status = 401
    code = "not_logged_in"


class AuthFailed(QCError):
    """The SFTP server refused the username or password (one attempt was made)."""

    status = 401
    code = "auth_failed"


class Forbidden(QCError):
    status = 403
    code = "forbidden"


class NotFound(QCError):
    status = 404
    code = "not_found"


class TooManyRequests(QCError):
    status = 429
    code = "too_many_requests"


class HostKeyRejected(QCError):
    """The server's host key is unknown or has changed; no password was sent."""

    status = 502
    code = "host_key_rejected"


class RemoteUnavailable(QCError):
    """The SFTP server could not be reached, or dropped the connection."""

    status = 503
    code = "remote_unavailable"


class RemoteError(QCError):
    """The SFTP server answered, but an operation on it failed (no such folder, permission)."""

    status = 502
    code = "remote_error"


class UnreadableImage(QCError):
    """One image could not be read or parsed; costs that image's result only."""

    status = 422
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

    status = 503
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

    status = 413
    code = "upload_too_large"


class InsufficientStorage(QCError):
    """The upload area has no room for this upload."""

    status = 507
    code = "insufficient_storage"


class Cancelled(QCError):
    """The scan was stopped before it finished."""

    status = 409
    code = "cancelled"


class SiteTooLarge(QCError):
    """The site holds more photos than one scan accepts."""

    status = 413
    code = "site_too_large"
