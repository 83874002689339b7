"""The benchmark's link emulator enforces delay, bandwidth and sharing, and passes bytes intact."""

from __future__ import annotations

import hashlib
import math
import os
import select
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

try:
    from bench.linkemu import LinkHandle, start_link
except ImportError:  # bench/ is not an installed package: run from a plain `pytest` too
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from bench.linkemu import LinkHandle, start_link

# Timers never fire early, but the test's clock and the loop's clock are read at different
# moments: allow a hair of slack on the lower bounds.
SLACK_S = 0.005
STALL_S = 1.0  # a sender that cannot send for this long is stalled


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)
        self.request.shutdown(socket.SHUT_WR)


class _Sink(socketserver.BaseRequestHandler):
    """Reads to EOF, then answers with the byte count and SHA-256 of what arrived."""

    def handle(self) -> None:
        digest, count = hashlib.sha256(), 0
        while data := self.request.recv(1 << 20):
            digest.update(data)
            count += len(data)
        self.request.sendall(f"{count} {digest.hexdigest()}".encode())


class _Mute(socketserver.BaseRequestHandler):
    """Accepts and never reads, until told to go."""

    release = threading.Event()

    def handle(self) -> None:
        self.release.wait(10)


def _server(handler: type[socketserver.BaseRequestHandler]) -> Iterator[int]:
    socketserver.ThreadingTCPServer.daemon_threads = True
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def echo_port() -> Iterator[int]:
    yield from _server(_Echo)


@pytest.fixture
def sink_port() -> Iterator[int]:
    yield from _server(_Sink)


@pytest.fixture
def link_to() -> Iterator[Callable[..., LinkHandle]]:
    links: list[LinkHandle] = []

    def start(port: int, **kw: float) -> LinkHandle:
        kw.setdefault("emulate_handshake", False)
        kw.setdefault("one_way_delay_s", 0.0)
        kw.setdefault("bandwidth_bps", math.inf)
        links.append(start_link("127.0.0.1", port, **kw))  # type: ignore[arg-type]
        return links[-1]

    yield start
    for link in links:
        link.stop()


def _recv_all(sock: socket.socket) -> bytes:
    chunks = []
    while data := sock.recv(1 << 20):
        chunks.append(data)
    return b"".join(chunks)


def _upload(port: int, payload: bytes) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        return _recv_all(sock).decode()


def test_bytes_pass_unchanged_both_ways_and_are_counted(
    echo_port: int, link_to: Callable[..., LinkHandle]
) -> None:
    payload = os.urandom(1 << 20)
    link = link_to(echo_port, bandwidth_bps=1e9)
    with socket.create_connection(("127.0.0.1", link.port), timeout=10) as sock:

        def send() -> None:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send)
        sender.start()  # echo while sending, or both socket buffers fill up
        echoed = _recv_all(sock)  # EOF arrives only if the half-close travelled both ways
        sender.join()
    assert hashlib.sha256(echoed).digest() == hashlib.sha256(payload).digest()
    assert (link.bytes_up, link.bytes_down, link.connections) == (len(payload), len(payload), 1)


def test_round_trip_takes_at_least_twice_the_one_way_delay(
    echo_port: int, link_to: Callable[..., LinkHandle]
) -> None:
    link = link_to(echo_port, one_way_delay_s=0.05, emulate_handshake=True)
    with socket.create_connection(("127.0.0.1", link.port), timeout=10) as sock:
        rounds = []
        for _ in range(3):
            start = time.perf_counter()
            sock.sendall(b"ping")
            assert sock.recv(16) == b"ping"
            rounds.append(time.perf_counter() - start)
    # The first exchange also pays the emulated TCP handshake (1.5 round trips before the
    # server sees the connection), so it lands after 2 round trips.
    assert rounds[0] >= 0.2 - SLACK_S
    assert min(rounds[1:]) >= 0.1 - SLACK_S


def test_bandwidth_limits_a_transfer(sink_port: int, link_to: Callable[..., LinkHandle]) -> None:
    payload = os.urandom(1_000_000)
    link = link_to(sink_port, bandwidth_bps=8e6)
    start = time.perf_counter()
    reply = _upload(link.port, payload)
    elapsed = time.perf_counter() - start
    assert reply == f"{len(payload)} {hashlib.sha256(payload).hexdigest()}"
    assert elapsed >= 1.0 - SLACK_S  # 8 Mbit at 8 Mbit/s


def test_connections_share_the_bandwidth(
    sink_port: int, link_to: Callable[..., LinkHandle]
) -> None:
    payloads = [os.urandom(500_000), os.urandom(500_000)]
    link = link_to(sink_port, bandwidth_bps=8e6)
    replies: list[str] = []
    threads = [
        threading.Thread(target=lambda p=p: replies.append(_upload(link.port, p))) for p in payloads
    ]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    assert sorted(replies) == sorted(f"{len(p)} {hashlib.sha256(p).hexdigest()}" for p in payloads)
    assert elapsed >= 1.0 - SLACK_S  # alone, each would take 0.5 s
    assert link.connections == 2


def test_stop_closes_live_connections(echo_port: int, link_to: Callable[..., LinkHandle]) -> None:
    link = link_to(echo_port)
    with socket.create_connection(("127.0.0.1", link.port), timeout=5) as sock:
        sock.sendall(b"hello")
        assert sock.recv(16) == b"hello"
        link.stop()
        try:
            assert sock.recv(16) == b""
        except ConnectionResetError:
            pass  # an abort is a fine way to close too
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", link.port), timeout=5).close()


def test_a_peer_that_stops_reading_stalls_the_sender_instead_of_filling_memory(
    link_to: Callable[..., LinkHandle],
) -> None:
    for port in _server(_Mute):
        link = link_to(port, window_bytes=256 * 1024)
        sent = 0
        with socket.create_connection(("127.0.0.1", link.port), timeout=5) as sock:
            sock.setblocking(False)
            chunk = b"z" * 65536
            while sent < 256 << 20:
                # Stalled: no room to send for a whole second. A proxy that read without
                # bound would take all 256 MB instead (a busy machine only stalls sooner).
                if not select.select([], [sock], [], STALL_S)[1]:
                    break
                try:
                    sent += sock.send(chunk)
                except BlockingIOError:
                    continue
        _Mute.release.set()
        # Kernel socket buffers hold a few MB on each hop; the proxy holds at most its window.
        assert sent < 64 << 20
        assert link.bytes_up < 64 << 20
