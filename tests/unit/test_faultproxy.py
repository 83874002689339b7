"""The fault proxy does what each fault says, on plain TCP (no SSH)."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest
from faultproxy import Fault, FaultProxy, on_connection, refuse_after
from waiting import wait_until

GREETING = bytes(range(256)) * 40  # 10,240 bytes the server sends first, like a banner


class _Upstream(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    connections = 0


class _Greeter(socketserver.BaseRequestHandler):
    """Sends GREETING, then echoes until the client closes."""

    def handle(self) -> None:
        assert isinstance(self.server, _Upstream)
        self.server.connections += 1
        sock: socket.socket = self.request
        try:
            sock.sendall(GREETING)
            while data := sock.recv(65536):
                sock.sendall(data)
        except OSError:
            pass


@pytest.fixture
def upstream() -> Iterator[_Upstream]:
    server = _Upstream(("127.0.0.1", 0), _Greeter)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _address(server: _Upstream) -> tuple[str, int]:
    host, port = server.server_address[:2]
    return str(host), int(port)


def _connect(proxy: FaultProxy) -> socket.socket:
    sock = socket.create_connection((proxy.host, proxy.port), timeout=5)
    sock.settimeout(5)
    return sock


def _read(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            break
        data += chunk
    return data


def test_forwards_both_ways_with_the_added_latency(upstream: _Upstream) -> None:
    with FaultProxy(_address(upstream), latency=0.1) as proxy, _connect(proxy) as sock:
        assert _read(sock, len(GREETING)) == GREETING
        started = time.monotonic()
        sock.sendall(b"ping")
        assert _read(sock, 4) == b"ping"
        assert time.monotonic() - started >= 0.2  # 0.1 s each way, at least
    assert proxy.links[0].bytes_up == 4
    assert proxy.links[0].bytes_down == len(GREETING) + 4


def test_reset_after_n_bytes_sends_exactly_n_then_a_reset(upstream: _Upstream) -> None:
    with FaultProxy(_address(upstream), faults=Fault(reset_after=5000)) as proxy:
        with _connect(proxy) as sock:
            got = b""
            with pytest.raises(ConnectionResetError):
                while chunk := sock.recv(65536):
                    got += chunk
        assert got == GREETING[:5000]
        wait_until(lambda: not proxy.links[0].open, message="the link to close")
        assert proxy.links[0].reset and not proxy.links[0].client_closed


def test_silent_after_n_bytes_forwards_nothing_more_but_stays_open(upstream: _Upstream) -> None:
    with FaultProxy(_address(upstream), faults=Fault(silent_after=3000)) as proxy:
        with _connect(proxy) as sock:
            assert _read(sock, 3000) == GREETING[:3000]
            sock.settimeout(0.3)
            with pytest.raises(TimeoutError):
                sock.recv(1)
            sock.sendall(b"anyone there?")
            with pytest.raises(TimeoutError):
                sock.recv(1)
            assert proxy.links[0].open and proxy.links[0].silenced is not None
        # The client hanging up is what the proxy sees; the server never does.
        wait_until(lambda: not proxy.links[0].open, message="the link to close")
        assert proxy.links[0].client_closed
        assert proxy.links[0].bytes_up == 0


def test_silence_and_reset_on_command(upstream: _Upstream) -> None:
    with FaultProxy(_address(upstream)) as proxy:
        with _connect(proxy) as first, _connect(proxy) as second:
            assert _read(first, len(GREETING)) == GREETING
            assert _read(second, len(GREETING)) == GREETING
            proxy.silence(0)
            first.sendall(b"echo?")
            first.settimeout(0.3)
            with pytest.raises(TimeoutError):
                first.recv(1)
            proxy.reset(1)
            with pytest.raises(ConnectionResetError):
                second.sendall(b"x")
                second.recv(1)
        assert proxy.links[1].reset


def test_refuse_after_k_connections(upstream: _Upstream) -> None:
    with FaultProxy(_address(upstream), faults=refuse_after(1)) as proxy:
        with _connect(proxy) as first:
            assert _read(first, 10) == GREETING[:10]
            with _connect(proxy) as second:
                try:
                    assert second.recv(1) == b""  # closed before a byte was sent
                except ConnectionResetError:
                    pass
        assert [link.refused for link in proxy.links] == [False, True]
        assert upstream.connections == 1


def test_blackhole_accepts_and_never_sends_a_byte(upstream: _Upstream) -> None:
    with FaultProxy(_address(upstream), faults=on_connection(0, Fault(blackhole=True))) as proxy:
        with _connect(proxy) as sock:
            sock.settimeout(0.3)
            with pytest.raises(TimeoutError):
                sock.recv(1)
        wait_until(lambda: proxy.links[0].client_closed, message="the client's close")
        with _connect(proxy) as sock:  # connection 1 is forwarded
            assert _read(sock, 10) == GREETING[:10]
    assert upstream.connections == 1


def test_the_upstream_can_depend_on_the_connection_number(upstream: _Upstream) -> None:
    other = _Upstream(("127.0.0.1", 0), _Greeter)
    threading.Thread(target=other.serve_forever, args=(0.05,), daemon=True).start()
    try:
        routes = [_address(upstream), _address(other)]
        with FaultProxy(lambda i: routes[min(i, 1)]) as proxy:
            for _ in range(3):
                with _connect(proxy) as sock:
                    assert _read(sock, 10) == GREETING[:10]
                wait_until(lambda: proxy.open_links == 0, message="the link to close")
            assert proxy.max_open == 1
        assert (upstream.connections, other.connections) == (1, 2)
    finally:
        other.shutdown()
        other.server_close()


def test_stop_closes_every_connection_and_the_port(upstream: _Upstream) -> None:
    proxy = FaultProxy(_address(upstream)).start()
    sock = _connect(proxy)
    assert _read(sock, 10) == GREETING[:10]
    proxy.stop()
    proxy.stop()
    assert _read(sock, len(GREETING) + 1) in (GREETING[10:], b"")
    sock.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((proxy.host, proxy.port), timeout=2)
