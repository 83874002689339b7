"""A small read-only SFTP server (asyncssh) in a background thread, for the demo and the tests.

Layout: the server is chrooted at ``root``, so clients see ``root`` as ``/``. The caller says where
the sites live inside that tree with ``sites_root`` (a client-side absolute path, default ``/``);
the handle repeats it so the tool can be pointed at ``handle.sites_root``. For example, with
``root/sites/<site id>/...`` on disk, pass ``sites_root="/sites"``.

Only password authentication and the ``sftp`` subsystem are offered; shells, exec, port
forwarding and keyboard-interactive are all refused, and so is every write.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import threading
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self, cast

import asyncssh
from asyncssh.channel import SSHChannel
from asyncssh.stream import SSHServerStreamSession

log = logging.getLogger(__name__)

# Flow control chosen so that pipelined reads are never throttled by the server: the receive
# window and packet size asyncssh advertises (it only receives small READ requests; data sent to
# the client is bounded by the client's own window), and a rekey threshold far above any scan.
WINDOW_BYTES = 16 * 1024 * 1024
MAX_PACKET_BYTES = 256 * 1024
REKEY_BYTES = 1 << 36  # 64 GiB: a scan moves a few hundred MB at most
LOGIN_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0

_WRITE_FLAGS = (
    asyncssh.FXF_WRITE
    | asyncssh.FXF_CREAT
    | asyncssh.FXF_TRUNC
    | asyncssh.FXF_APPEND
    | asyncssh.FXF_EXCL
)


@dataclass
class _Stats:
    """Counters shared by every connection of one server; touched only on the server's loop."""

    auth_attempts: Counter[str] = field(default_factory=Counter)
    connections: int = 0
    files_opened: int = 0
    bytes_read: int = 0
    open_channels: int = 0
    max_concurrent_channels: int = 0


class _ReadOnlySFTP(asyncssh.SFTPServer):
    """asyncssh's file-backed SFTP server, chrooted, counting opens and reads, refusing writes."""

    def __init__(
        self,
        chan: asyncssh.SSHServerChannel[bytes],
        root: Path,
        stats: _Stats,
        read_cap: int | None,
    ) -> None:
        super().__init__(chan, chroot=bytes(root))
        self._stats = stats
        self._read_cap = read_cap

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        if pflags & _WRITE_FLAGS:
            raise asyncssh.SFTPPermissionDenied("read-only server")
        file_obj = super().open(path, pflags, attrs)
        self._stats.files_opened += 1
        return file_obj

    def read(self, file_obj: object, offset: int, size: int) -> bytes:
        # A capped server answers a large READ with a short one, as some real servers do.
        if self._read_cap is not None:
            size = min(size, self._read_cap)
        data = super().read(file_obj, offset, size)
        assert isinstance(data, bytes)
        self._stats.bytes_read += len(data)
        return data

    def _refuse(self, *_args: object) -> None:
        raise asyncssh.SFTPPermissionDenied("read-only server")

    write = _refuse  # type: ignore[assignment]
    remove = _refuse  # type: ignore[assignment]
    mkdir = _refuse  # type: ignore[assignment]
    rmdir = _refuse  # type: ignore[assignment]
    rename = _refuse  # type: ignore[assignment]
    posix_rename = _refuse  # type: ignore[assignment]
    setstat = _refuse  # type: ignore[assignment]
    lsetstat = _refuse  # type: ignore[assignment]
    fsetstat = _refuse  # type: ignore[assignment]
    symlink = _refuse  # type: ignore[assignment]
    link = _refuse  # type: ignore[assignment]


class _CountedSession(SSHServerStreamSession[bytes]):
    """A session channel that serves only SFTP and keeps the open-channel count honest."""

    def __init__(self, owner: _Server) -> None:
        super().__init__(None, owner.make_sftp, sftp_version=3)
        self._owner = owner

    def connection_lost(self, exc: Exception | None) -> None:
        self._owner.channel_closed()
        super().connection_lost(exc)


class _Server(asyncssh.SSHServer):
    """One per connection: password checks against ``users`` and the per-connection channel cap."""

    def __init__(
        self, config: _Config, stats: _Stats, live: set[asyncssh.SSHServerConnection]
    ) -> None:
        self._config = config
        self._stats = stats
        self._live = live
        self._conn: asyncssh.SSHServerConnection | None = None
        self._channels = 0

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._live.add(conn)
        self._stats.connections += 1

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._live.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True  # every user must authenticate

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        self._stats.auth_attempts[username] += 1
        expected = self._config.users.get(username)
        ok = expected is not None and hmac.compare_digest(expected.encode(), password.encode())
        log.info("sftp password auth for %r: %s", username, "ok" if ok else "rejected")
        return ok

    def session_requested(self) -> _CountedSession:
        cap = self._config.max_sessions
        if cap is not None and self._channels >= cap:
            # What OpenSSH 9.2 answers past MaxSessions (paramiko: ChannelException(2, ...)).
            raise asyncssh.ChannelOpenError(asyncssh.OPEN_CONNECT_FAILED, "open failed")
        self._channels += 1
        self._stats.open_channels += 1
        self._stats.max_concurrent_channels = max(
            self._stats.max_concurrent_channels, self._stats.open_channels
        )
        return _CountedSession(self)

    def channel_closed(self) -> None:
        self._channels -= 1
        self._stats.open_channels -= 1

    def make_sftp(self, chan: SSHChannel[bytes]) -> asyncssh.SFTPServer:
        # asyncssh types the factory's argument as the base channel; it is a server channel.
        server_chan = cast("asyncssh.SSHServerChannel[bytes]", chan)
        return _ReadOnlySFTP(server_chan, self._config.root, self._stats, self._config.read_cap)


@dataclass(frozen=True)
class _Config:
    root: Path
    users: Mapping[str, str]
    read_cap: int | None
    max_sessions: int | None


@dataclass(eq=False)
class SftpServerHandle:
    """A running server: where it listens, its host key, what it counted; ``stop()`` ends it."""

    host: str
    port: int
    root: Path
    sites_root: str
    host_key: asyncssh.SSHKey = field(repr=False)
    _stats: _Stats = field(repr=False)
    _loop: asyncio.AbstractEventLoop = field(repr=False)
    _thread: threading.Thread = field(repr=False)
    _shutdown: Callable[[], Coroutine[Any, Any, None]] = field(repr=False)  # run on the loop
    _users: dict[str, str] = field(default_factory=dict, repr=False)  # the one the server checks
    _stopped: bool = field(default=False, repr=False)

    @property
    def host_key_line(self) -> str:
        """The known_hosts line for this server, as OpenSSH writes it for a non-22 port."""
        public = self.host_key.convert_to_public()
        public.set_comment(None)
        key_text = public.export_public_key("openssh").decode().strip()
        return f"[{self.host}]:{self.port} {key_text}"

    def write_known_hosts(self, path: Path) -> Path:
        """Write a known_hosts file holding only this server's key; returns ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.host_key_line + "\n", encoding="ascii")
        return path

    def set_password(self, username: str, password: str) -> None:
        """Change a user's password, as an administrator would; open connections stay."""
        self._users[username] = password

    @property
    def auth_attempts(self) -> Counter[str]:
        """Password attempts per username, successful or not."""
        return self._stats.auth_attempts

    @property
    def connections(self) -> int:
        return self._stats.connections

    @property
    def files_opened(self) -> int:
        return self._stats.files_opened

    @property
    def bytes_read(self) -> int:
        return self._stats.bytes_read

    @property
    def max_concurrent_channels(self) -> int:
        """The most session channels open at once, over all connections."""
        return self._stats.max_concurrent_channels

    def stop(self) -> None:
        """Close every connection and the listener, stop the loop, join the thread; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        if self._loop.is_running():
            future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
            try:
                future.result(timeout=STOP_TIMEOUT_S)
            except (TimeoutError, asyncio.CancelledError):
                log.warning("sftp server did not close cleanly")
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=STOP_TIMEOUT_S)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_sftp_server(
    root: Path,
    users: Mapping[str, str],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    read_cap: int | None = None,
    host_key: asyncssh.SSHKey | None = None,
    max_sessions: int | None = None,
    sites_root: str = "/",
) -> SftpServerHandle:
    """Serve ``root`` read-only over SFTP on its own thread; returns once the port is listening.

    ``read_cap`` caps every READ reply at that many bytes; ``max_sessions`` caps the session
    channels open at once on one connection (like sshd's MaxSessions); ``sites_root`` is the
    client-side path of the sites directory inside the chroot.
    """
    root = Path(root).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"SFTP root {root} is not a directory")
    if not sites_root.startswith("/"):
        raise ValueError("sites_root must be an absolute client-side path")
    if not (root / sites_root.lstrip("/")).is_dir():
        raise FileNotFoundError(f"sites root {sites_root} does not exist under {root}")
    key = host_key if host_key is not None else asyncssh.generate_private_key("ssh-ed25519")
    accounts = dict(users)
    config = _Config(root=root, users=accounts, read_cap=read_cap, max_sessions=max_sessions)
    stats = _Stats()
    live: set[asyncssh.SSHServerConnection] = set()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    outcome: dict[str, Any] = {}

    async def listen() -> asyncssh.SSHAcceptor:
        return await asyncssh.listen(
            host,
            port,
            server_factory=lambda: _Server(config, stats, live),
            server_host_keys=[key],
            public_key_auth=False,
            kbdint_auth=False,  # else asyncssh offers keyboard-interactive backed by passwords
            password_auth=True,
            allow_pty=False,
            agent_forwarding=False,
            x11_forwarding=False,
            window=WINDOW_BYTES,
            max_pktsize=MAX_PACKET_BYTES,
            rekey_bytes=REKEY_BYTES,
            login_timeout=LOGIN_TIMEOUT_S,
        )

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            outcome["acceptor"] = loop.run_until_complete(listen())
        except OSError as exc:  # e.g. port in use: re-raised in the starting thread
            outcome["error"] = exc
        finally:
            ready.set()
        if "acceptor" not in outcome:
            loop.close()
            return
        try:
            loop.run_forever()
        finally:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    thread = threading.Thread(target=run, name=f"sftp-server-{root.name}", daemon=True)
    thread.start()
    ready.wait()
    if "acceptor" not in outcome:
        thread.join()
        raise outcome.get("error") or RuntimeError("SFTP server failed to start (see log)")
    acceptor: asyncssh.SSHAcceptor = outcome["acceptor"]

    async def shutdown() -> None:
        acceptor.close()
        for conn in list(live):
            conn.close()
        waits = [conn.wait_closed() for conn in list(live)] + [acceptor.wait_closed()]
        await asyncio.wait_for(asyncio.gather(*waits, return_exceptions=True), STOP_TIMEOUT_S)

    return SftpServerHandle(
        host=host,
        port=acceptor.get_port(),
        root=root,
        sites_root=sites_root,
        host_key=key,
        _stats=stats,
        _loop=loop,
        _thread=thread,
        _shutdown=shutdown,
        _users=accounts,
    )
