"""Count what this process's SSH connections do: packets out and in, channel reads, requests.

The benchmark child counts around a scan (job option ``count_packets``) to compare the SFTP
wire's framing with paramiko's own per-request sending (``python -m bench.run --no-framing``).
Each count is one increment under a lock (about a microsecond), added to paramiko's functions
for the duration of the ``counting()`` block only.
The counts include the logins (key exchange, authentication, channel open), which cost the
same with and without the framing.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import paramiko.channel
import paramiko.packet
from qc_tool.adapters.sftp import wire

# What is counted: (owner, method name, key in the result).
COUNTED = (
    (paramiko.packet.Packetizer, "send_message", "ssh_packets_out"),
    (paramiko.packet.Packetizer, "read_message", "ssh_packets_in"),
    (paramiko.channel.Channel, "recv", "channel_reads"),
    (wire.Wire, "_queue", "sftp_requests"),
)


class Counts:
    """The running counts of one ``counting()`` block (connections count from their threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys((key for _, _, key in COUNTED), 0)

    def tick(self, key: str) -> None:
        with self._lock:
            self._counts[key] += 1

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


def _counted(method: Callable[..., Any], counts: Counts, key: str) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        counts.tick(key)
        return method(*args, **kwargs)

    return call


@contextmanager
def counting() -> Iterator[Counts]:
    """Count, in this process, until the block ends; then put paramiko back as it was."""
    counts = Counts()
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in COUNTED]
    try:
        for (owner, name, method), (_, _, key) in zip(originals, COUNTED, strict=True):
            setattr(owner, name, _counted(method, counts, key))
        yield counts
    finally:
        for owner, name, method in originals:
            setattr(owner, name, method)
