"""Round trips an SFTP connection waits for, counted from its channel's traffic, not a clock.

Every request sent gets a depth: one more than the deepest reply received before it was
sent (a Lamport clock over the channel). Requests sent together share a depth; a request that
had to wait for a reply is one deeper. The round trips of what ran while counting are the
deepest request's depth, CLOSE left out (nobody waits for its answer). Replies to requests
sent before counting began (left-over CLOSEs) count as depth 0.

The counter stands in for the SFTP channel that the connection's wire reads and writes
(``SftpConnection._wire._chan``: the one private name this helper knows).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from paramiko.sftp import CMD_CLOSE
from qc_tool.adapters.sftp.connection import SftpConnection

_HEAD = struct.Struct(">IBI")  # length, type, request id


class RoundTrips:
    """Wraps a paramiko channel; ``count`` is the round trips waited for so far."""

    def __init__(self, chan: Any) -> None:
        self._chan = chan
        self._out = bytearray()
        self._in = bytearray()
        self._depth: dict[int, int] = {}  # request id -> its depth
        self._clock = 0  # the deepest reply received so far
        self.count = 0
        self.requests: list[tuple[int, int]] = []  # (SFTP type, depth) of each request sent

    def sendall(self, data: bytes) -> None:
        self._out += data
        for t, num in _packets(self._out):
            depth = self._clock + 1
            self._depth[num] = depth
            self.requests.append((t, depth))
            if t != CMD_CLOSE:
                self.count = max(self.count, depth)
        self._chan.sendall(data)

    def recv(self, size: int) -> bytes:
        data: bytes = self._chan.recv(size)
        self._in += data
        for _t, num in _packets(self._in):
            self._clock = max(self._clock, self._depth.get(num, 0))
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._chan, name)


def _packets(buffer: bytearray) -> Iterator[tuple[int, int]]:
    """(type, request id) of each whole SFTP packet at the buffer's start, taken off it."""
    while len(buffer) >= _HEAD.size:
        length, t, num = _HEAD.unpack_from(buffer)
        if len(buffer) < 4 + length:
            return
        del buffer[: 4 + length]
        yield t, num


@contextmanager
def counting(conn: SftpConnection) -> Iterator[RoundTrips]:
    """Count the round trips ``conn`` waits for inside the block."""
    wire = conn._wire
    chan = wire._chan
    trips = RoundTrips(chan)
    wire._chan = trips
    try:
        yield trips
    finally:
        wire._chan = chan
