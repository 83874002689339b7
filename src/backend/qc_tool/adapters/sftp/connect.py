"""Open one authenticated SSH connection: host key checked first, then one password attempt.

paramiko's SSHClient is not used because it retries with other methods (agent,
keys, keyboard-interactive with the same password); a wrong password here must
cost the server exactly one attempt, since OpenSSH penalises a source address for
repeated failures and every technician shares this server's address.

Every step has a deadline: the TCP connect, the banner, the key exchange and the login
within QC_CONNECT_TIMEOUT each, the SFTP channel within QC_OP_TIMEOUT. A server that goes
quiet costs a clear error after that long, never a thread blocked for ever.

From the TCP connect until the login is done (on the server's side too: one round trip
after it) a connection holds one of the server's QC_MAX_SERVER_HANDSHAKES places (limits.SERVER_HANDSHAKES, all users together): OpenSSH drops
new connections at random once 10 are unauthenticated (MaxStartups 10:30:100). A connection
the server closes before its banner or during the key exchange, as sshd does past
MaxStartups, is opened again after a short pause, a few times; nothing is retried once the
password has been sent, nor a host key that does not match.

Round trips (50 ms each on a site link): paramiko waits for the answer to each request. The
password goes right behind the request for the login service instead (SSH lets it: the
server takes a connection's messages in order), and ``open_connection``, what the tool uses,
takes the SFTP channel's opening as the round trip that settles the login. A login with its
SFTP session is then TCP, banner, key exchange, login, channel, subsystem and SFTP's version
exchange: two round trips fewer than paramiko's own calls (docs/performance.md).
"""

from __future__ import annotations

import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import paramiko
from paramiko.auth_handler import AuthHandler
from paramiko.common import cMSG_USERAUTH_REQUEST
from paramiko.message import Message

from qc_tool.adapters.sftp import hostkeys
from qc_tool.adapters.sftp.errors import LINK_ERRORS, translate
from qc_tool.adapters.sftp.limits import SERVER_HANDSHAKES, ServerSlots
from qc_tool.errors import (
    AuthFailed,
    ChannelRefused,
    RemoteUnavailable,
    ServerBusy,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

# Large windows keep many pipelined replies in flight on a long, fast link.
WINDOW_SIZE = 64 * 1024 * 1024
MAX_PACKET_SIZE = 256 * 1024
# Pauses before opening again a connection the server dropped before the login: short (sshd
# accepts again as soon as other logins are through), each stretched by up to half at random
# so connections dropped together do not come back together.
DROP_RETRY_DELAYS: tuple[float, ...] = (0.25, 0.75, 1.5)


@dataclass(frozen=True, slots=True)
class SftpEndpoint:
    """Where the SFTP server is and how it is trusted; comes from configuration, never a user."""

    host: str
    port: int
    known_hosts: Path | None
    connect_timeout: float = 10.0
    op_timeout: float = 30.0
    # This process's connections to the server at once, all users together
    # (QC_MAX_SERVER_CONNECTIONS); a user's first connection waits up to ``slot_wait`` s for one.
    max_connections: int = 16
    slot_wait: float = 60.0
    # QC_MAX_SERVER_HANDSHAKES: connections logging in to the server at once, all users
    # together; below OpenSSH's MaxStartups (10 by default).
    max_handshakes: int = 8
    drop_retry_delays: tuple[float, ...] = DROP_RETRY_DELAYS
    trust_on_first_use: bool = False  # QC_TRUST_ON_FIRST_USE: learn an unknown host's key
    # QC_MAX_LISTING: entries one folder listing may hold; None: domain.paths.MAX_LISTING.
    max_listing: int | None = None

    @property
    def host_key_name(self) -> str:
        """The name known_hosts uses: "host" on port 22, "[host]:port" elsewhere."""
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"

    @property
    def server_id(self) -> str:
        return f"sftp://{self.host}:{self.port}"


class _Dropped(RemoteUnavailable):
    """The server closed the connection before the login began: safe to open it again."""


def open_transport(
    endpoint: SftpEndpoint,
    username: str,
    password: str,
    *,
    handshakes: ServerSlots = SERVER_HANDSHAKES,
) -> paramiko.Transport:
    """Connect, verify the host key, and make one password attempt; raise a QCError otherwise.

    Waits (up to ``endpoint.slot_wait``) for a place among the server's logins in progress;
    a connection dropped before the login is opened again after ``drop_retry_delays``, and
    ServerBusy says when the last of those was dropped too.
    """
    transport, _ = _log_in(
        endpoint, username, password, handshakes, lambda t: _settled(t, endpoint)
    )
    return transport


def open_connection(
    endpoint: SftpEndpoint,
    username: str,
    password: str,
    *,
    handshakes: ServerSlots = SERVER_HANDSHAKES,
    sock: socket.socket | None = None,
) -> tuple[paramiko.Transport, paramiko.SFTPClient]:
    """``open_transport`` and ``open_sftp`` in one round trip less: the SFTP channel's opening,
    which only the server's logged-in process answers, is what settles the login.

    ``sock``: a TCP connection to the endpoint already made, used by the first attempt (the
    CLI dials before it imports paramiko); a connection opened again is dialled here.
    """
    transport, chan = _log_in(
        endpoint, username, password, handshakes, lambda t: _open_channel(t, endpoint), sock
    )
    try:
        return transport, _start_sftp(transport, chan, endpoint)
    except BaseException:
        transport.close()
        raise


def _log_in(
    endpoint: SftpEndpoint,
    username: str,
    password: str,
    handshakes: ServerSlots,
    settle: Callable[[paramiko.Transport], T],
    sock: socket.socket | None = None,
) -> tuple[paramiko.Transport, T]:
    """One connection logged in and ``settle``d, holding a handshake place until then."""
    tofu = endpoint.trust_on_first_use
    known = hostkeys.load_known_hosts(endpoint.known_hosts, trust_on_first_use=tofu)
    deadline = time.monotonic() + endpoint.slot_wait
    delays = iter(endpoint.drop_retry_delays)
    attempts = 0
    while True:
        attempts += 1
        left = max(0.0, deadline - time.monotonic())
        slot = handshakes.acquire(endpoint.server_id, endpoint.max_handshakes, left)
        try:
            dialled, sock = sock, None  # a connection dropped is dialled again
            return _open_once(endpoint, known, username, password, settle, dialled)
        except _Dropped as exc:
            delay = next(delays, None)
            if delay is None or time.monotonic() + delay > deadline:
                raise ServerBusy(
                    f"{exc.message} ({attempts} attempt{'s' * (attempts != 1)}: too many "
                    "connections being opened to it at once?)"
                ) from exc
            delay *= 1 + random.random() / 2
            log.info("%s; opening it again in %.2f s", exc.message, delay)
        finally:
            slot.release()
        time.sleep(delay)  # without the slot: another login may go first


def _open_once(
    endpoint: SftpEndpoint,
    known: paramiko.HostKeys,
    username: str,
    password: str,
    settle: Callable[[paramiko.Transport], T],
    sock: socket.socket | None = None,
) -> tuple[paramiko.Transport, T]:
    """One connection: TCP (unless ``sock`` is one), banner and key exchange, host key, one
    password attempt, and one round trip more (``settle``) so that the server, too, counts the
    login done."""
    tofu = endpoint.trust_on_first_use
    where = f"{endpoint.host}:{endpoint.port}"
    if sock is None:
        with translate(f"cannot reach the SFTP server {where}"):
            sock = socket.create_connection(
                (endpoint.host, endpoint.port), timeout=endpoint.connect_timeout
            )
    transport = paramiko.Transport(
        sock, default_window_size=WINDOW_SIZE, default_max_packet_size=MAX_PACKET_SIZE
    )
    try:
        with translate(f"the SFTP server {where} did not complete the SSH handshake"):
            _handshake(transport, endpoint, hostkeys.key_types(known, endpoint.host_key_name))
            key = transport.get_remote_server_key()
            first_use = hostkeys.verify(known, endpoint.host_key_name, key, trust_on_first_use=tofu)
            _login(transport, endpoint, username, password)
            settled = settle(transport)
            if first_use:
                assert endpoint.known_hosts is not None  # load_known_hosts refused otherwise
                hostkeys.record(endpoint.known_hosts, endpoint.host_key_name, key)
            transport.set_keepalive(15)
            return transport, settled
    except BaseException:
        transport.close()
        raise


def _handshake(transport: paramiko.Transport, endpoint: SftpEndpoint, types: set[str]) -> None:
    """Banner and key exchange within the connect timeout, with a clear error when they fail."""
    transport.banner_timeout = endpoint.connect_timeout
    transport.auth_timeout = endpoint.connect_timeout
    if types:
        # Ask for a key type we can verify, as OpenSSH does with known_hosts.
        options = transport.get_security_options()
        options.key_types = [t for t in options.key_types if t in types] or options.key_types
    failure: BaseException | None = None
    try:
        transport.start_client(timeout=endpoint.connect_timeout)
    except LINK_ERRORS as exc:
        failure = exc
    if failure is None and transport.is_active() and transport.initial_kex_done:
        return
    # Which step failed, and whether the link went silent or was closed, come from the
    # exception (paramiko keeps the socket's timeout or EOF as the context of its own).
    where = f"{endpoint.host}:{endpoint.port}"
    dropped = not _went_silent(failure)
    if not transport.remote_version:
        if dropped:
            message = f"the SFTP server {where} closed the connection before its SSH banner"
            raise _Dropped(message) from failure
        message = (
            f"the SFTP server {where} sent no SSH banner within {endpoint.connect_timeout:.1f} s"
        )
        raise RemoteUnavailable(message) from failure
    if dropped and isinstance(failure, EOFError | ConnectionError):
        message = f"the SFTP server {where} closed the connection during the SSH key exchange"
        raise _Dropped(message) from failure
    message = (
        f"the SFTP server {where} did not complete the SSH key exchange within "
        f"{endpoint.connect_timeout:g} s"
        + (f" ({failure})" if failure is not None and str(failure) else "")
    )
    raise RemoteUnavailable(message) from failure


def _went_silent(failure: BaseException | None) -> bool:
    """Whether the handshake ended on a deadline rather than on the server closing the link.

    No exception means start_client's own deadline passed with the handshake unfinished; a
    socket timeout anywhere in the exception's chain means paramiko's banner or packet
    read timed out.
    """
    seen: BaseException | None = failure
    while seen is not None:
        if isinstance(seen, TimeoutError):
            return True
        seen = seen.__cause__ or seen.__context__
    return failure is None


def _login(
    transport: paramiko.Transport, endpoint: SftpEndpoint, username: str, password: str
) -> None:
    """One password attempt. Only the server's own "no" is AuthFailed; silence is not."""
    where = f"{endpoint.host}:{endpoint.port}"
    # Dropped once the password was on its way: reported, never retried.
    with translate(f"the SFTP server {where} closed the connection during the login"):
        try:
            _PasswordLogin.attempt(transport, username, password)
        except paramiko.BadAuthenticationType as exc:
            raise AuthFailed(
                "the SFTP server does not accept password logins "
                f"(it allows: {', '.join(exc.allowed_types) or 'nothing'})"
            ) from exc
        except paramiko.AuthenticationException as exc:
            # paramiko reports a login that timed out, or a connection that died during it,
            # as an AuthenticationException too; those say nothing about the password.
            if "timeout" in str(exc).lower():
                raise RemoteUnavailable(
                    f"the SFTP server {where} did not answer the login "
                    f"within {endpoint.connect_timeout:g} s"
                ) from exc
            if not transport.is_active():
                raise RemoteUnavailable(
                    f"the SFTP server {where} closed the connection during the login"
                ) from exc
            raise AuthFailed("wrong username or password") from exc


def _settled(transport: paramiko.Transport, endpoint: SftpEndpoint) -> None:
    """One round trip after the login, so the server counts it done before our slot frees.

    sshd's pre-auth process hands the connection over a moment after the client has seen its
    login accepted, and counts it among MaxStartups until then: with at most 8 logins in
    progress, bursts of 30 still got connections dropped (3 bursts in 15). The answer to a
    global request comes from the process that takes over, so after it the login is done on
    both sides (0 bursts in 22). Every SSH server must answer it (RFC 4254, 4).
    """
    with _watchdog(transport, endpoint.connect_timeout) as expired:
        transport.global_request("keepalive@openssh.com", wait=True)
    if expired.is_set() or not transport.is_active():
        raise RemoteUnavailable(
            f"the SFTP server {endpoint.host}:{endpoint.port} did not answer after the login "
            f"within {endpoint.connect_timeout:g} s"
        )


def open_sftp(transport: paramiko.Transport, endpoint: SftpEndpoint) -> paramiko.SFTPClient:
    """One SFTP channel over an authenticated transport, opened and then used with a deadline."""
    return _start_sftp(transport, _open_channel(transport, endpoint), endpoint)


def _open_channel(transport: paramiko.Transport, endpoint: SftpEndpoint) -> paramiko.Channel:
    """A session channel, open (one round trip), each later wait on it bounded by op_timeout."""
    timeout = endpoint.op_timeout
    with translate("the SFTP server did not open an SFTP session"):
        try:
            chan = transport.open_session(
                window_size=WINDOW_SIZE, max_packet_size=MAX_PACKET_SIZE, timeout=timeout
            )
        except paramiko.ChannelException as exc:
            # What OpenSSH answers past MaxSessions, or a server limiting sessions per user.
            raise ChannelRefused(
                f"the SFTP server refused an SFTP session ({exc.text or 'open failed'})"
            ) from exc
    chan.settimeout(timeout)  # every later wait for a reply ends after this long
    return chan


def _start_sftp(
    transport: paramiko.Transport, chan: paramiko.Channel, endpoint: SftpEndpoint
) -> paramiko.SFTPClient:
    """The "sftp" subsystem on ``chan``, then SFTP's version exchange: two round trips.

    They cannot overlap on OpenSSH: it opens a session channel with a window of 0 bytes and
    widens it only once the subsystem runs, so SFTP's INIT can only follow the answer.
    """
    timeout = endpoint.op_timeout
    with _watchdog(transport, timeout) as expired:
        try:
            # paramiko waits for the subsystem reply without a deadline: the watchdog closes
            # the transport if it has not come in time, which ends the wait.
            chan.invoke_subsystem("sftp")
            return paramiko.SFTPClient(chan)
        except LINK_ERRORS as exc:
            if expired.is_set() or isinstance(exc, TimeoutError):
                raise RemoteUnavailable(
                    f"the SFTP server did not start an SFTP session within {timeout:g} s"
                ) from exc
            if isinstance(exc, paramiko.SSHException) and transport.is_active():
                # The subsystem request was answered with a failure.
                raise ChannelRefused(f"the SFTP server refused the SFTP subsystem ({exc})") from exc
            raise RemoteUnavailable(
                f"the SFTP server closed the connection while starting SFTP ({exc})"
            ) from exc


class _PasswordLogin(AuthHandler):  # type: ignore[misc]  # paramiko is untyped
    """paramiko's client login by password, with the password right behind the service request.

    paramiko sends the request for the "ssh-userauth" service, waits for the server to accept
    it, and only then sends the login: a round trip spent waiting. A server takes a
    connection's messages in order (RFC 4253, 10 asks nothing more of the client), so the
    login follows the request at once; OpenSSH and asyncssh both answer the pair in order.
    The host key was verified before this is called, and the password is sent once.
    """

    @classmethod
    def attempt(cls, transport: paramiko.Transport, username: str, password: str) -> None:
        """One password attempt, as ``Transport.auth_password(..., fallback=False)`` makes it."""
        if not transport.is_active() or not transport.initial_kex_done:
            raise paramiko.SSHException("No existing session")
        handler = cls(transport)
        transport.auth_handler = handler
        done = threading.Event()
        handler.auth_password(username, password, done)
        handler.wait_for_response(done)

    def _request_auth(self) -> None:
        super()._request_auth()  # SERVICE_REQUEST "ssh-userauth"
        m = Message()
        m.add_byte(cMSG_USERAUTH_REQUEST)
        m.add_string(self.username)
        m.add_string("ssh-connection")
        m.add_string("password")
        m.add_boolean(False)
        m.add_string(self.password.encode("utf-8"))
        self.transport._send_message(m)

    def _parse_service_accept(self, m: Message) -> None:
        """The service was accepted; the login already went with the request."""


@contextmanager
def _watchdog(transport: paramiko.Transport, seconds: float) -> Iterator[threading.Event]:
    """Close ``transport`` if the block has not finished within ``seconds``."""
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        transport.close()

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.name = "qc-sftp-deadline"
    timer.start()
    try:
        yield expired
    finally:
        timer.cancel()
