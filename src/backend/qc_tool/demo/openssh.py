"""Start OpenSSH's sshd on 127.0.0.1 for the tests and the benchmark: a real server, a real login.

Needs root (sshd must switch to the test user), /usr/sbin/sshd, and the throwaway account that
.ci/setup_sshd_user.sh creates (credentials in /etc/qc-test-sshd.env, or in the environment as
QC_TEST_SSHD_USER / QC_TEST_SSHD_PASSWORD). sshd serves the real filesystem, so the files must be
readable by that user; the handle's ``sites_root`` is their absolute path, as on a real server.

Config choices: ``UsePAM no`` (sshd checks /etc/shadow itself: password login works for a local
user on Debian without PAM's session modules, e.g. pam_loginuid, which fail in containers, and
without pam_unix's delay of ~3 s after a wrong password; ``UsePAM yes`` also works here, only
slower); ``ForceCommand internal-sftp`` so the account can do nothing but SFTP.
``PerSourcePenalties no`` is added only on OpenSSH >= 9.8, where a failed login would otherwise
make sshd refuse the next connections from 127.0.0.1 for a while.
"""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")
ENV_FILE = Path("/etc/qc-test-sshd.env")
HOST = "127.0.0.1"
READY_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
START_ATTEMPTS = 3


@dataclass
class OpenSshProcess:
    """A running sshd: where it listens, who may log in, its host key and log; ``stop()`` ends it."""

    host: str
    port: int
    username: str
    sites_root: str  # the client-side (here: absolute) path of the directory holding the sites
    public_key: str  # "ssh-ed25519 AAAA...", for known_hosts lines
    known_hosts: Path  # a known_hosts file naming this server at host:port
    log_file: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    def known_hosts_line(self, host: str, port: int) -> str:
        """The known_hosts line for reaching this server as host:port (e.g. through a proxy)."""
        return f"[{host}]:{port} {self.public_key}"

    def log_text(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def version(self) -> str:
        """sshd's version, with the Debian package version when dpkg knows it."""
        return sshd_version()

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Terminate sshd (kill it after ``timeout``); idempotent."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def test_user() -> tuple[str, str] | None:
    """The throwaway account's (username, password), from the environment or the env file."""
    user = os.environ.get("QC_TEST_SSHD_USER")
    password = os.environ.get("QC_TEST_SSHD_PASSWORD")
    if user and password:
        return user, password
    if not ENV_FILE.is_file():
        return None
    values = dict(line.split("=", 1) for line in ENV_FILE.read_text().splitlines() if "=" in line)
    user, password = values.get("QC_TEST_SSHD_USER"), values.get("QC_TEST_SSHD_PASSWORD")
    return (user, password) if user and password else None


def unavailable_reason() -> str | None:
    """Why sshd cannot be started here, or None when it can."""
    if not SSHD.exists():
        return f"{SSHD} is not installed (apt-get install openssh-server)"
    if os.geteuid() != 0:
        return "starting sshd needs root"
    if test_user() is None:
        return f"no sshd test user: run .ci/setup_sshd_user.sh (writes {ENV_FILE})"
    return None


def start_openssh(
    sites_root: Path,
    workdir: Path,
    *,
    username: str,
    also_allow: Sequence[str] = (),
    ready_timeout: float = READY_TIMEOUT_S,
) -> OpenSshProcess:
    """Start sshd letting ``username`` (and ``also_allow``) in by password, SFTP only.

    State files go in ``workdir``.

    Raises RuntimeError with sshd's own output when it does not answer within ``ready_timeout``.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    # sshd refuses to start without its privilege-separation directory (tmpfs: gone on reboot).
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    host_key = workdir / "ssh_host_ed25519_key"
    if not host_key.exists():
        subprocess.run(
            [
                "ssh-keygen",
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "qc-openssh",
                "-f",
                str(host_key),
            ],
            check=True,
        )
    public_key = " ".join(host_key.with_suffix(".pub").read_text().split()[:2])
    # A freshly picked free port can be taken before sshd binds it: try a few.
    last_error = ""
    for _attempt in range(START_ATTEMPTS):
        port = _free_port()
        config = workdir / f"sshd_config.{port}"
        log_file = workdir / f"sshd.{port}.log"
        config.write_text(_config_text(port, host_key, workdir, [username, *also_allow]))
        process = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(config), "-E", str(log_file)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        if _wait_ready(port, process, ready_timeout):
            known_hosts = workdir / f"known_hosts.{port}"
            known_hosts.write_text(f"[{HOST}]:{port} {public_key}\n")
            return OpenSshProcess(
                host=HOST,
                port=port,
                username=username,
                sites_root=str(sites_root),
                public_key=public_key,
                known_hosts=known_hosts,
                log_file=log_file,
                process=process,
            )
        process.kill()
        _, stderr = process.communicate()
        last_error = stderr.decode(errors="replace") + (
            log_file.read_text(errors="replace") if log_file.exists() else ""
        )
    raise RuntimeError(f"sshd did not start:\n{last_error}")


@functools.cache
def sshd_version() -> str:
    """``sshd -V``'s first line, plus the Debian package version when dpkg knows it."""
    out = subprocess.run([str(SSHD), "-V"], capture_output=True, text=True, check=False)
    version = (out.stderr or out.stdout).strip().splitlines()[0]
    pkg = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", "openssh-server"],
        capture_output=True,
        text=True,
        check=False,
    )
    return f"{version} (Debian package {pkg.stdout.strip()})" if pkg.returncode == 0 else version


def _config_text(port: int, host_key: Path, workdir: Path, usernames: Sequence[str]) -> str:
    """Password login for ``usernames`` only, SFTP only, nothing else."""
    lines = [
        f"Port {port}",
        f"ListenAddress {HOST}",
        f"HostKey {host_key}",
        f"PidFile {workdir / f'sshd.{port}.pid'}",
        "LogLevel INFO",
        "UsePAM no",
        "PasswordAuthentication yes",
        "KbdInteractiveAuthentication no",
        "PubkeyAuthentication no",
        "AuthorizedKeysFile none",
        "PermitRootLogin no",
        "PermitEmptyPasswords no",
        f"AllowUsers {' '.join(usernames)}",
        "UseDNS no",
        "AllowTcpForwarding no",
        "AllowAgentForwarding no",
        "X11Forwarding no",
        "PermitTTY no",
        "PrintMotd no",
        "Subsystem sftp internal-sftp",
        "ForceCommand internal-sftp",
        "MaxStartups 10:30:100",  # OpenSSH's default, stated: the load tests rely on it
    ]
    if _supports_per_source_penalties():
        lines.append("PerSourcePenalties no")
    return "\n".join(lines) + "\n"


@functools.cache
def _supports_per_source_penalties() -> bool:
    """OpenSSH >= 9.8 knows PerSourcePenalties; older versions reject the keyword."""
    result = subprocess.run(
        [str(SSHD), "-t", "-f", "/dev/null", "-o", "PerSourcePenalties=no"],
        capture_output=True,
        text=True,
        check=False,  # only the error text matters
    )
    return "Bad configuration option" not in result.stderr and "unsupported" not in result.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(port: int, process: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait until sshd answers with its SSH banner; False if it exited or never answered."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection((HOST, port), timeout=1.0) as sock:
                if sock.recv(64).startswith(b"SSH-"):
                    return True
        except OSError:
            pass
        time.sleep(0.05)
    return False
