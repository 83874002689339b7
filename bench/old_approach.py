"""The baseline: how the field tool reads GPS today, reproduced faithfully with paramiko.

Per folder it opens a pool of up to `connections` SSH connections, deals the images out
round-robin, runs one thread per connection, pulls each image WHOLE over SFTP and parses it
with exifread. It deliberately shares no code with qc_tool: it is what the tool is measured
against, so a change in the tool must never change the baseline.

How a file is pulled (`method`):

* ``"getfo"`` (default, the field tool's way): ``sftp.getfo(path, BytesIO())``, paramiko's
  own whole-file download. It stats the file, opens it and *prefetches* it (32 KB read
  requests pipelined up front, paramiko's default for ``get``/``getfo``), then exifread
  parses the bytes in memory.
* ``"read"``: ``sftp.open(path, "rb").read()``. A bare ``read()`` does NOT prefetch in
  paramiko: it issues one 8 KB request at a time and waits for each, so it costs a round trip
  per 8 KB. Kept only to show why nobody should do that.
* ``"stream"``: ``exifread.process_file`` directly on the paramiko file object. Not a whole
  file read: exifread seeks and reads small pieces, and every seek drops paramiko's buffer,
  so each piece is a round trip. Kept as the other naive variant.
"""

from __future__ import annotations

import io
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import exifread
import paramiko

Method = Literal["getfo", "read", "stream"]
TIMEOUT_S = 60.0


@dataclass(frozen=True)
class OldResult:
    """What one baseline scan did and how long it took."""

    images: int
    seconds: float
    images_per_s: float
    bytes_read: int  # file data the client received over SFTP
    gps_found: int
    method: str
    connections_opened: int


@dataclass(frozen=True)
class _Login:
    host: str
    port: int
    username: str
    password: str
    known_hosts: Path
    via: tuple[str, int] | None


def _connect(login: _Login) -> paramiko.SSHClient:
    """Open one authenticated SSH connection, checking the host key against known_hosts only."""
    client = paramiko.SSHClient()
    client.load_host_keys(str(login.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    # Through a link emulator the socket goes to the proxy, but the host key is still looked
    # up under the real server's name ("[host]:port"), which paramiko takes from hostname/port.
    sock = socket.create_connection(login.via, timeout=TIMEOUT_S) if login.via else None
    try:
        client.connect(
            login.host,
            login.port,
            username=login.username,
            password=login.password,
            allow_agent=False,
            look_for_keys=False,
            sock=sock,
            timeout=TIMEOUT_S,
            banner_timeout=TIMEOUT_S,
            auth_timeout=TIMEOUT_S,
        )
    except BaseException:
        client.close()
        if sock is not None:
            sock.close()
        raise
    return client


def _has_gps(tags: Mapping[str, Any]) -> bool:
    return "GPS GPSLatitude" in tags and "GPS GPSLongitude" in tags


def _pull_getfo(sftp: paramiko.SFTPClient, path: str) -> tuple[int, bool]:
    buf = io.BytesIO()
    sftp.getfo(path, buf)
    size = buf.tell()
    buf.seek(0)
    return size, _has_gps(exifread.process_file(buf, details=False))


def _counting(f: paramiko.SFTPFile) -> list[int]:
    """Count the file data paramiko receives (every SFTP read goes through `_read`)."""
    received = [0]
    inner = f._read

    def _read(size: int) -> bytes:
        data: bytes = inner(size)
        received[0] += len(data)
        return data

    f._read = _read  # wrap the instance, not paramiko: the baseline stays untouched elsewhere
    return received


def _pull_read(sftp: paramiko.SFTPClient, path: str) -> tuple[int, bool]:
    with sftp.open(path, "rb") as f:
        received = _counting(f)
        data = f.read()
    return received[0], _has_gps(exifread.process_file(io.BytesIO(data), details=False))


def _pull_stream(sftp: paramiko.SFTPClient, path: str) -> tuple[int, bool]:
    with sftp.open(path, "rb") as f:
        received = _counting(f)
        tags = exifread.process_file(f, details=False)
    return received[0], _has_gps(tags)


_PULL: dict[str, Callable[[paramiko.SFTPClient, str], tuple[int, bool]]] = {
    "getfo": _pull_getfo,
    "read": _pull_read,
    "stream": _pull_stream,
}


def _worker(login: _Login, paths: Sequence[str], method: Method) -> tuple[int, int]:
    """One pool member: own connection, own SFTP session, its share of the folder in order."""
    pull = _PULL[method]
    received = gps = 0
    client = _connect(login)
    try:
        sftp = client.open_sftp()
        try:
            for path in paths:
                size, found = pull(sftp, path)
                received += size
                gps += found
        finally:
            sftp.close()
    finally:
        client.close()
    return received, gps


def scan_old(
    host: str,
    port: int,
    username: str,
    password: str,
    known_hosts: Path,
    folders: Mapping[str, Sequence[str]],
    *,
    connections: int,
    method: Method = "getfo",
    via: tuple[str, int] | None = None,
) -> OldResult:
    """Scan every folder the field tool's way; connections=1 is the sequential variant.

    `via` is the address actually dialled (e.g. a link emulator); host/port still name the
    server for the known_hosts lookup.
    """
    if connections < 1:
        raise ValueError("connections must be >= 1")
    login = _Login(host, port, username, password, known_hosts, via)
    images = received = gps = opened = 0
    start = time.perf_counter()
    for paths in folders.values():
        if not paths:
            continue
        pool_size = min(connections, len(paths))
        shares = [list(paths[i::pool_size]) for i in range(pool_size)]  # round-robin
        opened += pool_size
        with ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="old-sftp") as pool:
            futures = [pool.submit(_worker, login, share, method) for share in shares]
            for future in futures:
                got, found = future.result()
                received += got
                gps += found
        images += len(paths)
    seconds = time.perf_counter() - start
    return OldResult(
        images=images,
        seconds=seconds,
        images_per_s=images / seconds if seconds > 0 else 0.0,
        bytes_read=received,
        gps_found=gps,
        method=method,
        connections_opened=opened,
    )
