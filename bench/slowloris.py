"""Slow clients against the app as start_qc_tool.sh serves it (issue 10, item 4).

    python -m bench.slowloris [--slow 50] [--every 5] [--requests 20] [--sustain 30]
                              [--timeout 10] [--stock] [--body] [--set QC_NAME=VALUE ...]
                              [--json OUT]

gunicorn runs with start_qc_tool.sh's command and config module on 127.0.0.1
(``bench.load.start_gunicorn``). A bystander then opens the login page, each time on a fresh
connection, one request after another: first with no slow client; then with ``--slow``
clients connected, each having sent ``GET /login HTTP/1.1`` and a Host line and then sending
one more header line every ``--every`` seconds, never the blank line that ends the head; then,
for ``--sustain`` seconds, with the slow clients reconnecting whenever the server drops them,
so that the same number stays connected. With ``--body`` the slow clients send a login form's
head whole and then its body a line at a time instead. Printed: the bystander's answers (how many, median
and slowest), and when and how the server dropped the slow clients.

``--stock`` runs gunicorn's own gthread worker instead of the app's (GUNICORN_CMD_ARGS, which
gunicorn applies over the config module), to show what the worker changes: there the
bystander gets no answer, and a phase stops after three requests without one.

Everything listens on 127.0.0.1; every request has a timeout and every phase an end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import selectors
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Self

from bench.load import app_settings, start_gunicorn

HEAD_START = b"GET /login HTTP/1.1\r\nHost: x\r\n"  # a head that never ends
# A login form whose body never ends (the lines sent later are its bytes)
BODY_START = (
    b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    b"Content-Length: 60000\r\n\r\n"
)
GIVE_UP_AFTER = 3  # unanswered bystander requests in a row before a phase stops
BYSTANDER_EVERY_S = 0.25  # the sustained phase's pace


@dataclass(frozen=True)
class Drop:
    """One slow connection the server closed: how long it lasted, what it was told."""

    after_s: float
    answer: str  # the status line the server sent before closing; "" for none


class SlowClients:
    """``count`` connections sending a request head one header line every ``every_s`` seconds.

    ``start`` is what each sends first: HEAD_START (the lines then extend the head), or
    BODY_START (the lines are then a form body that never reaches its Content-Length).

    One thread drives them all; each connection records when the server closes it and what it
    answered. With ``reconnect`` a dropped client connects again at once (a sustained attack).
    ``stop()`` (or leaving the ``with`` block) closes everything.
    """

    def __init__(
        self,
        host: str,
        port: int,
        count: int,
        every_s: float,
        *,
        start: bytes = HEAD_START,
        reconnect: bool = False,
    ) -> None:
        self.host, self.port, self.count, self.every_s = host, port, count, every_s
        self.start, self.reconnect = start, reconnect
        self.drops: list[Drop] = []
        self.failed_connects = 0
        self._lock = threading.Lock()
        self._selector = selectors.DefaultSelector()
        self._opened: dict[socket.socket, float] = {}
        self._answers: dict[socket.socket, bytes] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="slow-clients")

    def __enter__(self) -> Self:
        for _ in range(self.count):
            self._connect()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def open_count(self) -> int:
        with self._lock:
            return len(self._opened)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        with self._lock:
            for sock in list(self._opened):
                self._selector.unregister(sock)
                sock.close()
            self._opened.clear()
        self._selector.close()

    def wait_all_dropped(self, timeout: float) -> bool:
        """Whether the server closed every connection within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while self.open_count and time.monotonic() < deadline:
            time.sleep(0.05)
        return not self.open_count

    def _connect(self) -> None:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=10)
            sock.sendall(self.start)
        except OSError:
            self.failed_connects += 1
            return
        sock.setblocking(False)
        with self._lock:
            self._opened[sock] = time.monotonic()
            self._answers[sock] = b""
            self._selector.register(sock, selectors.EVENT_READ)

    def _run(self) -> None:
        line = 0
        next_line = time.monotonic() + self.every_s
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=min(0.1, self.every_s)):
                self._on_readable(key.fileobj)  # type: ignore[arg-type]
            if time.monotonic() >= next_line:
                line += 1
                next_line += self.every_s
                with self._lock:
                    sockets = list(self._opened)
                for sock in sockets:
                    try:
                        sock.send(b"X-Slow-%d: %d\r\n" % (line, line))
                    except OSError:
                        pass  # the server closed it: its read end reports that

    def _on_readable(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self._answers[sock] += data
            return
        with self._lock:
            opened = self._opened.pop(sock)
            answer = self._answers.pop(sock).split(b"\r\n", 1)[0].decode(errors="replace")
            self.drops.append(Drop(time.monotonic() - opened, answer))
            self._selector.unregister(sock)
        sock.close()
        if self.reconnect and not self._stop.is_set():
            self._connect()


def login_page_s(host: str, port: int, timeout: float) -> float | None:
    """A fresh connection's GET /login: seconds until the whole answer; None if none came."""
    started = time.monotonic()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", "/login")
        response = conn.getresponse()
        response.read()
    except TimeoutError:
        return None
    finally:
        conn.close()
    if response.status != 200:
        raise RuntimeError(f"GET /login answered {response.status}")
    return time.monotonic() - started


@dataclass
class Phase:
    """A bystander's login pages in one situation."""

    name: str
    latencies_s: list[float] = field(default_factory=list)
    unanswered: int = 0
    slow_open_at_end: int = 0

    def ask(self, host: str, port: int, timeout: float) -> bool:
        """One request; False once GIVE_UP_AFTER of them went unanswered."""
        took = login_page_s(host, port, timeout)
        if took is None:
            self.unanswered += 1
        else:
            self.latencies_s.append(took)
        return self.unanswered < GIVE_UP_AFTER

    def row(self) -> str:
        asked = len(self.latencies_s) + self.unanswered
        if not self.latencies_s:
            return f"  {self.name:<44} {0:>4}/{asked:<4} {'-':>9} {'-':>9}"
        p50 = statistics.median(self.latencies_s) * 1000
        top = max(self.latencies_s) * 1000
        return (
            f"  {self.name:<44} {len(self.latencies_s):>4}/{asked:<4} {p50:>7.1f}ms {top:>7.1f}ms"
        )


def measure(
    host: str,
    port: int,
    *,
    slow: int,
    every_s: float,
    start: bytes,
    requests: int,
    sustain_s: float,
    timeout: float,
    drop_wait_s: float,
) -> dict[str, Any]:
    """The three phases against a running app; the figures as a dict (see ``render``)."""
    quiet = Phase("no slow client")
    for _ in range(requests):
        if not quiet.ask(host, port, timeout):
            break
    held = Phase(f"{slow} slow clients connected")
    with SlowClients(host, port, slow, every_s, start=start) as clients:
        for _ in range(requests):
            if not held.ask(host, port, timeout):
                break
        held.slow_open_at_end = clients.open_count
        dropped = clients.wait_all_dropped(drop_wait_s)
        drops, failed = list(clients.drops), clients.failed_connects
    sustained = Phase(f"{slow} slow clients reconnecting, {sustain_s:g} s")
    with SlowClients(host, port, slow, every_s, start=start, reconnect=True) as clients:
        end = time.monotonic() + sustain_s
        while time.monotonic() < end and sustained.ask(host, port, timeout):
            time.sleep(BYSTANDER_EVERY_S)
        sustained.slow_open_at_end = clients.open_count
        sustained_drops = len(clients.drops)
        failed += clients.failed_connects
    return {
        "phases": [asdict(p) for p in (quiet, held, sustained)],
        "rows": [p.row() for p in (quiet, held, sustained)],
        "all_dropped": dropped,
        "drops": [asdict(d) for d in drops],
        "sustained_drops": sustained_drops,
        "failed_connects": failed,
    }


def render(figures: Mapping[str, Any], heading: str) -> str:
    drops = [Drop(**d) for d in figures["drops"]]
    answers: dict[str, int] = {}
    for d in drops:
        answers[d.answer or "(closed without answer)"] = (
            answers.get(d.answer or "(closed without answer)", 0) + 1
        )
    lines = [
        heading,
        f"  {'bystander GET /login, fresh connection each':<44} {'answered':>9} {'p50':>9} {'max':>9}",
        *figures["rows"],
    ]
    held = figures["phases"][1]
    lines.append(
        f"  slow clients still connected after the second phase: {held['slow_open_at_end']}"
    )
    if drops:
        after = sorted(d.after_s for d in drops)
        lines.append(
            f"  slow clients dropped by the server: {len(drops)} after "
            f"{after[0]:.1f}-{after[-1]:.1f} s (median {statistics.median(after):.1f} s); "
            + ", ".join(f"{k} x {v}" for k, v in answers.items())
        )
    if not figures["all_dropped"]:
        lines.append("  some slow clients were never dropped (closed by this script at the end)")
    lines.append(
        f"  sustained phase: {figures['sustained_drops']} drops and reconnections; "
        f"failed connects: {figures['failed_connects']}"
    )
    return "\n".join(lines)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.slowloris", description=__doc__)
    parser.add_argument("--slow", type=int, default=50, help="slow clients (default 50)")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between header lines")
    parser.add_argument("--requests", type=int, default=20, help="bystander requests per phase")
    parser.add_argument("--sustain", type=float, default=30.0, help="seconds of the third phase")
    parser.add_argument("--timeout", type=float, default=10.0, help="a request's time limit")
    parser.add_argument("--stock", action="store_true", help="gunicorn's own gthread worker")
    parser.add_argument(
        "--body", action="store_true", help="slow login form bodies instead of slow heads"
    )
    parser.add_argument("--set", action="append", default=[], metavar="QC_NAME=VALUE")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    overrides = dict(item.split("=", 1) for item in args.set)
    with tempfile.TemporaryDirectory(prefix="qc-slowloris-") as tmp:
        work = Path(tmp)
        known_hosts = work / "known_hosts"  # the login page needs no SFTP server
        known_hosts.write_text("")
        settings = app_settings(1, "/sites", known_hosts, work / "cache", **overrides)
        if args.stock:
            settings["GUNICORN_CMD_ARGS"] = "--worker-class gthread"
        app = start_gunicorn(settings, work / "gunicorn.log")
        try:
            from qc_tool.config import load

            timeout_s = load(settings).request_timeout
            figures = measure(
                app.host,
                app.port,
                slow=args.slow,
                every_s=args.every,
                start=BODY_START if args.body else HEAD_START,
                requests=args.requests,
                sustain_s=args.sustain,
                timeout=args.timeout,
                drop_wait_s=timeout_s + 2 * args.every + 10,
            )
        finally:
            app.stop()
    worker = "gunicorn's gthread (--stock)" if args.stock else "qc_tool.web.worker"
    what = "a form body line" if args.body else "a header line"
    heading = (
        f"{args.slow} slow clients, {what} every {args.every:g} s; worker: {worker}"
        + ("" if args.stock else f", QC_REQUEST_TIMEOUT={timeout_s:g} s")
        + f"; bystander's request timeout {args.timeout:g} s"
    )
    print(render(figures, heading))
    if args.json:
        args.json.write_text(json.dumps({"heading": heading, **figures}, indent=2))
    held = figures["phases"][1]
    return 0 if held["unanswered"] == 0 and held["latencies_s"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
