"""The paramiko internals adapters/sftp/wire.py relies on are there and behave as it uses them.

wire.py frames SFTP requests itself on paramiko's channel, so it leans on parts of paramiko
that are not its public API: the SFTPClient's request counter and its lock, the attribute
decoder ``SFTPAttributes._from_msg``, the protocol constants, and (for the benchmark's
unframed mode) ``_send_packet`` and ``_read_packet``. If a paramiko upgrade changes one of
them, a test here fails and says what wire.py needs, instead of a scan failing in the field.

paramiko's SFTPClient runs over any socket, so these tests give it one end of a socketpair
and play a minimal SFTP server on the other: no SSH, no network.
"""

from __future__ import annotations

import socket
import stat
import struct
import threading
from collections.abc import Iterator

import paramiko
import pytest
from paramiko import sftp as paramiko_sftp
from paramiko.message import Message
from paramiko.sftp_attr import SFTPAttributes
from qc_tool.adapters.sftp import engine, wire
from qc_tool.adapters.sftp.wire import Reply, Wire
from waiting import wait_until

PARAMIKO = f"paramiko {paramiko.__version__}"
CMD_INIT, CMD_VERSION, CMD_LSTAT, CMD_STAT, CMD_ATTRS = (
    1,
    2,
    7,
    17,
    105,
)  # SFTP v3 (draft-ietf-secsh-filexfer-02)


class Peer:
    """The server end of a socketpair: answers INIT with VERSION 3 and LSTAT with a size,
    and records every request's (type, id)."""

    SIZE = 123_456_789_012

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.requests: list[tuple[int, int]] = []
        self.packets: list[bytes] = []  # every packet as it arrived, length word included
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _recv(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            try:
                chunk = self.sock.recv(n - len(data))
            except OSError:  # the test closed its end (a reset, with bytes left unread)
                return b""
            if not chunk:
                return b""
            data += chunk
        return data

    def _serve(self) -> None:
        while head := self._recv(4):
            (length,) = struct.unpack(">I", head)
            packet = self._recv(length)
            self.packets.append(head + packet)
            if packet[0] == CMD_INIT:
                self.sock.sendall(struct.pack(">IBI", 5, CMD_VERSION, 3))
                continue
            (num,) = struct.unpack_from(">I", packet, 1)
            self.requests.append((packet[0], num))
            if packet[0] == CMD_LSTAT:
                body = struct.pack(">BIIQ", CMD_ATTRS, num, SFTPAttributes.FLAG_SIZE, self.SIZE)
                self.sock.sendall(struct.pack(">I", len(body)) + body)


class Pipe:
    """Our end of the socketpair, with the one Channel method paramiko's log lines ask for."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def get_name(self) -> str:
        return "socketpair"

    def __getattr__(self, name: str) -> object:
        return getattr(self._sock, name)


@pytest.fixture
def client() -> Iterator[tuple[paramiko.SFTPClient, Peer]]:
    ours, theirs = socket.socketpair()
    peer = Peer(theirs)
    sftp = paramiko.SFTPClient(Pipe(ours))
    yield sftp, peer
    ours.close()
    theirs.close()


def test_the_protocol_numbers_wire_and_engine_import_are_sftp_version_3s() -> None:
    expected = {
        "CMD_OPEN": 3,
        "CMD_CLOSE": 4,
        "CMD_READ": 5,
        "CMD_OPENDIR": 11,
        "CMD_READDIR": 12,
        "CMD_STATUS": 101,
        "CMD_HANDLE": 102,
        "CMD_DATA": 103,
        "CMD_NAME": 104,
        "SFTP_FLAG_READ": 1,
        "SFTP_OK": 0,
        "SFTP_EOF": 1,
        "SFTP_NO_SUCH_FILE": 2,
        "SFTP_PERMISSION_DENIED": 3,
    }
    found = {name: getattr(paramiko_sftp, name, None) for name in expected}
    assert found == expected, f"{PARAMIKO}: paramiko.sftp's constants changed (wire.py, engine.py)"
    for module in (wire, engine):  # the names the adapter imported are these very values
        assert all(getattr(module, n, v) == v for n, v in expected.items()), module.__name__


def test_the_client_counts_request_ids_in_request_number_under_its_lock(
    client: tuple[paramiko.SFTPClient, Peer],
) -> None:
    sftp, _ = client
    why = "wire.py takes its request ids from it (Wire._next_id)"
    assert isinstance(getattr(sftp, "request_number", None), int), (
        f"{PARAMIKO}: SFTPClient.request_number is gone or not an int; {why}"
    )
    lock = getattr(sftp, "_lock", None)
    assert lock is not None and hasattr(lock, "__enter__") and hasattr(lock, "acquire"), (
        f"{PARAMIKO}: SFTPClient._lock is gone or not a lock; {why}"
    )
    first = sftp.request_number
    ids = [Wire(sftp)._next_id() for _ in range(3)]
    assert ids == [first, first + 1, first + 2]
    assert sftp.request_number == first + 3


def test_paramikos_own_next_request_takes_the_id_after_the_wires(
    client: tuple[paramiko.SFTPClient, Peer],
) -> None:
    sftp, peer = client
    taken = [Wire(sftp)._next_id() for _ in range(5)]
    attrs = sftp.lstat("/anything")  # paramiko's own request, after the wire's
    assert peer.requests == [(CMD_LSTAT, taken[-1] + 1)], (
        f"{PARAMIKO}: SFTPClient's requests no longer number themselves from request_number: "
        "wire.py's ids and paramiko's (its CLOSE of the channel) could collide"
    )
    assert attrs.st_size == Peer.SIZE


def test_from_msg_decodes_one_entrys_attributes_and_stops_at_the_next() -> None:
    flags = (
        SFTPAttributes.FLAG_SIZE
        | SFTPAttributes.FLAG_UIDGID
        | SFTPAttributes.FLAG_PERMISSIONS
        | SFTPAttributes.FLAG_AMTIME
        | SFTPAttributes.FLAG_EXTENDED
    )
    msg = Message()
    msg.add_int(flags)
    msg.add_int64(7_000_000)
    msg.add_int(1000)
    msg.add_int(1001)
    msg.add_int(stat.S_IFREG | 0o644)
    msg.add_int(1_700_000_000)
    msg.add_int(1_700_000_100)
    msg.add_int(1)
    msg.add_string(b"ext@example")
    msg.add_string(b"value")
    msg.add_string(b"the next entry")
    from_msg = getattr(SFTPAttributes, "_from_msg", None)
    assert callable(from_msg), (
        f"{PARAMIKO}: SFTPAttributes._from_msg is gone; wire.py decodes READDIR entries with it "
        "(Reply.names)"
    )
    decoded = Message(msg.asbytes())
    attrs = from_msg(decoded, "DJI_0001.JPG", "-rw-r--r-- 1 a b")
    read = (attrs.filename, attrs.longname, attrs.st_size, attrs.st_uid, attrs.st_gid)
    assert read == ("DJI_0001.JPG", "-rw-r--r-- 1 a b", 7_000_000, 1000, 1001)
    assert (attrs.st_mode, attrs.st_atime, attrs.st_mtime) == (
        stat.S_IFREG | 0o644,
        1_700_000_000,
        1_700_000_100,
    )
    assert len(attrs.attr) == 1  # an extended pair (paramiko 5.1 files it value -> name)
    assert decoded.get_string() == b"the next entry", (
        f"{PARAMIKO}: SFTPAttributes._from_msg reads more or less than one entry's attributes"
    )


def test_a_readdir_reply_as_a_server_sends_it_decodes_to_its_entries() -> None:
    body = Message()
    body.add_int(2)
    for name, mode, size in ((b"Tower", stat.S_IFDIR | 0o755, 4096), (b"caf\xe9.JPG", 0o100644, 9)):
        body.add_string(name)
        body.add_string(b"ls -l text")
        body.add_int(SFTPAttributes.FLAG_SIZE | SFTPAttributes.FLAG_PERMISSIONS)
        body.add_int64(size)
        body.add_int(mode)
    entries = Reply(104, 7, body.asbytes()).names()
    assert [(e.filename, e.st_size, stat.S_ISDIR(e.st_mode or 0)) for e in entries] == [
        ("Tower", 4096, True),
        ("caf\\xe9.JPG", 9, False),  # not UTF-8: shown escaped (paths.display_name)
    ]


def test_send_packet_and_read_packet_frame_one_packet_each_as_the_unframed_wire_uses_them(
    client: tuple[paramiko.SFTPClient, Peer],
) -> None:
    sftp, peer = client
    for name in ("_send_packet", "_read_packet"):
        assert callable(getattr(sftp, name, None)), (
            f"{PARAMIKO}: SFTPClient.{name} is gone; wire.py's unframed mode (the benchmark's "
            "--no-framing) sends and reads through it"
        )
    payload = struct.pack(">I", 77) + b"\x00\x00\x00\x01/"
    sftp._send_packet(CMD_STAT, Message(payload))  # a request the peer does not answer
    wait_until(lambda: peer.requests, message="the peer to get the request")
    assert peer.requests == [(CMD_STAT, 77)]
    assert peer.packets[-1] == struct.pack(">IB", len(payload) + 1, CMD_STAT) + payload
    peer.sock.sendall(struct.pack(">IBI", 9, 101, 77) + struct.pack(">I", 0))
    assert sftp._read_packet() == (101, struct.pack(">II", 77, 0))
    peer.sock.sendall(b"\xff\x00\x00\x05garbage")
    with pytest.raises(paramiko_sftp.SFTPError, match="Garbage packet"):
        sftp._read_packet()


def test_the_login_steps_connect_replaces_are_paramikos_client_auth_handlers() -> None:
    # connect._PasswordLogin sends the password from _request_auth (behind the service
    # request) and answers SERVICE_ACCEPT with nothing: both must still be what paramiko's
    # client login calls, through the handler table it dispatches SERVICE_ACCEPT by.
    from paramiko.auth_handler import AuthHandler
    from paramiko.common import MSG_SERVICE_ACCEPT
    from qc_tool.adapters.sftp.connect import _PasswordLogin

    ours, theirs = socket.socketpair()
    transport = paramiko.Transport(ours)
    try:
        handler = _PasswordLogin(transport)
        table = handler._client_handler_table
        assert table[MSG_SERVICE_ACCEPT] == handler._parse_service_accept, PARAMIKO
        assert callable(AuthHandler._request_auth), PARAMIKO
        assert "_request_auth" in AuthHandler.auth_password.__code__.co_names, PARAMIKO
        assert callable(handler.wait_for_response), PARAMIKO
    finally:
        transport.close()
        theirs.close()
