"""The SFTP server the benchmark measures against: OpenSSH's sshd when possible, else the built-in one.

sshd (started by ``qc_tool.demo.openssh``, as in the tests) serves the generated data in place
(no 9 GB copy) as the throwaway test user that .ci/setup_sshd_user.sh creates. The built-in
asyncssh server runs in its own process (``python -m bench.servers``), so it never shares a
GIL with the link emulator or the client. Each server reports the CPU time it used, finished
sessions included, so the analysis can say where the two cores went.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from qc_tool.demo import openssh

READY_TIMEOUT_S = 15.0
SETTLE_TIMEOUT_S = 5.0
ServerKind = Literal["sshd", "builtin"]


@dataclass
class Server:
    """A running SFTP server on 127.0.0.1 and what a client needs to log in."""

    kind: ServerKind
    version: str
    port: int
    username: str
    password: str = field(repr=False)
    sites_root: str  # the client-side path of the directory holding the sites
    public_key: str  # "ssh-ed25519 AAAA...", for known_hosts lines
    process: subprocess.Popen[bytes] = field(repr=False)
    host: str = "127.0.0.1"

    def known_hosts_line(self, host: str, port: int) -> str:
        return f"[{host}]:{port} {self.public_key}"

    def cpu_seconds(self) -> float:
        """CPU used by the server process and its finished (reaped) children so far."""
        return _proc_cpu(self.process.pid)

    def settle(self) -> None:
        """Wait (bounded) until sshd has reaped every session, so cpu_seconds() counts them."""
        if self.kind != "sshd":
            return
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while _children(self.process.pid) and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            if self.kind == "builtin" and self.process.stdin is not None:
                self.process.stdin.close()  # the server process stops when its stdin closes
            else:
                self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def sshd_unavailable(sites_root: Path) -> str | None:
    """Why sshd cannot serve ``sites_root`` here, or None when it can."""
    reason = openssh.unavailable_reason()
    if reason is not None:
        return reason
    for path in (sites_root, *sites_root.parents):
        if path.stat().st_mode & 0o005 != 0o005:
            return f"{path} is not readable by other users (sshd serves as the test user)"
    return None


def start_server(kind: ServerKind, sites_root: Path, workdir: Path) -> Server:
    """Start the server of ``kind`` serving ``sites_root``; state files go under ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    if kind == "sshd":
        return _start_sshd(sites_root, workdir)
    return _start_builtin(sites_root)


# --- OpenSSH ---------------------------------------------------------------------------------


def _start_sshd(sites_root: Path, workdir: Path) -> Server:
    reason = sshd_unavailable(sites_root)
    if reason is not None:
        raise RuntimeError(f"sshd cannot be used: {reason}")
    creds = openssh.test_user()
    assert creds is not None
    username, password = creds
    sshd = openssh.start_openssh(
        sites_root, workdir, username=username, ready_timeout=READY_TIMEOUT_S
    )
    return Server(
        "sshd",
        sshd.version(),
        sshd.port,
        username,
        password,
        sshd.sites_root,
        sshd.public_key,
        sshd.process,
    )


# --- built-in asyncssh server ----------------------------------------------------------------


def _start_builtin(sites_root: Path) -> Server:
    username, password = "bench", secrets.token_urlsafe(16)
    repo = Path(__file__).resolve().parent.parent
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.servers"],
        cwd=repo,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    job = {"root": str(sites_root), "username": username, "password": password}
    process.stdin.write((json.dumps(job) + "\n").encode())
    process.stdin.flush()
    line = _readline_with_timeout(process, READY_TIMEOUT_S)
    if not line:
        process.kill()
        process.wait()
        raise RuntimeError("the built-in SFTP server did not start")
    info = json.loads(line)
    return Server(
        "builtin",
        info["version"],
        int(info["port"]),
        username,
        password,
        "/",
        info["public_key"],
        process,
    )


def _readline_with_timeout(process: subprocess.Popen[bytes], timeout: float) -> bytes:
    assert process.stdout is not None
    out: list[bytes] = []
    reader = threading.Thread(
        target=lambda: out.append(process.stdout.readline()),  # type: ignore[union-attr]
        daemon=True,
    )
    reader.start()
    reader.join(timeout)
    return out[0] if out else b""


def _serve_builtin() -> None:
    """Child process: serve the root given on stdin until stdin closes."""
    import asyncssh
    from qc_tool.demo.sftp_server import start_sftp_server

    job = json.loads(sys.stdin.readline())
    server = start_sftp_server(
        Path(job["root"]), {job["username"]: job["password"]}, sites_root="/"
    )
    public = server.host_key_line.split(None, 1)[1]
    info = {
        "port": server.port,
        "public_key": public,
        "version": f"qc_tool.demo.sftp_server (asyncssh {asyncssh.__version__})",
    }
    print(json.dumps(info), flush=True)
    try:
        sys.stdin.read()  # blocks until the parent closes our stdin
    finally:
        server.stop()


# --- process helpers -------------------------------------------------------------------------


def _proc_cpu(pid: int) -> float:
    """utime + stime + cutime + cstime of ``pid`` in seconds (0 if it is gone)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = text.rsplit(")", 1)[1].split()
    ticks = sum(int(v) for v in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


if __name__ == "__main__":
    _serve_builtin()
