"""Open one authenticated SSH connection: host key checked first, then one password attempt.

paramiko's SSHClient is not used because it retries with other methods (agent,
keys, keyboard-interactive with the same password); a wrong password here must
cost the server exactly one attempt, since OpenSSH penalises a source address for
repeated failures and every technician shares this server's address.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from pathlib import Path

import paramiko

from qc_tool.errors import AuthFailed, HostKeyRejected, RemoteUnavailable

log = logging.getLogger(__name__)

# Large windows keep many pipelined replies in flight on a long, fast link.
WINDOW_SIZE = 64 * 1024 * 1024
MAX_PACKET_SIZE = 256 * 1024


@dataclass(frozen=True, slots=True)
class SftpEndpoint:
    """Where the SFTP server is and how it is trusted; comes from configuration, never a user."""

    host: str
    port: int
    known_hosts: Path | None
    connect_timeout: float = 10.0
    op_timeout: float = 30.0

    @property
    def host_key_name(self) -> str:
        """The name known_hosts uses: "host" on port 22, "[host]:port" elsewhere."""
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"

    @property
    def server_id(self) -> str:
        return f"sftp://{self.host}:{self.port}"


def open_transport(endpoint: SftpEndpoint, username: str, password: str) -> paramiko.Transport:
    """Connect, verify the host key, and make one password attempt; raise a QCError otherwise."""
    known = _load_known_hosts(endpoint)
    try:
        sock = socket.create_connection(
            (endpoint.host, endpoint.port), timeout=endpoint.connect_timeout
        )
    except OSError as exc:
        raise RemoteUnavailable(
            f"cannot reach the SFTP server {endpoint.host}:{endpoint.port} ({exc.strerror or exc})"
        ) from exc
    transport = paramiko.Transport(
        sock, default_window_size=WINDOW_SIZE, default_max_packet_size=MAX_PACKET_SIZE
    )
    try:
        transport.banner_timeout = endpoint.connect_timeout
        transport.auth_timeout = endpoint.connect_timeout
        types = _key_types(known, endpoint)
        if types:
            # Ask for a key type we can verify, as OpenSSH does with known_hosts.
            options = transport.get_security_options()
            options.key_types = [t for t in options.key_types if t in types] or options.key_types
        transport.start_client(timeout=endpoint.connect_timeout)
        _verify_host_key(known, endpoint, transport.get_remote_server_key())
        transport.auth_password(username, password, fallback=False)
        transport.set_keepalive(15)
        return transport
    except paramiko.BadAuthenticationType as exc:
        transport.close()
        raise AuthFailed(
            "the SFTP server does not accept password logins "
            f"(it allows: {', '.join(exc.allowed_types) or 'nothing'})"
        ) from exc
    except paramiko.AuthenticationException as exc:
        transport.close()
        raise AuthFailed("wrong username or password") from exc
    except HostKeyRejected:
        transport.close()
        raise
    except (paramiko.SSHException, OSError, EOFError) as exc:
        transport.close()
        raise RemoteUnavailable(
            f"the SFTP server {endpoint.host}:{endpoint.port} did not complete the SSH handshake "
            f"({exc or type(exc).__name__})"
        ) from exc


def open_sftp(transport: paramiko.Transport, endpoint: SftpEndpoint) -> paramiko.SFTPClient:
    """One SFTP channel over an authenticated transport, with an operation deadline."""
    try:
        sftp = paramiko.SFTPClient.from_transport(
            transport, window_size=WINDOW_SIZE, max_packet_size=MAX_PACKET_SIZE
        )
    except (paramiko.SSHException, OSError, EOFError) as exc:
        raise RemoteUnavailable(f"the SFTP server refused an SFTP session ({exc})") from exc
    if sftp is None:
        raise RemoteUnavailable("the SFTP server refused an SFTP session")
    sftp.get_channel().settimeout(endpoint.op_timeout)
    return sftp


def _load_known_hosts(endpoint: SftpEndpoint) -> paramiko.HostKeys:
    if endpoint.known_hosts is None:
        raise HostKeyRejected(
            "no known_hosts file is configured (QC_KNOWN_HOSTS), so the server cannot be verified"
        )
    try:
        return paramiko.HostKeys(str(endpoint.known_hosts))
    except OSError as exc:
        raise HostKeyRejected(
            f"cannot read the known_hosts file {endpoint.known_hosts}: {exc.strerror}"
        ) from exc


def _key_types(known: paramiko.HostKeys, endpoint: SftpEndpoint) -> set[str]:
    entry = known.lookup(endpoint.host_key_name)
    return set(entry.keys()) if entry else set()


def _verify_host_key(known: paramiko.HostKeys, endpoint: SftpEndpoint, key: paramiko.PKey) -> None:
    name = endpoint.host_key_name
    entry = known.lookup(name)
    if entry is None:
        raise HostKeyRejected(
            f"the SFTP server's host key is unknown: {name} is not in the known_hosts file "
            f"(offered {key.get_name()} {key.fingerprint})"
        )
    expected = entry.get(key.get_name())
    if expected is None or expected != key:
        log.warning("host key mismatch for %s: offered %s", name, key.fingerprint)
        raise HostKeyRejected(
            f"the SFTP server's host key has CHANGED for {name} (offered {key.get_name()} "
            f"{key.fingerprint}); refusing to send the password"
        )
