"""Load: many users log in and run View QC at once, through gunicorn as production runs it.

    python -m bench.load [--users 20] [--small] [--photos N] [--sites shared|own]
                         [--server builtin|sshd] [--follow sse|poll] [--deadline 600]
                         [--set QC_NAME=VALUE ...] [--json OUT] [--data DIR]

One SFTP server serves the seed-shaped site (or, with ``--photos N``, a site of about N photos
shaped like it) to N users: the built-in asyncssh one in its own process, with distinct users
and passwords, or (``--server sshd``) OpenSSH's sshd with its stock ``MaxStartups 10:30:100``,
every user a session of its one test account (.ci/setup_sshd_user.sh). The app runs under gunicorn with start_qc_tool.sh's command and config module, on
127.0.0.1, with a fresh cache. N client threads then do what a browser does: the login form,
the sites page, "View QC", the QC page, the job's event stream (or polling), the result; each
result is checked against the site's truth. Then every user asks for a neighbour's job (404
expected) and logs out. Figures: wall and per-job times, the server's connections and login
attempts, the peak connections held against the cap, the gunicorn worker's memory and CPU.

Everything listens on 127.0.0.1; the run is bounded by a fixed number of users and a
deadline, after which it stops and reports what did not finish.
"""

from __future__ import annotations

import argparse
import errno
import http.client
import json
import logging
import os
import queue
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from email.message import Message
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlencode

import psutil
from qc_tool.demo.sites import SiteTruth, generate_site, make_body

if TYPE_CHECKING:
    from qc_tool.demo.sftp_server import SftpServerHandle

from bench.report import truth_mismatches

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"
DEFAULT_USERS = 20
DEFAULT_DEADLINE_S = 600.0
START_TIMEOUT_S = 60.0  # gunicorn's start (imports, the app factory) and the server's
STOP_TIMEOUT_S = 40.0  # gunicorn's graceful stop is 30 s by default
SAMPLE_EVERY_S = 0.1
POLL_EVERY_S = 1.0  # what the QC page does without SSE
BYSTANDER_EVERY_S = 0.5
SSE_RECONNECTS = 3  # as EventSource does after its retry delay, bounded here
REPORTED_SETTINGS = (
    "QC_MAX_JOBS",
    "QC_MAX_CONNECTIONS",
    "QC_MAX_SERVER_CONNECTIONS",
    "QC_CHECKS",
    "QC_PARSE_WORKERS",
    "QC_CHECK_WORKERS",
)
SERVER_LOGGER = "qc_tool.demo.sftp_server"  # logs "sftp password auth for 'u': ok|rejected"

_META_TOKEN = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
_FORM_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
_LISTENING = re.compile(r"Listening at: http://127\.0\.0\.1:(\d+)")


class LoadError(Exception):
    """Something a user saw that a browser user would call broken (status, body, timeout)."""


class StreamRefused(LoadError):
    """The event stream answered an error status: the QC page then polls instead (feed.js)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# --- users ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserSpec:
    """One simulated person: SFTP credentials and the site they open."""

    username: str
    password: str = field(repr=False)
    site: str


def make_users(count: int, sites: Sequence[str]) -> list[UserSpec]:
    """``count`` users with distinct usernames and random passwords; user i opens sites[i]."""
    return [
        UserSpec(f"pilot{i + 1:02d}", secrets.token_urlsafe(16), sites[i % len(sites)])
        for i in range(count)
    ]


# --- the SFTP server: counters, and a process of its own --------------------------------------


class AuthLog(logging.Handler):
    """Counts the demo server's password checks by outcome (it logs each one at INFO)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self._lock_counts = threading.Lock()
        self.ok: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        if not record.getMessage().startswith("sftp password auth for "):
            return
        username, outcome = record.args if isinstance(record.args, tuple) else ("?", "?")
        with self._lock_counts:
            (self.ok if outcome == "ok" else self.rejected)[str(username)] += 1

    def attach(self) -> logging.Logger:
        logger = logging.getLogger(SERVER_LOGGER)
        logger.setLevel(logging.INFO)
        logger.addHandler(self)
        return logger

    def detach(self) -> None:
        logging.getLogger(SERVER_LOGGER).removeHandler(self)


@dataclass
class ServerStats:
    """What the SFTP server counted, whichever process it ran in."""

    connections: int
    auth_attempts: dict[str, int]
    rejected: dict[str, int]
    # One SFTP channel per tool connection: connections at once. None: sshd does not say.
    max_concurrent_channels: int | None
    files_opened: int | None
    bytes_read: int | None
    cpu_s: float | None = None  # None when the server shares the client's process
    # Replies the server still had to send on connections the tool had closed (asyncio's
    # "socket.send() raised exception."): the tool closes handles without waiting for the
    # answers. Counted in the server process only.
    sends_after_close: int | None = None
    # sshd only: connections it dropped before the banner ("past MaxStartups").
    dropped: int | None = None

    @classmethod
    def of(cls, server: SftpServerHandle, auth: AuthLog, cpu_s: float | None = None) -> ServerStats:
        """From a running ``SftpServerHandle`` and the AuthLog attached in its process."""
        return cls(
            connections=server.connections,
            auth_attempts=dict(server.auth_attempts),
            rejected=dict(auth.rejected),
            max_concurrent_channels=server.max_concurrent_channels,
            files_opened=server.files_opened,
            bytes_read=server.bytes_read,
            cpu_s=cpu_s,
        )


class ServerProcess:
    """The built-in SFTP server in a child process (``python -m bench.load --serve``).

    The users and passwords go to it on stdin, never on the command line. It answers a
    "stats" line with its counters as JSON, and stops when its stdin closes.
    """

    def __init__(self, root: Path, users: Sequence[UserSpec], sites_root: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.load", "--serve"],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self._lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._read, daemon=True, name="sftp-server-out").start()
        job = {
            "root": str(root),
            "users": {u.username: u.password for u in users},
            "sites_root": sites_root,
        }
        self._send(json.dumps(job))
        info = json.loads(self._answer(START_TIMEOUT_S, "start"))
        self.port: int = int(info["port"])
        self.host_key_line: str = info["host_key_line"]
        self.sites_root = sites_root

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(b"")

    def _send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()

    def _answer(self, timeout: float, what: str) -> str:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            line = b""
        if not line:
            self.stop()
            raise RuntimeError(f"the SFTP server process gave no answer to {what}")
        return line.decode()

    def stats(self) -> ServerStats:
        self._send("stats")
        data = json.loads(self._answer(30.0, "stats"))
        data["cpu_s"] = _cpu_s(psutil.Process(self.process.pid))
        return ServerStats(**data)

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class _Counting(logging.Handler):
    """Counts asyncio's warnings about writing to a connection the peer has closed."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("socket.send() raised exception"):
            self.count += 1
        else:
            sys.stderr.write(self.format(record) + "\n")


def _serve() -> None:
    """The server process: serve the root given on stdin until stdin closes."""
    from qc_tool.demo.sftp_server import start_sftp_server

    job = json.loads(sys.stdin.readline())
    auth = AuthLog()
    auth.attach()
    late = _Counting()
    asyncio_log = logging.getLogger("asyncio")
    asyncio_log.addHandler(late)
    asyncio_log.propagate = False  # counted, instead of a stderr line each
    server = start_sftp_server(Path(job["root"]), job["users"], sites_root=job["sites_root"])
    print(json.dumps({"port": server.port, "host_key_line": server.host_key_line}), flush=True)
    try:
        for line in sys.stdin:
            if line.strip() == "stats":
                stats = asdict(ServerStats.of(server, auth))
                stats.pop("cpu_s")
                stats["sends_after_close"] = late.count
                print(json.dumps(stats), flush=True)
    finally:
        server.stop()


# --- OpenSSH's sshd, stock MaxStartups ------------------------------------------------------

SSHD_DATA = Path("/srv/qc-sftp")  # readable by the test account (.ci/setup_sshd_user.sh)
_ACCEPTED = re.compile(r"Accepted password for (\S+) from ")
_FAILED = re.compile(r"Failed password for (?:invalid user )?(\S+) from ")
_DROPPED = re.compile(r"drop connection #\d+ .* past MaxStartups")
_THROTTLED = re.compile(r"exited MaxStartups throttling after \S+, (\d+) connections dropped")


def sshd_log_stats(log_text: str, cpu_s: float | None = None) -> ServerStats:
    """What sshd's log says: logins accepted and refused per user, connections dropped."""
    accepted = Counter(_ACCEPTED.findall(log_text))
    failed = Counter(_FAILED.findall(log_text))
    return ServerStats(
        connections=sum(accepted.values()) + sum(failed.values()),
        auth_attempts=dict(accepted + failed),
        rejected=dict(failed),
        max_concurrent_channels=None,
        files_opened=None,
        bytes_read=None,
        cpu_s=cpu_s,
        dropped=dropped_connections(log_text),
    )


def dropped_connections(log_text: str) -> int:
    """Connections sshd dropped past MaxStartups. At LogLevel INFO it names only the first
    drop of each throttling episode, and counts the episode's drops when it ends."""
    counted = sum(int(n) for n in _THROTTLED.findall(log_text))
    return max(counted, len(_DROPPED.findall(log_text)))


class SshdServer:
    """OpenSSH's sshd (``qc_tool.demo.openssh``) serving ``sites`` of ``source`` as hard links.

    Every user is a session of the one test account. Needs root, /usr/sbin/sshd and the
    account; the links live under /srv/qc-sftp (the account must reach them) and go at stop.
    """

    def __init__(self, source: Path, sites: Sequence[str], work: Path) -> None:
        from qc_tool.demo import openssh

        reason = openssh.unavailable_reason()
        creds = openssh.test_user()
        if reason is not None or creds is None:
            raise RuntimeError(f"sshd is unavailable: {reason}")
        self.username, self.password = creds
        self.data = SSHD_DATA / f"load-{secrets.token_hex(6)}"
        link_sites(source, self.data, sites)
        try:
            self.server = openssh.start_openssh(self.data, work, username=self.username)
        except BaseException:
            shutil.rmtree(self.data, ignore_errors=True)
            raise
        self.port = self.server.port
        self.sites_root = self.server.sites_root
        self.host_key_line = self.server.known_hosts_line(self.server.host, self.port)

    def users(self, sites: Sequence[str], count: int) -> list[UserSpec]:
        """``count`` sessions of the test account; session i opens sites[i]."""
        return [UserSpec(self.username, self.password, sites[i % len(sites)]) for i in range(count)]

    def stats(self) -> ServerStats:
        cpu = _cpu_s(psutil.Process(self.server.process.pid))
        return sshd_log_stats(self.server.log_text(), cpu)

    def stop(self) -> None:
        self.server.stop()
        shutil.rmtree(self.data, ignore_errors=True)


# --- gunicorn, as start_qc_tool.sh starts it ---------------------------------------------------


@dataclass
class Gunicorn:
    """The app under gunicorn: the master process, its one worker, where it listens."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    runtime_dir: Path  # gunicorn's control socket lives here, not in ~/.gunicorn
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def worker(self) -> psutil.Process:
        """The worker process (gunicorn_conf: one worker)."""
        children = psutil.Process(self.process.pid).children()
        if len(children) != 1:
            raise RuntimeError(f"expected one gunicorn worker, found {len(children)}")
        return children[0]

    def stop(self) -> None:
        """SIGTERM (a graceful stop: worker_exit cancels the jobs), SIGKILL past the timeout."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.runtime_dir, ignore_errors=True)


def start_gunicorn(settings: Mapping[str, str], log_path: Path) -> Gunicorn:
    """start_qc_tool.sh's gunicorn command on a free port of 127.0.0.1, with ``settings``.

    QC_* variables of this process are not passed on: the app sees exactly ``settings``.
    Returns once the worker answers the login page.
    """
    gunicorn = Path(sys.executable).parent / "gunicorn"
    command = [
        str(gunicorn) if gunicorn.exists() else sys.executable,
        *([] if gunicorn.exists() else ["-m", "gunicorn"]),
        "qc_tool:create_app()",
        "--config",
        "python:qc_tool.web.gunicorn_conf",
        "--bind",
        "127.0.0.1:0",  # gunicorn logs the port the system picked
    ]
    # Short, private and ours: gunicorn >= 25.1 opens a control socket there by default.
    runtime_dir = Path(tempfile.mkdtemp(prefix="qc-gunicorn-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("QC_")}
    env.update(settings)
    env["XDG_RUNTIME_DIR"] = str(runtime_dir)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    port = None
    while port is None:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"gunicorn did not start listening:\n{tail}")
        found = _LISTENING.search(log_path.read_text(errors="replace"))
        port = int(found.group(1)) if found else None
        if port is None:
            time.sleep(0.05)
    app = Gunicorn(process, port, log_path, runtime_dir)
    while True:  # the worker imports the app after the master listens
        try:
            if Browser(app.host, app.port, time.monotonic() + 5).request("GET", "/login").status:
                return app
        except (OSError, http.client.HTTPException, LoadError):
            if process.poll() is not None or time.monotonic() > deadline:
                app.stop()
                raise RuntimeError("gunicorn's worker did not answer") from None
            time.sleep(0.1)


def app_settings(
    server_port: int, sites_root: str, known_hosts: Path, cache_dir: Path, **overrides: str
) -> dict[str, str]:
    """The app's environment: production mode with a random key, the server, a fresh cache."""
    settings = {
        "QC_PRODUCTION": "1",
        "QC_SECRET_KEY": secrets.token_hex(32),
        "QC_SFTP_HOST": "127.0.0.1",
        "QC_SFTP_PORT": str(server_port),
        "QC_SITES_ROOT": sites_root,
        "QC_KNOWN_HOSTS": str(known_hosts),
        "QC_CACHE_DIR": str(cache_dir),
    }
    settings.update(overrides)
    return settings


# --- sampling the worker ----------------------------------------------------------------------


@dataclass
class Peaks:
    """The highest values the sampler saw (sampled: short peaks between samples are missed)."""

    worker_rss_mb: float = 0.0
    tree_rss_mb: float = 0.0  # the worker and its child processes (EXIF parsing, measuring)
    worker_threads: int = 0
    sftp_tcp: int = 0  # the worker's established TCP connections to the SFTP server
    samples: int = 0


class Sampler:
    """Samples the worker's memory, threads and connections to the SFTP server on a thread."""

    def __init__(self, worker: psutil.Process, sftp_port: int) -> None:
        self.peaks = Peaks()
        self._worker = worker
        self._port = sftp_port
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="load-sampler")

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._sample()
            except psutil.Error:
                return  # the worker is gone
            self._stop.wait(SAMPLE_EVERY_S)

    def _sample(self) -> None:
        p = self.peaks
        rss = self._worker.memory_info().rss
        tree = rss
        for child in self._worker.children(recursive=True):
            try:
                tree += child.memory_info().rss
            except psutil.Error:
                pass  # ended between the listing and the read
        tcp = sum(
            1
            for c in self._worker.net_connections(kind="tcp")
            if c.raddr and c.raddr.port == self._port and c.status == psutil.CONN_ESTABLISHED
        )
        p.worker_rss_mb = max(p.worker_rss_mb, rss / 2**20)
        p.tree_rss_mb = max(p.tree_rss_mb, tree / 2**20)
        p.worker_threads = max(p.worker_threads, self._worker.num_threads())
        p.sftp_tcp = max(p.sftp_tcp, tcp)
        p.samples += 1


def _cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def _vm_hwm_mb(pid: int) -> float:
    """A process's peak resident set (VmHWM): exact, unlike sampling."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class WorkerFigures:
    """The gunicorn worker at the end of the run, before it stops."""

    pid: int
    vm_hwm_mb: float  # the worker's own peak RSS, exact
    children_vm_hwm_mb: list[float]  # each child process's peak RSS
    cpu_s: float
    children_cpu_s: float
    master_cpu_s: float


def worker_figures(app: Gunicorn) -> WorkerFigures:
    worker = app.worker()
    children = worker.children(recursive=True)
    return WorkerFigures(
        pid=worker.pid,
        vm_hwm_mb=_vm_hwm_mb(worker.pid),
        children_vm_hwm_mb=[round(_vm_hwm_mb(c.pid), 1) for c in children],
        cpu_s=_cpu_s(worker),
        children_cpu_s=sum(_cpu_s(c) for c in children),
        master_cpu_s=_cpu_s(psutil.Process(app.process.pid)),
    )


_REOPENED = re.compile(
    r"closed the connection (?:before its SSH banner|during the SSH key exchange); opening it again"
)


def reopened_connections(log_text: str) -> int:
    """Connections the tool opened again after the server dropped them (its log says so)."""
    return len(_REOPENED.findall(log_text))


# --- one user's browser -----------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: Message
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Event:
    id: int | None
    kind: str
    data: str


class Browser:
    """One user's HTTP client: a cookie jar, one connection per request, a shared deadline."""

    def __init__(self, host: str, port: int, deadline: float) -> None:
        self.host, self.port, self.deadline = host, port, deadline
        self.cookies: dict[str, str] = {}
        self.csrf: str | None = None  # the logged-in page's token (its <meta name="csrf-token">)

    def _timeout(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise LoadError("the run's deadline passed")
        return left

    def _open(
        self, method: str, path: str, body: bytes | None, headers: Mapping[str, str]
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self._timeout())
        sent = dict(headers)
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        conn.request(method, path, body=body, headers=sent)
        response = conn.getresponse()
        for header in response.headers.get_all("Set-Cookie") or []:
            self._keep_cookie(header)
        return conn, response

    def _keep_cookie(self, header: str) -> None:
        pair, *attributes = (part.strip() for part in header.split(";"))
        name, _, value = pair.partition("=")
        expired = any(a.lower() in ("max-age=0", "max-age=-1") for a in attributes)
        if expired or not value:
            self.cookies.pop(name, None)
        else:
            self.cookies[name] = value

    def request(
        self,
        method: str,
        path: str,
        *,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        sent = dict(headers or {})
        body = None
        if form is not None:
            body = urlencode(form).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        conn, response = self._open(method, path, body, sent)
        try:
            return Reply(response.status, response.headers, response.read())
        finally:
            conn.close()

    def events(
        self, path: str, after: int = 0, on_open: Callable[[], None] | None = None
    ) -> Iterator[Event]:
        """The Server-Sent Events of ``path`` until the stream closes; ``on_open`` at its 200."""
        headers = {"Accept": "text/event-stream"}
        if after:
            headers["Last-Event-ID"] = str(after)
        conn, response = self._open("GET", path, None, headers)
        try:
            if response.status != 200:
                body = response.read()[:200]
                raise StreamRefused(response.status, f"GET {path}: {response.status} {body!r}")
            if on_open is not None:
                on_open()
            event_id: int | None = None
            kind = "message"
            data: list[str] = []
            while raw := response.readline():
                line = raw.decode().rstrip("\r\n")
                if not line:
                    if data or event_id is not None:
                        yield Event(event_id, kind, "\n".join(data))
                    event_id, kind, data = None, "message", []
                    continue
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "id":
                    event_id = int(value)
                elif name == "event":
                    kind = value
                elif name == "data":
                    data.append(value)
                elif name == "":
                    yield Event(None, ":", value)  # a comment: the keep-alive
        finally:
            conn.close()


def _expect(reply: Reply, status: int, what: str) -> Reply:
    if reply.status != status:
        raise LoadError(f"{what}: HTTP {reply.status} (expected {status}): {reply.text[:300]!r}")
    return reply


def _token(reply: Reply, pattern: re.Pattern[str], what: str) -> str:
    found = pattern.search(reply.text)
    if found is None:
        raise LoadError(f"no CSRF token on {what}")
    return found.group(1)


def login_form_token(b: Browser) -> str:
    """Open the login page as a browser does; the form's CSRF token."""
    return _token(_expect(b.request("GET", "/login"), 200, "GET /login"), _FORM_TOKEN, "/login")


# --- what one user does -------------------------------------------------------------------------


@dataclass
class UserRun:
    """What one user did and saw; ``problems`` is empty when everything was as expected."""

    index: int
    username: str
    site: str
    job_id: str | None = None
    problems: list[str] = field(default_factory=list)
    login_s: float | None = None  # POST /login (one SSH login) until its answer
    sites_s: float | None = None  # the sites page (one SSH login and a listing)
    stream_open_s: float | None = None  # the event stream asked for until its headers came
    began_s: float | None = None  # "View QC" posted until the job's first event (or progress)
    job_s: float | None = None  # "View QC" posted until the job ended (stream or polling)
    result_s: float | None = None  # GET of the result document
    qc_page_s: float | None = None  # GET of the QC page (no SSH: a template and the job)
    done_at: float | None = None  # seconds since the start, result verified
    events: dict[str, int] = field(default_factory=dict)
    reconnects: int = 0
    stream_refused: int | None = None  # the stream's error status, after which the user polled
    scan_connections: int = 0  # the GPS pass, from its stats
    scan_seconds: float = 0.0
    checks_seconds: float = 0.0
    checks_read: bool = False  # the check pass read photos (so it opened 1+ connections)
    checks_cached: int = 0
    images: int = 0
    verdicts: dict[str, tuple[Any, ...]] = field(default_factory=dict, repr=False)
    isolation_probes: int = 0
    logged_out: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class Shared:
    """What the user threads share: where the app is, the truth, the deadline, the barriers."""

    host: str
    port: int
    truth: SiteTruth
    checks: bool
    follow: str  # "sse" or "poll"
    deadline: float
    users: Sequence[UserSpec]
    runs: list[UserRun]
    started: float = 0.0
    go: threading.Barrier = field(init=False)
    results_in: threading.Barrier = field(init=False)
    probed: threading.Barrier = field(init=False)
    all_started: threading.Event = field(default_factory=threading.Event)
    all_results_in: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        n = len(self.users)
        self.go = threading.Barrier(n, action=self._start_clock)
        self.results_in = threading.Barrier(n, action=self.all_results_in.set)
        self.probed = threading.Barrier(n)

    def _start_clock(self) -> None:
        self.started = time.monotonic()
        self.all_started.set()

    def meet(self, barrier: threading.Barrier, run: UserRun, what: str) -> bool:
        try:
            barrier.wait(timeout=max(0.0, self.deadline - time.monotonic()))
            return True
        except threading.BrokenBarrierError:
            run.problems.append(f"the other users did not all get to {what} before the deadline")
            return False


def run_user(shared: Shared, index: int) -> None:
    """One user's session: QC of their site, probes of a neighbour's job, logout."""
    user, run = shared.users[index], shared.runs[index]
    browser = Browser(shared.host, shared.port, shared.deadline)
    if not shared.meet(shared.go, run, "the start"):
        return
    _attempt(run, lambda: _view_qc(shared, browser, user, run))
    if not shared.meet(shared.results_in, run, "their results"):
        return
    neighbour = shared.runs[(index + 1) % len(shared.runs)]
    token = browser.csrf
    if token and run.job_id and neighbour.job_id and neighbour is not run:
        _attempt(run, lambda: _probe_neighbour(browser, run, neighbour, token))
    shared.meet(shared.probed, run, "the probes")
    if token:
        _attempt(run, lambda: _log_out(browser, run, token))


def _attempt(run: UserRun, step: Callable[[], None]) -> None:
    """Run one step of a user's session; whatever goes wrong is that user's problem, noted.

    Anything, a bug of this script included: a thread that died would leave the others
    waiting at the next barrier until the deadline.
    """
    try:
        step()
    except Exception as exc:  # noqa: BLE001 (noted as the user's problem, see above)
        run.problems.append(f"{type(exc).__name__}: {exc}")


def _view_qc(shared: Shared, b: Browser, user: UserSpec, run: UserRun) -> None:
    """Log in, open the sites page, start QC, follow it, fetch and verify the result."""
    clock = time.monotonic
    form = login_form_token(b)
    started = clock()
    reply = b.request(
        "POST",
        "/login",
        form={"username": user.username, "password": user.password, "csrf_token": form},
    )
    run.login_s = clock() - started
    _expect(reply, 303, "POST /login")
    started = clock()
    page = _expect(b.request("GET", "/"), 200, "the sites page")
    run.sites_s = clock() - started
    if f">{user.site}<" not in page.text:
        raise LoadError(f"the sites page does not list {user.site}")
    token = b.csrf = _token(page, _META_TOKEN, "the sites page")
    started = clock()
    reply = _expect(
        b.request("POST", f"/api/sites/{user.site}/qc", headers={"X-CSRFToken": token}),
        202,
        "POST View QC",
    )
    job = reply.json()["job"]
    run.job_id = job
    asked = clock()
    _expect(b.request("GET", f"/sites/{user.site}/qc/{job}"), 200, "the QC page")
    run.qc_page_s = clock() - asked
    final: dict[str, Any] | None = None
    if shared.follow == "sse":
        try:
            final = _follow_events(b, run, job, started)
        except StreamRefused as exc:  # as feed.js does: follow the job by polling instead
            run.stream_refused = exc.status
    if final is None:
        final = _poll(b, run, job, started)
    run.job_s = clock() - started
    if final.get("state") != "done":
        run.problems.append(f"the job ended {final.get('state')}: {final.get('error')}")
    started = clock()
    document = _expect(b.request("GET", f"/api/jobs/{job}"), 200, "the result").json()
    run.result_s = clock() - started
    run.problems += check_result(document, shared.truth, user.site, shared.checks, run)
    if run.events and run.events.get("image") != len(shared.truth.images):
        run.problems.append(f"{run.events.get('image')} image events, one per photo expected")
    run.done_at = clock() - shared.started


def _follow_events(b: Browser, run: UserRun, job: str, posted: float) -> dict[str, Any]:
    """Read the job's event stream to its end, reconnecting as EventSource does."""
    path = f"/api/jobs/{job}/events"
    kinds: Counter[str] = Counter()
    last_id, final = 0, {}
    for attempt in range(SSE_RECONNECTS + 1):
        asked = time.monotonic()

        def opened(asked: float = asked) -> None:
            if run.stream_open_s is None:
                run.stream_open_s = time.monotonic() - asked

        ended = False
        for event in b.events(path, after=last_id, on_open=opened):
            kinds[event.kind] += 1
            if event.id is not None:
                if run.began_s is None:  # a queued job has no events yet
                    run.began_s = time.monotonic() - posted
                if event.id != last_id + 1:
                    run.problems.append(f"event {event.id} came after {last_id}")
                last_id = event.id
            if event.kind == "state":
                state = json.loads(event.data)
                if state["state"] != "running":
                    final = state
            if event.kind == "end":
                ended = True
                break
        if ended:
            break
        run.reconnects = attempt + 1
    else:
        raise LoadError(f"the event stream ended {SSE_RECONNECTS + 1} times without its end")
    run.events = dict(kinds)
    return final


def _poll(b: Browser, run: UserRun, job: str, posted: float) -> dict[str, Any]:
    """Ask for the job's state once a second until it ends, as the QC page does without SSE."""
    while True:
        state: dict[str, Any] = _expect(
            b.request("GET", f"/api/jobs/{job}/state"), 200, "the job's state"
        ).json()
        if run.began_s is None and (state["done"] or state["state"] != "running"):
            run.began_s = time.monotonic() - posted
        if state["state"] != "running":
            return state
        time.sleep(POLL_EVERY_S)


def _probe_neighbour(b: Browser, run: UserRun, other: UserRun, token: str) -> None:
    """Another user's job is not found, by every route that takes a job id; ours is."""
    job = other.job_id
    probes: list[tuple[str, str, dict[str, str] | None]] = [
        ("GET", f"/api/jobs/{job}", None),
        ("GET", f"/api/jobs/{job}/state", None),
        ("GET", f"/api/jobs/{job}/events", None),
        ("GET", f"/sites/{other.site}/qc/{job}", None),
        ("POST", f"/api/jobs/{job}/cancel", {"X-CSRFToken": token}),
    ]
    for method, path, headers in probes:
        reply = b.request(method, path, headers=headers)
        run.isolation_probes += 1
        if reply.status != 404:
            run.problems.append(f"{other.username}'s job: {method} {path} answered {reply.status}")
        elif (other.username != run.username and other.username in reply.text) or (
            job and job in reply.text
        ):  # sessions of one account (sshd) see their own name on every page
            run.problems.append(f"{other.username}'s job: the 404 of {path} names it")
    _expect(b.request("GET", f"/api/jobs/{run.job_id}/state"), 200, "our own job")


def _log_out(b: Browser, run: UserRun, token: str) -> None:
    _expect(b.request("POST", "/logout", form={"csrf_token": token}), 303, "POST /logout")
    if run.job_id is not None:
        _expect(b.request("GET", f"/api/jobs/{run.job_id}/state"), 401, "a job after logout")
    run.logged_out = True


def watch_as_bystander(shared: Shared, latencies: list[float], problems: list[str]) -> None:
    """Someone who only opens the login page (no SSH), twice a second, while the users work.

    Each answer's time shows whether the app still serves people while the users' event
    streams are open: a stream holds one of gunicorn's threads until its job ends.
    """
    browser = Browser(shared.host, shared.port, shared.deadline)
    if not shared.all_started.wait(timeout=max(0.0, shared.deadline - time.monotonic())):
        return
    while not shared.all_results_in.is_set() and time.monotonic() < shared.deadline:
        asked = time.monotonic()
        try:
            _expect(browser.request("GET", "/login"), 200, "a bystander's login page")
        except (LoadError, OSError, http.client.HTTPException) as exc:
            problems.append(f"bystander: {type(exc).__name__}: {exc}")
            return
        latencies.append(time.monotonic() - asked)
        shared.all_results_in.wait(BYSTANDER_EVERY_S)


# --- checking what users got ----------------------------------------------------------------------


def check_result(
    document: dict[str, Any], truth: SiteTruth, site: str, checks: bool, run: UserRun
) -> list[str]:
    """Every way a job's result document differs from the site's truth; fills ``run``."""
    problems = []
    result = document.get("result")
    if result is None:
        return [f"no result document (state {document.get('state')}: {document.get('error')})"]
    if result["site"] != site:
        problems.append(f"the result is of site {result['site']}, not {site}")
    images = result["images"]
    run.images = len(images)
    problems += [f"image {p}" for p in truth_mismatches(images, truth)[:20]]
    gps = sum(1 for image in images if image["lat"] is not None)
    if gps != truth.gps_points:
        problems.append(f"{gps} GPS points, the truth has {truth.gps_points}")
    folders = {f["name"]: f["images"] for f in result["folders"]}
    if folders != truth.folders():
        problems.append(f"folders {folders} != {truth.folders()}")
    stats = result["stats"]
    run.scan_connections = int(stats["connections"])
    run.scan_seconds = float(stats["seconds"])
    if not checks:
        return problems
    if document.get("checks_state") != "done":
        state, error = document.get("checks_state"), document.get("checks_error")
        return [*problems, f"the checks ended {state}: {error}"]
    unchecked = [i["path"] for i in images if i["error"] is None and not i.get("checks")]
    if unchecked:
        problems.append(f"{len(unchecked)} readable photos without checks, e.g. {unchecked[0]}")
    check_stats = result["check_stats"]
    run.checks_seconds = float(check_stats["seconds"])
    run.checks_read = int(check_stats["bytes_read"]) > 0
    run.checks_cached = int(check_stats["cached"])
    run.verdicts = {i["path"]: _verdict(i["checks"]) for i in images if i.get("checks") is not None}
    return problems


def _verdict(checks: dict[str, Any]) -> tuple[Any, ...]:
    failed = sorted(o["name"] for o in checks["outcomes"] if not o["ok"])
    return (checks["valid"], checks["source"], tuple(failed))


def verdict_differences(runs: Sequence[UserRun]) -> list[str]:
    """Users of the same photos must get the same verdicts (fresh or from the cache)."""
    done = [r for r in runs if r.verdicts]
    if not done:
        return []
    reference = done[0]
    problems = []
    for run in done[1:]:
        differ = [p for p in reference.verdicts if run.verdicts.get(p) != reference.verdicts[p]]
        if differ or set(run.verdicts) != set(reference.verdicts):
            problems.append(
                f"{run.username}'s verdicts differ from {reference.username}'s on "
                f"{len(differ)} photos, e.g. {differ[:1]}"
            )
    return problems


@dataclass
class Logins:
    """The server's password attempts per user against what each user's session explains."""

    exact: bool  # the count is known: one connection per pass, or no check pass read photos
    problems: list[str]
    total: int
    expected_low: int
    expected_high: int


def account_logins(
    runs: Sequence[UserRun], stats: ServerStats, max_connections: int, checks: bool
) -> Logins:
    """Each user's attempts = login + sites page + the GPS pass's connections + the check pass's.

    The GPS pass reports its connections; the check pass does not, so with pools (more than
    one connection a pass) its share is bounded: 1..QC_MAX_CONNECTIONS when it read photos,
    0 when every measure came from the cache; and with pools the GPS pass may have made one
    login more than it reports (see below). With QC_MAX_CONNECTIONS=1, or when no check pass
    read photos and there are no pools, the count is exact.
    No attempt may be refused, and every connection the server saw made exactly one attempt.
    Sessions of one account (sshd) are accounted together.
    """
    problems = []
    total = sum(stats.auth_attempts.values())
    if stats.rejected:
        problems.append(f"refused password attempts: {stats.rejected}")
    if total != stats.connections:
        problems.append(f"{total} password attempts over {stats.connections} connections")
    wanted: dict[str, tuple[int, int]] = {}
    for run in runs:
        base = 2 + run.scan_connections  # the login check and the sites page: one each
        lo = base + (1 if checks and run.checks_read else 0)
        # A pool login under way when the GPS pass ends completes and is closed unused
        # (ConnectionPool.close), after the pass counted its connections: one more at most.
        hi = base + (max_connections > 1) + (max_connections if checks and run.checks_read else 0)
        before = wanted.get(run.username, (0, 0))
        wanted[run.username] = (before[0] + lo, before[1] + hi)
    for username, (lo, hi) in wanted.items():
        got = stats.auth_attempts.get(username, 0)
        if not lo <= got <= hi:
            want = f"{lo}" if lo == hi else f"{lo}..{hi}"
            problems.append(f"{username}: {got} password attempts, expected {want}")
    low = sum(lo for lo, _ in wanted.values())
    high = sum(hi for _, hi in wanted.values())
    strangers = set(stats.auth_attempts) - {r.username for r in runs}
    if strangers:
        problems.append(f"attempts as users who took no part: {sorted(strangers)}")
    return Logins(low == high, problems, total, low, high)


# --- the whole run --------------------------------------------------------------------------------


@dataclass
class Crowd:
    """What all users did: each user's run, the wall time, and the bystander's waits."""

    runs: list[UserRun]
    wall_s: float  # all users started together .. the last result verified
    bystander_s: list[float]  # the login page's answer times while the users worked
    problems: list[str]  # the bystander's


def run_users(
    host: str,
    port: int,
    users: Sequence[UserSpec],
    truth: SiteTruth,
    *,
    checks: bool,
    follow: str = "sse",
    deadline: float,
) -> Crowd:
    """All users at once, each on its own thread, and a bystander; bounded by ``deadline``.

    Threads still running at the deadline are reported, not waited for.
    """
    runs = [UserRun(i, u.username, u.site) for i, u in enumerate(users)]
    shared = Shared(host, port, truth, checks, follow, deadline, users, runs)
    bystander: list[float] = []
    problems: list[str] = []
    threads = [
        threading.Thread(target=run_user, args=(shared, i), daemon=True, name=f"user-{i + 1}")
        for i in range(len(users))
    ]
    threads.append(
        threading.Thread(
            target=watch_as_bystander,
            args=(shared, bystander, problems),
            daemon=True,
            name="bystander",
        )
    )
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    for run, thread in zip(runs, threads, strict=False):
        if thread.is_alive():
            run.problems.append("still running at the deadline")
    finished = [r.done_at for r in runs if r.done_at is not None]
    return Crowd(runs, max(finished) if finished else float("nan"), bystander, problems)


@dataclass
class LoadResult:
    """Every figure of a run, for the printed report and the JSON."""

    settings: dict[str, str]
    users: int
    site: str
    sites_mode: str
    follow: str
    images_per_job: int
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    wall_s: float
    runs: list[UserRun]
    bystander_s: list[float]
    bystander_problems: list[str]
    server: ServerStats
    logins: Logins
    peaks: Peaks
    worker: WorkerFigures
    client_cpu_s: float
    verdict_problems: list[str]
    cap: int
    server_kind: str = "builtin"
    reopened: int = 0  # connections the tool opened again after the server dropped them

    @property
    def problems(self) -> list[str]:
        found = [f"{r.username} ({r.site}): {p}" for r in self.runs for p in r.problems]
        found += self.logins.problems + self.verdict_problems + self.bystander_problems
        channels = self.server.max_concurrent_channels
        if channels is not None and channels > self.cap:
            found.append(f"{channels} connections at once, over the cap of {self.cap}")
        return found

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for run in data["runs"]:
            run.pop("verdicts")
        data["problems"] = self.problems
        return data


def _spread(values: Sequence[float | None]) -> str:
    got = sorted(v for v in values if v is not None)
    if not got:
        return "-"
    return f"{got[0]:.2f} / {statistics.median(got):.2f} / {got[-1]:.2f} s"


def render(res: LoadResult) -> str:
    runs, s, w, p, logins = res.runs, res.server, res.worker, res.peaks, res.logins
    attempts = sorted(s.auth_attempts.get(u, 0) for u in {r.username for r in runs}) or [0]
    expected = (
        f"exactly {logins.expected_low}"
        if logins.exact
        else f"explained range {logins.expected_low}..{logins.expected_high}"
    )
    server_cpu = "-" if s.cpu_s is None else f"{s.cpu_s:.1f}"
    rows = [
        ("jobs completed and verified", f"{sum(r.ok for r in runs)} of {len(runs)}"),
        ("wall time", f"{res.wall_s:.2f} s (all users start at once .. the last result checked)"),
        ("per job (View QC to its end)", f"{_spread([r.job_s for r in runs])} (min/median/max)"),
        ("  GPS pass (server-side)", _spread([r.scan_seconds for r in runs])),
        ("  check pass (server-side)", _spread([r.checks_seconds for r in runs])),
        ("login (POST /login)", _spread([r.login_s for r in runs])),
        ("sites page", _spread([r.sites_s for r in runs])),
        ("QC page", _spread([r.qc_page_s for r in runs])),
        ("job began (its first event)", _spread([r.began_s for r in runs])),
        (
            "event stream opened",
            (
                f"{_spread([r.stream_open_s for r in runs])}; refused (then polled) "
                f"{sum(r.stream_refused is not None for r in runs)}"
            ),
        ),
        (
            "bystander's login page",
            f"{_spread(res.bystander_s)} over {len(res.bystander_s)} requests, every 0.5 s",
        ),
        ("result document GET", _spread([r.result_s for r in runs])),
        (
            "events received",
            (
                f"{sum(sum(r.events.values()) for r in runs):,}; stream reconnects "
                f"{sum(r.reconnects for r in runs)}"
            ),
        ),
        (
            "isolation probes",
            f"{sum(r.isolation_probes for r in runs)} (another user's job: 404 expected)",
        ),
        ("logged out", f"{sum(r.logged_out for r in runs)} of {len(runs)}"),
        None,
        (
            "SFTP connections",
            (
                f"{s.connections} in all; at most {s.max_concurrent_channels} at once (server-side, "
                f"exact) against a cap of {res.cap}; {p.sftp_tcp} sampled from the worker"
                if s.max_concurrent_channels is not None
                else f"{s.connections} logged in; at most {p.sftp_tcp} at once (sampled from the "
                f"worker) against a cap of {res.cap}; dropped by sshd {s.dropped} "
                f"(past MaxStartups); opened again by the tool {res.reopened}"
            ),
        ),
        (
            "password attempts",
            (
                f"{logins.total} ({expected}); refused {sum(s.rejected.values())}; "
                f"per user {attempts[0]}..{attempts[-1]}"
            ),
        ),
        (
            "  GPS-pass connections",
            (
                f"{sum(r.scan_connections for r in runs)}; check passes that read photos "
                f"{sum(r.checks_read for r in runs)} of {len(runs)}"
            ),
        ),
        (
            "files opened, bytes read",
            "-"
            if s.files_opened is None or s.bytes_read is None
            else f"{s.files_opened:,}, {s.bytes_read / 2**20:,.1f} MiB",
        ),
        (
            "server: replies after close",
            "-" if s.sends_after_close is None else f"{s.sends_after_close:,} (asyncio warnings)",
        ),
        None,
        (
            "gunicorn worker peak RSS",
            (
                f"{w.vm_hwm_mb:.1f} MiB (VmHWM), {p.worker_rss_mb:.1f} MiB sampled; with its "
                f"child processes {p.tree_rss_mb:.1f} MiB sampled (their VmHWM "
                f"{w.children_vm_hwm_mb} MiB)"
            ),
        ),
        ("worker threads (sampled)", f"at most {p.worker_threads} ({p.samples} samples)"),
        (
            "CPU seconds",
            (
                f"worker {w.cpu_s:.1f}, its children {w.children_cpu_s:.1f}, master "
                f"{w.master_cpu_s:.1f}, SFTP server {server_cpu}, clients {res.client_cpu_s:.1f}"
            ),
        ),
    ]
    head = [
        (
            f"load: {res.users} users, site {res.site} ({res.images_per_job:,} images a job, "
            f"sites {res.sites_mode}), following by {res.follow}, server {res.server_kind}"
        ),
        "settings: " + ", ".join(f"{k}={v}" for k, v in sorted(res.settings.items())),
        f"load average before {_loads(res.load_before)}, after {_loads(res.load_after)}",
        "",
    ]
    body = ["" if row is None else f"{row[0]:<30}{row[1]}" for row in rows]
    problems = res.problems
    tail = ["", f"problems: {len(problems)}"] + [f"  {p}" for p in problems[:40]]
    return "\n".join(head + body + tail)


def _loads(values: Sequence[float]) -> str:
    return " ".join(f"{v:.2f}" for v in values)


# --- the CLI ------------------------------------------------------------------------------------


def link_sites(source: Path, target_root: Path, names: Sequence[str]) -> None:
    """Each site in ``names`` as hard links to ``source`` (no extra disk; same size, mtime).

    Folders are made 0755 (sshd serves them as its unprivileged test account); across file
    systems the files are copied instead, with their mtimes.
    """
    shutil.rmtree(target_root, ignore_errors=True)
    old = os.umask(0o022)
    try:
        for name in names:
            for path in source.rglob("*"):
                if path.is_file():
                    link = target_root / name / path.relative_to(source)
                    link.parent.mkdir(parents=True, exist_ok=True)
                    try:
                        os.link(path, link)
                    except OSError as exc:
                        if exc.errno != errno.EXDEV:
                            raise
                        shutil.copy2(path, link)
    finally:
        os.umask(old)


def _dataset(data_dir: Path, small: bool) -> tuple[Path, SiteTruth]:
    """The benchmark's generated site (bench/data.py), generated on first use.

    An intact site is used as it is: ensure_dataset would also relink bench.run's sample.
    """
    from bench import data

    root = (data_dir / ("small" if small else "full")).resolve()
    manifest, truth_path = root / "manifest.json", root / "truth.json"
    wanted = data._manifest(data.layout_for(small))
    if manifest.is_file() and truth_path.is_file() and json.loads(manifest.read_text()) == wanted:
        truth = SiteTruth.read_truth(truth_path)
        if data._intact(root, truth):
            return root / truth.site, truth
    found = data.ensure_dataset(data_dir, small=small, per_folder=8)
    return found.sites_root / found.site, found.truth


def scaled_site(data_dir: Path, photos: int, small: bool) -> tuple[Path, SiteTruth]:
    """A site of about ``photos`` photos, the seed site's folders scaled down, generated once.

    Same photos as the seed site's (bodies, previews, defects); reused while its manifest
    matches and its files are intact.
    """
    from qc_tool.demo.sites import SEED_LAYOUT, SEED_SITE

    from bench import data

    share = photos / SEED_LAYOUT.total
    folders = tuple((name, max(1, round(n * share))) for name, n in SEED_LAYOUT.folders)
    layout = replace(
        data.layout_for(small),
        folders=folders,
        without_gps=max(1, round(SEED_LAYOUT.without_gps * share)),
    )
    root = (data_dir / f"{'small' if small else 'full'}-{photos}").resolve()
    manifest, truth_path = root / "manifest.json", root / "truth.json"
    wanted = data._manifest(layout)
    if manifest.is_file() and truth_path.is_file() and json.loads(manifest.read_text()) == wanted:
        truth = SiteTruth.read_truth(truth_path)
        if data._intact(root, truth):
            return root / truth.site, truth
    manifest.unlink(missing_ok=True)  # written last: marks a finished generation
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    print(f"Generating a site of {layout.total} photos into {root} ...", flush=True)
    with data._world_readable():
        truth = generate_site(
            root, SEED_SITE, layout, body=make_body(layout, seed=data.SEED), seed=data.SEED
        )
    truth.write_truth(truth_path)
    manifest.write_text(json.dumps(wanted, indent=1))
    return root / truth.site, truth


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n")[0])
    p.add_argument("--users", type=int, default=DEFAULT_USERS)
    p.add_argument("--small", action="store_true", help="small photo bodies (quick)")
    p.add_argument(
        "--sites",
        choices=["shared", "own"],
        default="shared",
        help="shared: every user opens the same site (and its cached results); own: each user "
        "a hard-linked copy of their own, so every job reads everything",
    )
    p.add_argument(
        "--photos",
        type=int,
        help="a site of about this many photos, shaped like the seed site (default: the seed "
        "site, 1,375)",
    )
    p.add_argument(
        "--server",
        choices=["builtin", "sshd"],
        default="builtin",
        help="builtin: the asyncssh server, one user each; sshd: OpenSSH (stock MaxStartups), "
        "every user a session of its test account",
    )
    p.add_argument("--follow", choices=["sse", "poll"], default="sse")
    p.add_argument("--deadline", type=float, default=DEFAULT_DEADLINE_S, help="seconds")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="QC_NAME=VALUE",
        help="an app setting (repeatable), e.g. --set QC_MAX_JOBS=8",
    )
    p.add_argument("--data", type=Path, default=OUT / "data", help="where the site is generated")
    p.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.users < 1 or args.deadline <= 0 or (args.photos is not None and args.photos < 12):
        p.error("--users and --deadline must be positive, --photos at least 12")
    args.overrides = setting_overrides(p, args.set)  # a bad one stops here, before any start
    return args


def setting_overrides(p: argparse.ArgumentParser, items: list[str]) -> dict[str, str]:
    """``--set QC_NAME=VALUE`` options as settings; a malformed one is a usage error."""
    for item in items:
        if not re.fullmatch(r"QC_[A-Z_]+=.*", item):
            p.error(f"--set takes QC_NAME=VALUE, not {item!r}")
    return dict(item.split("=", 1) for item in items)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.serve:
        _serve()
        return 0
    from qc_tool.config import SETTINGS, load

    overrides = args.overrides
    effective = load({**overrides})  # the defaults the app will use for what is not set
    if args.photos is None:
        source, truth = _dataset(args.data, args.small)
    else:
        source, truth = scaled_site(args.data, args.photos, args.small)
    work = OUT / "load"
    sites = (
        [f"{truth.site}-{i + 1:02d}" for i in range(args.users)]
        if args.sites == "own"
        else [truth.site]
    )
    print(f"Linking {len(sites)} site(s) of {len(truth.images):,} images ...", flush=True)
    load_before = os.getloadavg()
    server: ServerProcess | SshdServer
    if args.server == "sshd":
        shutil.rmtree(work / "sshd", ignore_errors=True)
        server = SshdServer(source, sites, work / "sshd")
        users = server.users(sites, args.users)
    else:
        link_sites(source, work / "root" / "sites", sites)
        users = make_users(args.users, sites)
        server = ServerProcess(work / "root", users, "/sites")
    app: Gunicorn | None = None
    try:
        known_hosts = work / "known_hosts"
        known_hosts.write_text(server.host_key_line + "\n")
        shutil.rmtree(work / "cache", ignore_errors=True)
        settings = app_settings(
            server.port, server.sites_root, known_hosts, work / "cache", **overrides
        )
        app = start_gunicorn(settings, work / "gunicorn.log")
        print(f"gunicorn on {app.url} (log: {app.log_path}); {args.users} users ...", flush=True)
        cpu_before = time.process_time()
        deadline = time.monotonic() + args.deadline
        with Sampler(app.worker(), server.port) as sampler:
            crowd = run_users(
                app.host,
                app.port,
                users,
                truth,
                checks=effective.checks,
                follow=args.follow,
                deadline=deadline,
            )
        client_cpu = time.process_time() - cpu_before
        worker = worker_figures(app)
        stats = server.stats()
    finally:
        if app is not None:
            app.stop()
        server.stop()
        # The links would keep the site's files alive if bench.run regenerated them (9 GB).
        shutil.rmtree(work / "root", ignore_errors=True)
    defaults = {s.name: s.default for s in SETTINGS if s.name in REPORTED_SETTINGS}
    shown = {name: defaults[name] for name in REPORTED_SETTINGS} | overrides
    result = LoadResult(
        settings=shown,
        users=args.users,
        site=truth.site,
        sites_mode=args.sites,
        follow=args.follow,
        images_per_job=len(truth.images),
        load_before=load_before,
        load_after=os.getloadavg(),
        wall_s=crowd.wall_s,
        runs=crowd.runs,
        bystander_s=crowd.bystander_s,
        bystander_problems=crowd.problems,
        server=stats,
        logins=account_logins(crowd.runs, stats, effective.max_connections, effective.checks),
        peaks=sampler.peaks,
        worker=worker,
        client_cpu_s=client_cpu,
        verdict_problems=verdict_differences(crowd.runs),
        cap=effective.max_server_connections,
        server_kind=args.server,
        reopened=reopened_connections(app.log_path.read_text(errors="replace")),
    )
    print(render(result))
    if args.json:
        args.json.write_text(json.dumps(result.to_json(), indent=1, default=str))
    return 0 if not result.problems else 1


if __name__ == "__main__":
    sys.exit(main())
