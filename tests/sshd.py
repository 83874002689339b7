"""Start OpenSSH's sshd on 127.0.0.1 for the integration tests: a real server with a real login.

Needs root (sshd must switch to the test user), /usr/sbin/sshd, and the throwaway account that
.ci/setup_sshd_user.sh creates (credentials in /etc/qc-test-sshd.env, or in the environment as
QC_TEST_SSHD_USER / QC_TEST_SSHD_PASSWORD). The test data is copied under /srv/qc-sftp, which the
test user can read, and ``sites_root`` is that absolute path: exactly how a real server looks.

Config choices: ``UsePAM no`` (sshd checks /etc/shadow itself: password login works for a local
user on Debian without PAM's session modules, e.g. pam_loginuid, which fail in containers, and
without pam_unix's delay of ~3 s after a wrong password; ``UsePAM yes`` also works here, only
slower); ``ForceCommand internal-sftp`` so the
account can do nothing but SFTP. ``PerSourcePenalties no`` is added only on OpenSSH >= 9.8, where
a failed login would otherwise make sshd refuse the next connections from 127.0.0.1 for a while.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")
ENV_FILE = Path("/etc/qc-test-sshd.env")
DATA_PARENT = Path("/srv/qc-sftp")
READY_TIMEOUT_S = 10.0


@dataclass
class SshdHandle:
    """A running sshd: where it listens, who may log in, where the data is; ``stop()`` ends it."""

    host: str
    port: int
    username: str
    password: str = field(repr=False)
    sites_root: str
    known_hosts: Path
    log_file: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    data_dir: Path

    def log_text(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def failed_password_count(self, username: str, *, wait_for: int = 0,
                              timeout: float = 5.0) -> int:
        """How many "Failed password" lines sshd logged for ``username``.

        sshd's monitor may write the line just after the client has seen the failure, so
        ``wait_for`` polls (up to ``timeout``) until at least that many lines are there.
        """
        pattern = re.compile(
            rf"Failed password for (?:invalid user )?{re.escape(username)} from "
        )
        deadline = time.monotonic() + timeout
        while True:
            count = len(pattern.findall(self.log_text()))
            if count >= wait_for or time.monotonic() > deadline:
                return count
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop sshd and remove the copied data; idempotent."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def test_user() -> tuple[str, str] | None:
    """The throwaway account's (username, password), from the environment or the env file."""
    user = os.environ.get("QC_TEST_SSHD_USER")
    password = os.environ.get("QC_TEST_SSHD_PASSWORD")
    if user and password:
        return user, password
    if not ENV_FILE.is_file():
        return None
    values = dict(
        line.split("=", 1) for line in ENV_FILE.read_text().splitlines() if "=" in line
    )
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
    if not DATA_PARENT.is_dir():
        return f"{DATA_PARENT} is missing: run .ci/setup_sshd_user.sh"
    return None


def start_sshd(data_root: Path, tmp: Path) -> SshdHandle | None:
    """Start sshd serving a copy of ``data_root``; None when this machine cannot run it."""
    if unavailable_reason() is not None:
        return None
    creds = test_user()
    assert creds is not None
    username, password = creds
    tmp.mkdir(parents=True, exist_ok=True)
    # sshd refuses to start without its privilege-separation directory (tmpfs: gone on reboot).
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    data_dir = _copy_data(data_root, username)
    host_key = tmp / "ssh_host_ed25519_key"
    if not host_key.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "qc-test-sshd", "-f",
             str(host_key)],
            check=True,
        )
    public_key = " ".join(host_key.with_suffix(".pub").read_text().split()[:2])
    # A freshly picked free port can be taken before sshd binds it: try a few.
    last_error = ""
    for _attempt in range(3):
        port = _free_port()
        config = tmp / f"sshd_config.{port}"
        log_file = tmp / f"sshd.{port}.log"
        config.write_text(_config_text(port, host_key, tmp, username))
        process = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(config), "-E", str(log_file)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        if _wait_ready(port, process):
            known_hosts = tmp / f"known_hosts.{port}"
            known_hosts.write_text(f"[127.0.0.1]:{port} {public_key}\n")
            return SshdHandle(
                host="127.0.0.1", port=port, username=username, password=password,
                sites_root=str(data_dir), known_hosts=known_hosts, log_file=log_file,
                process=process, data_dir=data_dir,
            )
        process.kill()
        _, stderr = process.communicate()
        last_error = stderr.decode(errors="replace") + (
            log_file.read_text(errors="replace") if log_file.exists() else ""
        )
    shutil.rmtree(data_dir, ignore_errors=True)
    raise RuntimeError(f"sshd did not start:\n{last_error}")


def _copy_data(data_root: Path, username: str) -> Path:
    """Copy the test tree where the test user can read it, owned by that user as on a server."""
    target = DATA_PARENT / f"test-{uuid.uuid4().hex[:12]}"
    shutil.copytree(data_root, target)
    group = grp.getgrgid(pwd.getpwnam(username).pw_gid).gr_name
    for path in [target, *target.rglob("*")]:
        shutil.chown(path, user=username, group=group)
        path.chmod(0o755 if path.is_dir() else 0o644)
    return target


def _config_text(port: int, host_key: Path, tmp: Path, username: str) -> str:
    lines = [
        f"Port {port}",
        "ListenAddress 127.0.0.1",
        f"HostKey {host_key}",
        f"PidFile {tmp / f'sshd.{port}.pid'}",
        "LogLevel INFO",
        "UsePAM no",
        "PasswordAuthentication yes",
        "KbdInteractiveAuthentication no",
        "PubkeyAuthentication no",
        "AuthorizedKeysFile none",
        "PermitRootLogin no",
        "PermitEmptyPasswords no",
        f"AllowUsers {username}",
        "UseDNS no",
        "AllowTcpForwarding no",
        "AllowAgentForwarding no",
        "X11Forwarding no",
        "PermitTTY no",
        "PrintMotd no",
        "Subsystem sftp internal-sftp",
        "ForceCommand internal-sftp",
    ]
    if _supports_per_source_penalties():
        lines.append("PerSourcePenalties no")
    return "\n".join(lines) + "\n"


def _supports_per_source_penalties() -> bool:
    """OpenSSH >= 9.8 knows PerSourcePenalties; older versions reject the keyword."""
    result = subprocess.run(
        [str(SSHD), "-t", "-f", "/dev/null", "-o", "PerSourcePenalties=no"],
        capture_output=True, text=True, check=False,  # only the error text matters
    )
    return "Bad configuration option" not in result.stderr and "unsupported" not in result.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(port: int, process: subprocess.Popen[bytes]) -> bool:
    """Wait until sshd answers with its SSH banner; False if it exited or never answered."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
                if sock.recv(64).startswith(b"SSH-"):
                    return True
        except OSError:
            pass
        time.sleep(0.05)
    return False
