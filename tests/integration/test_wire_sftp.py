"""The SFTP wire over real SSH: a server whose SFTP stream goes bad, and the framing itself.

A small asyncssh server here logs the tool in as a real one does and starts the "sftp"
subsystem, answers paramiko's INIT, and then answers the tool's first request with a scripted
stream: a length no reply has, a reply too short for its type, a reply cut short. The tool
must come back with its own RemoteUnavailable, naming the fault, whatever follows: more
bytes, the channel closing, or silence (then after the operation deadline, as a timeout).
"""

from __future__ import annotations

import asyncio
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import asyncssh
import pytest
from qc_tool.adapters.sftp.connect import SftpEndpoint, open_sftp, open_transport
from qc_tool.adapters.sftp.connection import SftpConnector
from qc_tool.adapters.sftp.wire import Wire
from qc_tool.demo.sftp_server import SftpServerHandle
from qc_tool.demo.sites import SiteLayout, SiteTruth, generate_site, make_body
from qc_tool.errors import RemoteUnavailable
from qc_tool.services.ports import NoCache
from qc_tool.services.scan.site_analysis_service import scan_site
from scan_support import mismatches

from bench.packets import counting

USER, PASSWORD = "tech", "correct horse"
VERSION_3 = struct.pack(">IBI", 5, 2, 3)  # SSH_FXP_VERSION, version 3
Then = Literal["stay", "close"]


class _Scripted(asyncssh.SSHServerSession[bytes]):
    """An "sftp" subsystem: VERSION for the INIT, then ``script`` for the first request."""

    def __init__(self, script: bytes, then: Then) -> None:
        self._script, self._then = script, then
        self._chan: Any = None
        self._buffer = b""
        self._answered = False

    def connection_made(self, chan: Any) -> None:
        self._chan = chan

    def subsystem_requested(self, subsystem: str) -> bool:
        return subsystem == "sftp"

    def data_received(self, data: bytes, datatype: object) -> None:
        assert self._chan is not None
        self._buffer += data
        while len(self._buffer) >= 4:
            (length,) = struct.unpack_from(">I", self._buffer)
            if len(self._buffer) < 4 + length:
                return
            packet, self._buffer = self._buffer[4 : 4 + length], self._buffer[4 + length :]
            if packet[0] == 1:  # INIT
                self._chan.write(VERSION_3)
            elif not self._answered:
                self._answered = True
                self._chan.write(self._script)
                if self._then == "close":
                    self._chan.close()


class _Server(asyncssh.SSHServer):
    def __init__(self, script: bytes, then: Then) -> None:
        self._script, self._then = script, then

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return (username, password) == (USER, PASSWORD)

    def session_requested(self) -> _Scripted:
        return _Scripted(self._script, self._then)


@contextmanager
def scripted_server(script: bytes, then: Then, known_hosts: Path) -> Iterator[int]:
    """Serve on 127.0.0.1 (its key written to ``known_hosts``) until the block ends; the port."""
    key = asyncssh.generate_private_key("ssh-ed25519")
    # The loop runs in its own thread from the start: the test's thread may already run one
    # (Playwright's sync API keeps a loop in the main thread for the browser tests).
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="scripted-sftp", daemon=True)
    thread.start()

    async def listen() -> asyncssh.SSHAcceptor:
        return await asyncssh.listen(
            "127.0.0.1",
            0,
            server_factory=lambda: _Server(script, then),
            server_host_keys=[key],
            encoding=None,
            kbdint_auth=False,
            public_key_auth=False,
        )

    acceptor = asyncio.run_coroutine_threadsafe(listen(), loop).result(10)
    port = acceptor.get_port()
    public = key.convert_to_public()
    public.set_comment(None)
    line = public.export_public_key("openssh").decode().strip()
    known_hosts.write_text(f"[127.0.0.1]:{port} {line}\n")
    try:
        yield port
    finally:

        async def stop() -> None:
            acceptor.close()
            await acceptor.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


CUT_SHORT = struct.pack(">IBI", 100, 102, 1) + b"h" * 20  # a handle reply of 100 bytes: 29 come

CORRUPT: dict[str, tuple[bytes, Then, str]] = {
    "a length no reply has": (
        struct.pack(">IBI", 0x7FFFFFFF, 101, 1) + bytes(64),
        "stay",
        r"garbage on the SFTP channel \(a reply of 2147483647 bytes\)",
    ),
    "a length shorter than a reply's head": (
        struct.pack(">IBI", 2, 101, 1) + bytes(64),
        "stay",
        r"garbage on the SFTP channel \(a reply of 2 bytes\)",
    ),
    "a reply too short for its type": (
        struct.pack(">IBI", 5, 102, 1),
        "stay",
        r"garbage on the SFTP channel \(a reply of type 102 cut short\)",
    ),
    "a reply cut short, then the channel closes": (
        CUT_SHORT,
        "close",
        r"the server closed the SFTP channel",
    ),
    "a reply cut short, then silence": (CUT_SHORT, "stay", r"stopped answering \(timed out\)"),
}


@pytest.mark.parametrize("fault", list(CORRUPT))
def test_a_corrupt_sftp_stream_is_the_adapters_clean_error(fault: str, tmp_path: Path) -> None:
    script, then, expected = CORRUPT[fault]
    known_hosts = tmp_path / "known_hosts"
    with scripted_server(script, then, known_hosts) as port:
        # The deadline only ends the silent case (and a wire that waited for the 2 GB reply).
        endpoint = SftpEndpoint("127.0.0.1", port, known_hosts, connect_timeout=10, op_timeout=3)
        conn = SftpConnector(endpoint, "/sites", USER, PASSWORD).connect()
        try:
            with pytest.raises(RemoteUnavailable, match=expected):  # not struct.error, not a hang
                conn.list_sites()
        finally:
            conn.close()  # a connection whose stream went bad still closes quietly


# -- the framing: what the benchmark's --no-framing compares ------------------------------------

LAYOUT = SiteLayout(folders=(("Tower-Scans", 120),), without_gps=3)
SITE = "SITE-WIRE"


@pytest.fixture
def site(sftp_root: Path) -> SiteTruth:
    return generate_site(sftp_root / "sites", SITE, LAYOUT, body=make_body(LAYOUT))


def _connector(server: SftpServerHandle, tmp_path: Path, *, framed: bool) -> SftpConnector:
    known = server.write_known_hosts(tmp_path / "known_hosts")
    endpoint = SftpEndpoint(server.host, server.port, known, connect_timeout=10, op_timeout=30)
    return SftpConnector(endpoint, server.sites_root, USER, PASSWORD, framed=framed)


@pytest.fixture
def server(
    make_sftp_server: Callable[..., SftpServerHandle], sftp_root: Path, site: SiteTruth
) -> SftpServerHandle:
    return make_sftp_server(sftp_root, {USER: PASSWORD}, sites_root="/sites")


def test_a_scan_reads_the_same_with_and_without_the_framing(
    server: SftpServerHandle, site: SiteTruth, tmp_path: Path
) -> None:
    framed = scan_site(_connector(server, tmp_path, framed=True), NoCache(), SITE)
    unframed = scan_site(_connector(server, tmp_path, framed=False), NoCache(), SITE)
    assert mismatches(framed, site) == []
    assert [i.to_json() for i in unframed.images] == [i.to_json() for i in framed.images]


def test_the_framing_sends_a_batch_in_one_ssh_packet_and_paramiko_one_per_request(
    server: SftpServerHandle, site: SiteTruth, tmp_path: Path
) -> None:
    # How many packets a whole scan takes depends on how replies arrive (each loop of the
    # engine sends what the replies so far asked for); one batch does not.
    endpoint = _connector(server, tmp_path, framed=True).endpoint
    paths = [f"/sites/{SITE}/{image.path}" for image in site.images]
    sent: dict[bool, dict[str, int]] = {}
    for framed in (True, False):
        transport = open_transport(endpoint, USER, PASSWORD)
        try:
            wire = Wire(open_sftp(transport, endpoint), framed=framed)
            with counting() as counts:
                ids = [wire.open(path) for path in paths]
                wire.flush()
            answered: list[int] = []
            while len(answered) < len(ids):
                answered += [reply.id for reply in wire.receive(block=True) if reply.type == 102]
            assert sorted(answered) == ids  # every file opened, each reply to its own request
            sent[framed] = counts.as_dict()
        finally:
            transport.close()
    assert sent[True]["sftp_requests"] == sent[False]["sftp_requests"] == len(paths) == 120
    assert sent[True]["ssh_packets_out"] == 1  # 120 OPENs, ~6 kB: one SSH packet
    assert sent[False]["ssh_packets_out"] == len(paths)  # paramiko's way: one packet each
