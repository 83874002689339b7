"""A TCP proxy that emulates a site link (delay and bandwidth) for the benchmark.

Every connection accepted by the proxy is forwarded to one target. Each direction of the
emulated link is shared by ALL connections through the proxy, as on a real site link where
four SSH sessions share the same 100 Mbit/s:

* serialisation: a chunk of n bytes occupies the direction for n*8/bandwidth seconds, queued
  FIFO behind earlier chunks from any connection;
* propagation: the chunk is then delivered one fixed one-way delay later.

Backpressure is TCP-like. The shared serialisation backlog (a router buffer) is capped at
``queue_bytes``: readers pause while it is fuller. Each connection and direction also caps the
bytes read but not yet written to its destination at ``window_bytes`` (a TCP window), so a
peer that stops reading stalls only its own connection. Nothing is buffered unboundedly.

The TCP handshake is emulated too (on by default): the proxy dials the target 1.5 round trips
after accepting, when a real server would see the final ACK, so a new connection costs what
it costs on the real link.

Timing caveat: delivery deadlines are absolute times on asyncio's loop clock, so lateness
never accumulates, and timers never fire early, so delays are lower bounds. Each wake-up is
late by scheduling jitter: the loop uses select() (microsecond timeouts) rather than epoll
(whole milliseconds, rounded up), and measured ~0.25 ms per direction on an idle machine, so
sub-millisecond delays (the LAN profile's 0.5 ms) are approximate: a LAN round trip measures
~1.5 ms instead of 1 ms, more on a busy CPU. Bandwidth counts payload bytes only (no TCP/IP
header overhead), so the emulated link is a few percent generous.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import math
import selectors
import socket
import struct
import threading
from dataclasses import dataclass
from types import TracebackType
from typing import Self

READ_SIZE = 256 * 1024  # large reads keep per-byte Python work negligible at 1 Gbit/s
# Delivery granularity: chunks are split into slices of ~1 ms of link time so the first bytes
# of a large read are not held back until its last byte has been serialised.
SLICE_TIME_S = 0.001
MIN_SLICE = 16 * 1024
DEFAULT_QUEUE_BYTES = 2 * 1024 * 1024
DEFAULT_WINDOW_BYTES = 4 * 1024 * 1024
_WRITE_HIGH_WATER = 1024 * 1024


@dataclass(frozen=True)
class LinkProfile:
    """The two numbers that describe a link, per direction."""

    one_way_delay_s: float
    bandwidth_bps: float


PROFILES: dict[str, LinkProfile] = {
    "wan": LinkProfile(one_way_delay_s=0.025, bandwidth_bps=100e6),
    "lan": LinkProfile(one_way_delay_s=0.0005, bandwidth_bps=1e9),
}


class _Direction:
    """One direction of the emulated link: a serialisation queue shared by all connections."""

    def __init__(self, one_way_delay_s: float, bandwidth_bps: float, queue_bytes: int) -> None:
        self.delay = one_way_delay_s
        self.bytes_per_s = bandwidth_bps / 8
        self.max_backlog_s = queue_bytes / self.bytes_per_s
        self.busy_until = 0.0
        self.bytes = 0  # delivered to the destination
        slice_bytes = self.bytes_per_s * SLICE_TIME_S
        self.slice = (
            READ_SIZE
            if math.isinf(slice_bytes)
            else int(min(READ_SIZE, max(MIN_SLICE, slice_bytes)))
        )

    def backlog_wait(self, now: float) -> float:
        """Seconds to wait until the shared serialisation backlog is below the cap."""
        return max(0.0, self.busy_until - now - self.max_backlog_s)

    def schedule(self, size: int, now: float) -> float:
        """Reserve the link for `size` bytes; return the delivery time of their last byte."""
        self.busy_until = max(now, self.busy_until) + size / self.bytes_per_s
        return self.busy_until + self.delay


class _Pipe:
    """One connection in one direction: read, schedule on the shared link, deliver in order."""

    def __init__(self, src: asyncio.StreamReader, link: _Direction, window_bytes: int) -> None:
        self._src = src
        self._link = link
        self._window = window_bytes
        self._items: collections.deque[tuple[float, bytes | None]] = collections.deque()
        self._pending = 0  # read but not yet written to the destination
        self._wake = asyncio.Event()
        self._room = asyncio.Event()

    async def read_loop(self) -> None:
        """Read the source until EOF; the EOF itself travels the link like a FIN."""
        loop = asyncio.get_running_loop()
        while True:
            wait = self._link.backlog_wait(loop.time())
            if wait > 0:
                await asyncio.sleep(wait)
            while self._pending >= self._window:
                self._room.clear()
                await self._room.wait()
            data = await self._src.read(READ_SIZE)
            now = loop.time()
            if not data:
                self._items.append((self._link.schedule(0, now), None))
                self._wake.set()
                return
            step = self._link.slice
            for start in range(0, len(data), step):
                piece = data[start : start + step]
                self._items.append((self._link.schedule(len(piece), now), piece))
            self._pending += len(data)
            self._wake.set()

    async def write_loop(self, dst: asyncio.StreamWriter) -> None:
        """Write each slice once its delivery time has come; forward EOF as a half-close."""
        loop = asyncio.get_running_loop()
        while True:
            while not self._items:
                self._wake.clear()
                await self._wake.wait()
            due = self._items[0][0] - loop.time()
            if due > 0:
                await asyncio.sleep(due)
            now = loop.time()
            written = 0
            while self._items and self._items[0][0] <= now:
                piece = self._items.popleft()[1]
                if piece is None:
                    self._account(written)
                    await dst.drain()
                    if dst.can_write_eof():
                        dst.write_eof()
                    return
                dst.write(piece)
                written += len(piece)
            self._account(written)
            await dst.drain()

    def _account(self, written: int) -> None:
        self._link.bytes += written
        self._pending -= written
        if self._pending < self._window:
            self._room.set()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST, so a reset on one side reaches the other as a reset, not a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class LinkHandle:
    """A running link emulator: where to connect, what went through it, and how to stop it."""

    def __init__(
        self,
        target_host: str,
        target_port: int,
        profile: LinkProfile,
        listen_host: str,
        queue_bytes: int,
        window_bytes: int,
        emulate_handshake: bool,
    ) -> None:
        self.host = listen_host
        self.port = 0
        self.connections = 0
        self._target = (target_host, target_port)
        self.profile = profile
        self._window = window_bytes
        self._handshake_s = 3 * profile.one_way_delay_s if emulate_handshake else 0.0
        self._up = _Direction(profile.one_way_delay_s, profile.bandwidth_bps, queue_bytes)
        self._down = _Direction(profile.one_way_delay_s, profile.bandwidth_bps, queue_bytes)
        # select() takes a float timeout, epoll whole milliseconds: with epoll every emulated
        # delay would be rounded up to the next millisecond, doubling the LAN round trip.
        # FD_SETSIZE (1024) is plenty for a benchmark's few dozen connections.
        self._loop = asyncio.SelectorEventLoop(selectors.SelectSelector())
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()
        self._stopped = False
        self._ready = threading.Event()
        self._error: OSError | None = None
        self._thread = threading.Thread(target=self._run, name="linkemu", daemon=True)

    @property
    def bytes_up(self) -> int:
        """Bytes delivered client -> server."""
        return self._up.bytes

    @property
    def bytes_down(self) -> int:
        """Bytes delivered server -> client."""
        return self._down.bytes

    def _start(self) -> None:
        self._thread.start()
        self._ready.wait()
        if self._server is None:
            raise self._error or RuntimeError("link emulator failed to start")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            try:
                self._server = self._loop.run_until_complete(
                    asyncio.start_server(self._serve, self.host, 0, limit=2 * READ_SIZE)
                )
                self.port = self._server.sockets[0].getsockname()[1]
            except OSError as exc:  # e.g. the listen address is unusable
                self._error = exc
                return
            finally:
                self._ready.set()
            self._loop.run_forever()
        finally:
            self._loop.close()

    async def _serve(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        c_writer.transport.set_write_buffer_limits(high=_WRITE_HIGH_WATER)
        up = _Pipe(c_reader, self._up, self._window)
        tasks = [asyncio.create_task(up.read_loop())]
        s_writer: asyncio.StreamWriter | None = None
        clean = False
        try:
            if self._handshake_s:
                await asyncio.sleep(self._handshake_s)
            s_reader, s_writer = await asyncio.open_connection(*self._target, limit=2 * READ_SIZE)
            s_writer.transport.set_write_buffer_limits(high=_WRITE_HIGH_WATER)
            down = _Pipe(s_reader, self._down, self._window)
            tasks += [
                asyncio.create_task(up.write_loop(s_writer)),
                asyncio.create_task(down.read_loop()),
                asyncio.create_task(down.write_loop(c_writer)),
            ]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            # A reset or broken pipe on either side ends the whole connection at once.
            clean = all(t.done() and not t.cancelled() and t.exception() is None for t in tasks)
        except OSError:
            pass  # target unreachable: drop the client like a refused connection would
        except asyncio.CancelledError:
            pass  # stop(): this task is the session's root, nobody above it to tell
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for w in (c_writer, s_writer):
                if w is None:
                    continue
                if clean:
                    w.close()
                else:
                    _reset(w)
            self._sessions.discard(task)

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._sessions):
            task.cancel()
        await asyncio.gather(*self._sessions, return_exceptions=True)

    def stop(self) -> None:
        """Close the listener and every live connection, then end the loop thread."""
        if self._stopped:
            return
        self._stopped = True
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):  # a dead loop has nothing left to close
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_link(
    target_host: str,
    target_port: int,
    *,
    one_way_delay_s: float,
    bandwidth_bps: float,
    listen_host: str = "127.0.0.1",
    queue_bytes: int = DEFAULT_QUEUE_BYTES,
    window_bytes: int = DEFAULT_WINDOW_BYTES,
    emulate_handshake: bool = True,
) -> LinkHandle:
    """Start a link-emulating proxy to the target on a free port, in a daemon thread."""
    if one_way_delay_s < 0 or not bandwidth_bps > 0:
        raise ValueError("need one_way_delay_s >= 0 and bandwidth_bps > 0")
    handle = LinkHandle(
        target_host,
        target_port,
        LinkProfile(one_way_delay_s, bandwidth_bps),
        listen_host,
        queue_bytes,
        window_bytes,
        emulate_handshake,
    )
    handle._start()
    return handle


def main(argv: list[str] | None = None) -> None:
    """Run a proxy in the foreground for manual tests; prints the listen port."""
    parser = argparse.ArgumentParser(prog="python -m bench.linkemu", description=main.__doc__)
    parser.add_argument("--target", required=True, help="HOST:PORT to forward to")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="wan")
    args = parser.parse_args(argv)
    host, _, port = args.target.rpartition(":")
    profile = PROFILES[args.profile]
    with start_link(
        host.strip("[]"),
        int(port),
        one_way_delay_s=profile.one_way_delay_s,
        bandwidth_bps=profile.bandwidth_bps,
    ) as link:
        print(link.port, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
        print(f"connections={link.connections} up={link.bytes_up} down={link.bytes_down}")


if __name__ == "__main__":
    main()
