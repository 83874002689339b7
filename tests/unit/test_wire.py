"""The SFTP wire's framing: requests batched into one send, replies split out of any reads,
and a stream that is not SFTP ends in the adapter's own error, never a hang or a raw one."""

from __future__ import annotations

import struct
import threading
from typing import Any

import pytest
from qc_tool.adapters.sftp.engine import Engine, Open, OpenDir, ReadDir, Task
from qc_tool.adapters.sftp.wire import MAX_REPLY, Wire, WireError
from qc_tool.errors import RemoteUnavailable

STATUS, HANDLE, NAME = 101, 102, 104


class Channel:
    """Hands out the scripted chunks one per recv (b"" once they are used up: closed)."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)
        self.sent: list[bytes] = []

    def recv_ready(self) -> bool:
        return bool(self.chunks)

    def recv(self, size: int) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""

    def sendall(self, data: bytes) -> None:
        self.sent.append(data)


class Client:
    """What Wire uses of paramiko's SFTPClient (tests/unit/test_wire_contract.py pins it)."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self._lock = threading.Lock()
        self.request_number = 1

    def get_channel(self) -> Channel:
        return self.channel


def reply(type_: int, id_: int, body: bytes) -> bytes:
    return struct.pack(">IBI", len(body) + 5, type_, id_) + body


def handle(id_: int, value: bytes = b"h1") -> bytes:
    return reply(HANDLE, id_, struct.pack(">I", len(value)) + value)


def wire_over(*chunks: bytes) -> Wire:
    return Wire(Client(Channel(list(chunks))))


def received(wire: Wire, count: int) -> list[tuple[int, int, bytes]]:
    out: list[tuple[int, int, bytes]] = []
    while len(out) < count:
        out += [(r.type, r.id, r.body) for r in wire.receive(block=True)]
    return out


def test_queued_requests_go_out_in_one_send_framed_with_consecutive_ids() -> None:
    channel = Channel([])
    wire = Wire(Client(channel))
    ids = [wire.open("/sites/S/a.JPG"), wire.read(b"h1", 0, 4096), wire.close(b"h1")]
    assert ids == [1, 2, 3] and channel.sent == []
    wire.flush()
    path = b"/sites/S/a.JPG"
    # OPEN: the path, flags "read", an empty attribute set.
    open_ = struct.pack(">BII", 3, 1, len(path)) + path + struct.pack(">II", 1, 0)
    read = struct.pack(">BII", 5, 2, 2) + b"h1" + struct.pack(">QI", 0, 4096)
    close = struct.pack(">BII", 4, 3, 2) + b"h1"
    assert channel.sent == [b"".join(struct.pack(">I", len(p)) + p for p in (open_, read, close))]


def test_replies_split_at_every_byte_are_put_back_together() -> None:
    stream = handle(1) + reply(STATUS, 2, struct.pack(">I", 0)) + handle(3, b"another")
    wire = wire_over(*[stream[i : i + 1] for i in range(len(stream))])
    assert [(t, i) for t, i, _ in received(wire, 3)] == [(HANDLE, 1), (STATUS, 2), (HANDLE, 3)]


def test_many_replies_in_one_read_come_out_in_order() -> None:
    wire = wire_over(b"".join(handle(n) for n in range(1, 101)))
    assert [i for _, i, _ in received(wire, 100)] == list(range(1, 101))


@pytest.mark.parametrize("length", [MAX_REPLY + 1, 0xFFFFFFFF, 4, 0])
def test_a_length_no_reply_can_have_is_garbage_at_once(length: int) -> None:
    # Followed by more bytes: the wire must not wait for a 4 GB reply, nor step 0 bytes.
    wire = wire_over(struct.pack(">IBI", length, STATUS, 1) + bytes(64))
    with pytest.raises(WireError, match=rf"garbage on the SFTP channel \(a reply of {length} "):
        wire.receive(block=True)


def test_a_channel_closed_in_the_middle_of_a_reply_is_an_error_not_a_wait() -> None:
    wire = wire_over(handle(1)[:7])
    assert wire.receive(block=True) == []  # not complete yet
    with pytest.raises(WireError, match="closed the SFTP channel"):
        wire.receive(block=True)


def _run(wire: Wire, task: Task[Any]) -> list[tuple[Any, str | None]]:
    results: list[tuple[Any, str | None]] = []
    Engine(wire).run(iter([("k", task)]), lambda key, value, error: results.append((value, error)))
    return results


def _open() -> Task[bytes]:
    (handle,) = yield [Open("/sites/S/a.JPG")]
    return bytes(handle)


def _listing() -> Task[list[Any]]:
    (handle,) = yield [OpenDir("/sites/S")]
    (entries,) = yield [ReadDir(handle)]
    return list(entries)


@pytest.mark.parametrize(
    "stream",
    [
        pytest.param(reply(STATUS, 1, b""), id="a status without its code"),
        pytest.param(reply(STATUS, 1, b"\x00\x00"), id="a status code cut short"),
        pytest.param(
            reply(HANDLE, 1, struct.pack(">I", 100) + b"h1"), id="a handle longer than its reply"
        ),
        pytest.param(reply(HANDLE, 1, b""), id="a handle without its length"),
    ],
)
def test_a_reply_too_short_for_its_type_fails_the_connection_cleanly(stream: bytes) -> None:
    with pytest.raises(RemoteUnavailable, match=r"garbage on the SFTP channel \(a reply of type"):
        _run(wire_over(stream), _open())


def test_a_listing_claiming_more_entries_than_it_holds_is_refused_not_decoded() -> None:
    listing = reply(NAME, 2, struct.pack(">I", 0xFFFFFFFF))  # four billion entries, no bytes
    wire = wire_over(handle(1), listing)
    with pytest.raises(RemoteUnavailable, match=r"a listing of 4294967295 entries"):
        _run(wire, _listing())
