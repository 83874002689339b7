"""gunicorn's threaded worker, reading each request in full before a thread takes it.

gunicorn's gthread worker gives a connection to one of its threads as soon as a first byte
arrives, and the thread then reads the rest of the request head with blocking reads. A client
that sends its head slowly (a header line every few seconds: "slowloris") keeps that thread
for as long as it likes; 16 such clients kept all of them, and nobody else was answered.

This worker reads requests on its event loop instead, with non-blocking reads, and gives a
connection to a thread only once the request's head, and a body of at most BODY_MAX_BYTES
declared by Content-Length (every form of the app), are in memory. A thread then never waits
for a slow client's head. A request not in by QC_REQUEST_TIMEOUT seconds (from the connection,
or from the moment a kept-alive connection starts its next request) is answered 408 and closed;
a head over HEAD_MAX_BYTES is answered 431, and a chunked request body 411 (no browser sends
one, and its end cannot be known without a parser of the chunk framing here; nginx in front
turns chunked bodies into ones with a length).

Bounds: gunicorn accepts at most ``worker_connections`` connections (gunicorn_conf), so at most
that many requests are read at once, each holding at most HEAD_MAX_BYTES + BODY_MAX_BYTES.
Bodies that are larger (a ZIP upload) go to a thread once the head is in, as before: the app
reads them as streams. A small body is waited for even after "Expect: 100-continue" (clients
send it after a short wait: curl waits 1 s), so that header cannot get a thread early. The soft open-files
limit is raised to fit ``worker_connections`` (make_room_for). Plain HTTP/1 only: with TLS in
gunicorn (``certfile``) the handshake happens in the thread, so this worker then behaves as
gthread does (docs/deployment.md: TLS belongs to the reverse proxy); a PROXY protocol v2
header (gunicorn's ``proxy_protocol``, off here) is binary and the thread reads it.
"""

from __future__ import annotations

import resource
import selectors
import time
from dataclasses import dataclass
from enum import Enum
from functools import partial
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

from qc_tool import config
from qc_tool.heap import share_heaps

HEAD_MAX_BYTES = 32 * 1024  # a browser's head here is well under 2 KiB; nginx's default is 32 KiB
BODY_MAX_BYTES = 64 * 1024  # the app's MAX_CONTENT_LENGTH for every form (web/security.py)
RECV_BYTES = 16 * 1024
# Open files kept for the app beside the connections: SFTP connections, the cache, the worker
# pools' pipes, uploads. With none left, gunicorn's accept() raises and the worker dies, and
# every login with it (each slow client holds one descriptor).
FD_RESERVE = 256

TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"Connection: close\r\nContent-Length: 0\r\n\r\n"
)
LENGTH_REQUIRED = b"HTTP/1.1 411 Length Required\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


class Progress(Enum):
    MORE = "more"  # keep reading
    READY = "ready"  # a thread may take the request
    TOO_LARGE = "too large"  # the head outgrew HEAD_MAX_BYTES
    CHUNKED = "chunked"  # a chunked body: refused


def buffered_body_length(head: bytes) -> int | None:
    """How much body to read before a thread takes the request (``head`` without its CRLFCRLF).

    The declared Content-Length when it is at most BODY_MAX_BYTES, otherwise 0: a larger body
    (an upload) streams to the thread, and a head gunicorn would refuse (two lengths, a bad
    one) goes to its parser as soon as it is in, to be answered 400 there. None when the head
    has a Transfer-Encoding: a chunked body, refused.
    """
    length: int | None = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.lower()
        if name == b"transfer-encoding":
            return None
        if name == b"content-length":
            value = value.strip(b" \t")
            if length is not None or not value.isdigit() or len(value) > 12:
                return 0
            length = int(value)
    return length if length is not None and length <= BODY_MAX_BYTES else 0


class RequestBuffer:
    """The bytes of one request received so far, and whether a thread may take it yet."""

    def __init__(self, data: bytes = b"") -> None:
        self.data = bytearray(data)
        self._scanned = 0  # the end of the head was looked for in data[:_scanned]
        self._wanted: int | None = None  # bytes to hold once the head is in: head and body

    def feed(self, chunk: bytes) -> Progress:
        self.data += chunk
        return self.progress()

    def progress(self) -> Progress:
        if self._wanted is None:
            end = self.data.find(b"\r\n\r\n", max(0, self._scanned - 3))
            if end < 0:
                self._scanned = len(self.data)
                return Progress.TOO_LARGE if len(self.data) > HEAD_MAX_BYTES else Progress.MORE
            if end + 4 > HEAD_MAX_BYTES:
                return Progress.TOO_LARGE
            body = buffered_body_length(bytes(self.data[:end]))
            if body is None:
                return Progress.CHUNKED
            self._wanted = end + 4 + body
        return Progress.READY if len(self.data) >= self._wanted else Progress.MORE


@dataclass
class _Reading:
    buffer: RequestBuffer
    deadline: float  # time.monotonic()


def make_room_for(connections: int) -> int:
    """Raise the soft open-files limit to fit ``connections`` sockets beside FD_RESERVE files.

    Returns how many connections fit: ``connections``, or fewer when the hard limit is lower.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = connections + FD_RESERVE
    if soft != resource.RLIM_INFINITY and soft < needed:
        soft = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    if soft == resource.RLIM_INFINITY:
        return connections
    return max(1, min(connections, soft - FD_RESERVE))


def buffers_requests(cfg: Any) -> bool:
    """Whether requests can be read on the event loop: plain HTTP/1, not TLS, uwsgi or h2c."""
    return (
        not cfg.is_ssl
        and getattr(cfg, "protocol", "http") == "http"
        and getattr(cfg, "http2_cleartext", "off") == "off"
    )


class RequestBufferingWorker(ThreadWorker):  # type: ignore[misc]  # gunicorn is untyped
    """gthread, with every connection's request read on the event loop (module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request_timeout = config.load().request_timeout
        self.buffering = buffers_requests(self.cfg)
        # Connections whose request is being read, in order of deadline: every deadline is
        # "now + request_timeout" when the entry is made, so insertion order is that order.
        self.reading: dict[Any, _Reading] = {}

    def init_process(self) -> None:
        share_heaps()  # before the worker's threads start (heap.py)
        wanted = int(self.cfg.worker_connections)
        fit = make_room_for(wanted)
        if fit < wanted:
            self.log.warning(
                "the open-files limit leaves room for %d connections, not worker_connections=%d",
                fit,
                wanted,
            )
            self.worker_connections = fit
            self.max_keepalived = fit - self.cfg.threads
        if not self.buffering:
            self.log.warning(
                "requests are not buffered (TLS, uwsgi or h2c is configured): slow clients can "
                "hold gunicorn's threads; see docs/deployment.md"
            )
        super().init_process()

    def enqueue_req(self, conn: Any) -> None:
        """Every way a connection reaches a thread goes through here: read its request first.

        Called on the event loop's thread for a new connection, a kept-alive one that became
        readable, and one whose last request left the next one's first bytes in the parser.
        """
        if not self.buffering:
            super().enqueue_req(conn)
            return
        held = conn.parser.unreader.take_buffered() if conn.parser is not None else b""
        reading = _Reading(RequestBuffer(held), time.monotonic() + self.request_timeout)
        conn.sock.setblocking(False)
        self.reading[conn] = reading
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))
        self._advance(conn, reading.buffer.progress())

    def _on_readable(self, conn: Any, _sock: Any) -> None:
        try:
            chunk = conn.sock.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # reset by the client
            chunk = b""
        reading = self.reading.get(conn)
        if reading is None:  # closed earlier in this round of events
            return
        if not chunk:
            self._close(conn)
            return
        self._advance(conn, reading.buffer.feed(chunk))

    def _advance(self, conn: Any, progress: Progress) -> None:
        if progress is Progress.READY:
            data = bytes(self._unwatch(conn).buffer.data)
            future = self.tpool.submit(self._handle_buffered, conn, data)
            future.add_done_callback(
                lambda fut: self.method_queue.defer(self.finish_request, conn, fut)
            )
        elif progress is Progress.TOO_LARGE:
            self._close(conn, TOO_LARGE)
        elif progress is Progress.CHUNKED:
            self._close(conn, LENGTH_REQUIRED)

    def _handle_buffered(self, conn: Any, data: bytes) -> Any:
        """On a thread: give the parser what was read, then handle the request as gthread does."""
        conn.data_ready = True  # gthread would otherwise wait up to 5 s for a first byte
        conn.sock.setblocking(True)
        conn.init()
        conn.parser.unreader.unread(data)
        return self.handle(conn)

    def murder_pending(self) -> None:
        """gthread's expiry of idle connections (run about once a second), then ours."""
        super().murder_pending()
        now = time.monotonic()
        while self.reading:
            conn, reading = next(iter(self.reading.items()))
            if reading.deadline > now:
                break
            self._close(conn, TIMED_OUT if reading.buffer.data else None)

    def _unwatch(self, conn: Any) -> _Reading:
        try:
            self.poller.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass
        return self.reading.pop(conn)

    def _close(self, conn: Any, answer: bytes | None = None) -> None:
        """Close a connection whose request never reached a thread, with a last word if any."""
        self._unwatch(conn)
        if answer is not None:
            try:
                conn.sock.send(answer)  # non-blocking: a few bytes into an empty send buffer
            except OSError:
                pass
        self.nr_conns -= 1
        conn.close()
