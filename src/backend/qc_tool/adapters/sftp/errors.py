"""The one place paramiko and socket errors become the tool's errors.

Every step that talks to the SFTP server runs inside ``translate(what)``, where ``what``
says which step failed; the exception's kind says why (timed out, reset, refused). Errors
of the tool's own (QCError) pass through untouched, so a step may still raise a more
precise one (AuthFailed, ChannelRefused) from inside the block.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import paramiko

from qc_tool.errors import RemoteUnavailable

# What a broken or silent link raises: paramiko's protocol errors, socket errors (timeouts
# included: socket.timeout is TimeoutError, an OSError), and EOF on a closed connection.
LINK_ERRORS = (paramiko.SSHException, OSError, EOFError)


@contextmanager
def translate(what: str) -> Iterator[None]:
    """Raise RemoteUnavailable("<what> (<why>)") for a paramiko or socket error in the block."""
    try:
        yield
    except LINK_ERRORS as exc:
        raise RemoteUnavailable(f"{what} ({why(exc)})") from exc


def why(exc: BaseException) -> str:
    """The cause of a link error in a few words, never empty."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
