"""OpenSSH's sshd for the integration tests, serving a copy of the test data under /srv/qc-sftp.

Starting sshd (config, host key, test user) lives in ``qc_tool.demo.openssh``, shared with the
benchmark. Here the test data is copied under /srv/qc-sftp, which the test user can read, so
``sites_root`` is that absolute path: exactly how a real server looks. The handle also counts
sshd's "Failed password" log lines, which the tests use to check a wrong password costs one try.

sshd also lets in the second test account (``QC_TEST_SSHD_USER2``, made by
.ci/setup_sshd_user.sh) when there is one: ``handle.other`` is its (username, password). It owns
no files of the copy, so what it may read is what the mode bits give "others", as for a
colleague on a real server.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import uuid
from dataclasses import dataclass, field, fields
from pathlib import Path

from qc_tool.demo import openssh
from qc_tool.demo.openssh import OpenSshProcess

DATA_PARENT = Path("/srv/qc-sftp")


@dataclass
class SshdHandle(OpenSshProcess):
    """A running sshd plus the password and the copied data; ``stop()`` also removes the data."""

    password: str = field(repr=False)
    data_dir: Path
    other: tuple[str, str] | None = field(default=None, repr=False)  # the second account

    def failed_password_count(self, username: str) -> int:
        """How many "Failed password" lines sshd has logged for ``username`` so far."""
        pattern = rf"Failed password for (?:invalid user )?{re.escape(username)} from "
        return len(re.findall(pattern, self.log_text()))

    def refused_logins_ended(self, username: str) -> int:
        """How many connections that never got past the login sshd has logged as ended.

        That line is the last sshd writes about such a connection: once it is there, every
        "Failed password" line of the connection is too (the monitor may write them just
        after the client has seen the failure, so a test waits for this, not for a time).
        """
        pattern = (
            rf"(?:Connection closed by|Disconnected from) authenticating user "
            rf"{re.escape(username)} .*\[preauth\]"
        )
        return len(re.findall(pattern, self.log_text()))

    def stop(self, timeout: float = openssh.STOP_TIMEOUT_S) -> None:
        """Stop sshd and remove the copied data; idempotent."""
        super().stop(timeout)
        shutil.rmtree(self.data_dir, ignore_errors=True)


def unavailable_reason() -> str | None:
    """Why sshd cannot be started here, or None when it can."""
    reason = openssh.unavailable_reason()
    if reason is None and not DATA_PARENT.is_dir():
        return f"{DATA_PARENT} is missing: run .ci/setup_sshd_user.sh"
    return reason


def start_sshd(data_root: Path, tmp: Path) -> SshdHandle | None:
    """Start sshd serving a copy of ``data_root``; None when this machine cannot run it."""
    if unavailable_reason() is not None:
        return None
    creds = openssh.test_user()
    assert creds is not None
    username, password = creds
    other = second_test_user()
    data_dir = _copy_data(data_root, username)
    try:
        server = openssh.start_openssh(
            data_dir, tmp, username=username, also_allow=[other[0]] if other else []
        )
    except BaseException:
        shutil.rmtree(data_dir, ignore_errors=True)
        raise
    # The handle is the started server plus what only the tests need.
    started = {f.name: getattr(server, f.name) for f in fields(server)}
    return SshdHandle(**started, password=password, data_dir=data_dir, other=other)


def second_test_user() -> tuple[str, str] | None:
    """The second throwaway account's (username, password), as ``openssh.test_user`` reads the
    first: the environment (QC_TEST_SSHD_USER2 / QC_TEST_SSHD_PASSWORD2), else the env file."""
    user = os.environ.get("QC_TEST_SSHD_USER2")
    password = os.environ.get("QC_TEST_SSHD_PASSWORD2")
    if not (user and password) and openssh.ENV_FILE.is_file():
        lines = openssh.ENV_FILE.read_text().splitlines()
        values = dict(line.split("=", 1) for line in lines if "=" in line)
        user, password = values.get("QC_TEST_SSHD_USER2"), values.get("QC_TEST_SSHD_PASSWORD2")
    if not (user and password):
        return None
    try:
        pwd.getpwnam(user)
    except KeyError:  # named in the environment, but not an account of this machine
        return None
    return user, password


def _copy_data(data_root: Path, username: str) -> Path:
    """Copy the test tree where the test user can read it, owned by that user as on a server."""
    target = DATA_PARENT / f"test-{uuid.uuid4().hex[:12]}"
    shutil.copytree(data_root, target)
    group = grp.getgrgid(pwd.getpwnam(username).pw_gid).gr_name
    for path in [target, *target.rglob("*")]:
        shutil.chown(path, user=username, group=group)
        path.chmod(0o755 if path.is_dir() else 0o644)
    return target
