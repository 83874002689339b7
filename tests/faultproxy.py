"""A fault-injecting TCP proxy on 127.0.0.1, for the network-fault tests.

It sits between the tool and a real SFTP server and, per connection, adds latency, goes
silent (stops forwarding after N bytes or on command), resets (RST after N bytes), refuses
(closes right after accept, as sshd does past MaxStartups) or accepts and forwards nothing
(a banner that never comes). Faults are chosen per connection by its number (0, 1, 2 ...),
so "the third connection is reset after 200 kB" is ``faults=on_connection(2, Fault(...))``.
The upstream can also depend on the number, which lets one address play a server whose
host key, password or channel limit changes between two connections.

asyncio on its own thread: an abort with SO_LINGER 0 really sends a RST, and no thread is
left blocked in a recv when the proxy stops.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal, Self

Address = tuple[str, int]
Direction = Literal["up", "down", "both"]  # up: client -> server; down: server -> client
STOP_TIMEOUT_S = 5.0
CHUNK = 256 * 1024


@dataclass(frozen=True)
class Fault:
    """What the proxy does to one connection (all off: a plain forwarder)."""

    refuse: Literal["close", "reset"] | None = None  # end it right after accept
    blackhole: bool = False  # accept, connect nowhere, forward nothing: no banner ever
    reset_after: int | None = None  # forward this many bytes server -> client, then RST
    silent_after: int | None = None  # forward this many bytes server -> client, then go silent
    silent: Direction = "both"  # what goes silent at ``silent_after`` (or on ``silence()``)
    silent_up_after: int | None = None  # forward this many bytes client -> server, then drop
    latency: float | None = None  # seconds added each way; None: the proxy's own latency
    # (D, U): server -> client bytes past the first D wait until the client has sent U bytes
    # (what a client waits for before sending more cannot come before that more was sent).
    hold_down: tuple[int, int] | None = None


Faults = Callable[[int], Fault]


def no_faults(_index: int) -> Fault:
    return Fault()


def on_connection(index: int, fault: Fault) -> Faults:
    """``fault`` on connection ``index`` only."""
    return lambda i: fault if i == index else Fault()


def refuse_after(count: int, how: Literal["close", "reset"] = "close") -> Faults:
    """The first ``count`` connections work; every later one is refused."""
    return lambda i: Fault(refuse=how) if i >= count else Fault()


@dataclass
class Link:
    """One accepted connection and what happened to it (written by the proxy's loop)."""

    index: int
    fault: Fault
    opened: float = field(default_factory=time.monotonic)
    upstream: Address | None = None
    bytes_up: int = 0  # forwarded client -> server
    bytes_down: int = 0  # forwarded server -> client
    silent_up: bool = False
    silent_down: bool = False
    silenced: float | None = None  # when it went silent
    reset: bool = False  # the proxy sent the client a RST
    refused: bool = False
    proxy_closed: bool = False  # the proxy ended it (a reset, a silent link let go, stop())
    client_closed: bool = False  # the client ended the connection (EOF or error on its side)
    closed: float | None = None  # when the proxy let go of both sides

    @property
    def open(self) -> bool:
        return self.closed is None


class FaultProxy:
    """Listens on 127.0.0.1 and forwards each connection to ``upstream`` with its fault."""

    def __init__(
        self,
        upstream: Address | Callable[[int], Address],
        *,
        faults: Faults | Fault = no_faults,
        latency: float = 0.0,
        host: str = "127.0.0.1",
    ) -> None:
        self._upstream = upstream if callable(upstream) else (lambda _i, a=upstream: a)
        self._faults: Faults = faults if callable(faults) else (lambda _i, f=faults: f)
        self.latency = latency
        self.host = host
        self.port = 0
        self._links: list[Link] = []
        self._ends: dict[int, Callable[[bool], None]] = {}  # link -> abort(reset)
        self._silencers: dict[int, Callable[[Direction], None]] = {}
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._started = threading.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._open = 0
        self._max_open = 0

    # -- control, from the test's thread ------------------------------------------------------

    def start(self) -> Self:
        self._thread.start()
        self._started.wait(STOP_TIMEOUT_S)
        if self._server is None:
            raise RuntimeError("the fault proxy did not start")
        return self

    def stop(self) -> None:
        """Close the listener and every connection, stop the loop; idempotent."""
        if not self._thread.is_alive():
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        try:
            future.result(STOP_TIMEOUT_S)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(STOP_TIMEOUT_S)

    def set_faults(self, faults: Faults | Fault) -> None:
        """Change the faults of connections accepted from now on."""
        self._faults = faults if callable(faults) else (lambda _i, f=faults: f)

    def silence(self, index: int, direction: Direction = "both") -> None:
        """Stop forwarding on connection ``index`` now (both sockets stay open)."""
        self._call(lambda: self._silencers[index](direction) if index in self._silencers else None)

    def reset(self, index: int) -> None:
        """Send connection ``index``'s client a RST now."""
        self._call(lambda: self._ends[index](True) if index in self._ends else None)

    @property
    def links(self) -> list[Link]:
        with self._lock:
            return list(self._links)

    @property
    def accepted(self) -> int:
        with self._lock:
            return len(self._links)

    @property
    def open_links(self) -> int:
        """Connections forwarded to the server and not yet closed."""
        with self._lock:
            return self._open

    @property
    def max_open(self) -> int:
        """The most connections that were forwarded to the server at once."""
        with self._lock:
            return self._max_open

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- the loop's side ----------------------------------------------------------------------

    def _call(self, fn: Callable[[], None]) -> None:
        done = threading.Event()

        def run() -> None:
            try:
                fn()
            finally:
                done.set()

        self._loop.call_soon_threadsafe(run)
        done.wait(STOP_TIMEOUT_S)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def listen() -> None:
            self._server = await asyncio.start_server(self._accept, self.host, 0)
            self.port = self._server.sockets[0].getsockname()[1]

        try:
            self._loop.run_until_complete(listen())
        finally:
            self._started.set()
        self._loop.run_forever()
        self._loop.close()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for end in list(self._ends.values()):
            end(False)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=STOP_TIMEOUT_S)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        with self._lock:
            link = Link(len(self._links), self._faults(len(self._links)))
            self._links.append(link)
        try:
            await self._serve(link, reader, writer)
        finally:
            _abort(writer, reset=False)
            self._ends.pop(link.index, None)
            self._silencers.pop(link.index, None)
            link.closed = time.monotonic()
            self._tasks.discard(task)

    async def _serve(
        self, link: Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        fault = link.fault
        if fault.refuse is not None:
            link.refused = True
            _abort(writer, reset=fault.refuse == "reset")
            return
        if fault.blackhole:

            def drop(reset: bool) -> None:
                link.proxy_closed = True
                _abort(writer, reset)

            self._ends[link.index] = drop
            await _drain_until_eof(reader)
            link.client_closed = not link.proxy_closed
            return
        link.upstream = self._upstream(link.index)
        try:
            up_reader, up_writer = await asyncio.open_connection(*link.upstream)
        except OSError:
            return
        with self._lock:
            self._open += 1
            self._max_open = max(self._max_open, self._open)
        try:
            await self._forward_both(link, reader, writer, up_reader, up_writer)
        finally:
            with self._lock:
                self._open -= 1

    async def _forward_both(
        self,
        link: Link,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> None:
        fault = link.fault

        def end(reset: bool) -> None:
            link.reset = link.reset or reset
            link.proxy_closed = True
            _abort(writer, reset)
            _abort(up_writer, reset=False)

        def silence(direction: Direction) -> None:
            link.silent_up = link.silent_up or direction in ("up", "both")
            link.silent_down = link.silent_down or direction in ("down", "both")
            link.silenced = link.silenced or time.monotonic()

        self._ends[link.index] = end
        self._silencers[link.index] = silence
        latency = fault.latency if fault.latency is not None else self.latency
        try:
            await asyncio.gather(
                self._pump(link, "up", reader, up_writer, latency, end, silence),
                self._pump(link, "down", up_reader, writer, latency, end, silence),
            )
        finally:
            _abort(up_writer, reset=False)

    async def _pump(
        self,
        link: Link,
        direction: Literal["up", "down"],
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        latency: float,
        end: Callable[[bool], None],
        silence: Callable[[Direction], None],
    ) -> None:
        """Copy one direction through a delay line, applying the link's fault to each chunk."""
        loop = asyncio.get_running_loop()
        line: asyncio.Queue[tuple[float, bytes | None]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await line.get()
                if (wait := due - loop.time()) > 0:
                    await asyncio.sleep(wait)
                if data is None:
                    return
                if direction == "down" and link.fault.hold_down is not None:
                    data = await self._held(link, data, sink, end, silence)
                if not self._forward(link, direction, data, sink, end, silence):
                    return
                try:
                    await sink.drain()
                except (ConnectionError, OSError):
                    return

        delivery = asyncio.create_task(deliver())
        try:
            while data := await source.read(CHUNK):
                line.put_nowait((loop.time() + latency, data))
        except (ConnectionError, OSError):
            pass
        line.put_nowait((loop.time() + latency, None))
        await delivery
        if direction == "up" and not link.proxy_closed:
            link.client_closed = True
        silent = link.silent_up if direction == "up" else link.silent_down
        if silent or link.reset:
            end(False)  # a silent peer never passes the close on: let go of both sides
        else:
            _write_eof(sink)

    async def _held(
        self,
        link: Link,
        data: bytes,
        sink: asyncio.StreamWriter,
        end: Callable[[bool], None],
        silence: Callable[[Direction], None],
    ) -> bytes:
        """Forward what ``hold_down`` lets through now; return the rest once it may go on."""
        assert link.fault.hold_down is not None
        after, until = link.fault.hold_down
        head = data[: max(0, after - link.bytes_down)]
        if head:
            self._forward(link, "down", head, sink, end, silence)
            data = data[len(head) :]
        while data and link.bytes_up < until and not (link.reset or sink.is_closing()):
            await asyncio.sleep(0.001)  # the client's next bytes arrive on this loop too
        return data

    def _forward(
        self,
        link: Link,
        direction: Literal["up", "down"],
        data: bytes,
        sink: asyncio.StreamWriter,
        end: Callable[[bool], None],
        silence: Callable[[Direction], None],
    ) -> bool:
        """Forward what the fault lets through; False once the link was reset."""
        if sink.is_closing():
            return False
        if direction == "up":
            limit = link.fault.silent_up_after
            if limit is not None and not link.silent_up and link.bytes_up + len(data) >= limit:
                data = data[: max(0, limit - link.bytes_up)]
                silence("up")
                link.bytes_up += len(data)
                if data:
                    sink.write(data)
            elif not link.silent_up:
                link.bytes_up += len(data)
                sink.write(data)
            return not link.reset
        if link.silent_down or link.reset:
            return not link.reset
        fault = link.fault
        limit, action = None, None
        if fault.reset_after is not None:
            limit, action = fault.reset_after, "reset"
        if fault.silent_after is not None and (limit is None or fault.silent_after < limit):
            limit, action = fault.silent_after, "silent"
        if limit is not None and link.bytes_down + len(data) >= limit:
            head = data[: max(0, limit - link.bytes_down)]
            link.bytes_down += len(head)
            if head:
                sink.write(head)
            if action == "reset":
                end(True)
                return False
            silence(fault.silent)
            return True
        link.bytes_down += len(data)
        sink.write(data)
        return True


async def _drain_until_eof(reader: asyncio.StreamReader) -> None:
    try:
        while await reader.read(CHUNK):
            pass
    except (ConnectionError, OSError):
        pass


def _write_eof(writer: asyncio.StreamWriter) -> None:
    try:
        if writer.can_write_eof() and not writer.is_closing():
            writer.write_eof()
    except (ConnectionError, OSError, RuntimeError):
        pass


def _abort(writer: asyncio.StreamWriter, reset: bool) -> None:
    """Close at once; with ``reset``, SO_LINGER 0 makes the kernel send a RST, not a FIN."""
    if writer.is_closing():
        return
    sock = writer.get_extra_info("socket")
    if reset and sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()
