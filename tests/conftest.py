"""Shared fixtures: real SFTP servers (in-process asyncssh, and OpenSSH's sshd when possible)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
import sshd as sshd_support  # tests/sshd.py; tests/ is on sys.path as the rootdir conftest's dir
from qc_tool.demo.sftp_server import SftpServerHandle, start_sftp_server

SFTP_USERNAME = "tester"
SFTP_PASSWORD = "tester-password-1"

MakeSftpServer = Callable[..., SftpServerHandle]
MakeSshd = Callable[[Path], "sshd_support.SshdHandle"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses the sshd fixture, so ``-m "not sshd"`` leaves them out."""
    for item in items:
        if "sshd" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.sshd)


@pytest.fixture
def sftp_username() -> str:
    """The user the ``sftp_server`` fixture (and ``make_sftp_server`` by default) accepts."""
    return SFTP_USERNAME


@pytest.fixture
def sftp_password() -> str:
    return SFTP_PASSWORD


@pytest.fixture
def make_sftp_server() -> Iterator[MakeSftpServer]:
    """Factory: ``make_sftp_server(root, users=None, *, sites_root="/", read_cap=None,
    max_sessions=None, host_key=None)`` serves ``root`` (chroot) on 127.0.0.1; stopped after the
    test. ``users`` defaults to {sftp_username: sftp_password}."""
    started: list[SftpServerHandle] = []

    def make(
        root: Path, users: Mapping[str, str] | None = None, **options: object
    ) -> SftpServerHandle:
        server = start_sftp_server(
            root,
            users if users is not None else {SFTP_USERNAME: SFTP_PASSWORD},
            **options,  # type: ignore[arg-type]
        )
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def sftp_root(tmp_path: Path) -> Path:
    """The ``sftp_server`` fixture's chroot; put sites in ``sftp_root / "sites"`` (sites root
    ``/sites`` for clients). The server reads the disk live, so fill it before or after start."""
    root = tmp_path / "sftp-root"
    (root / "sites").mkdir(parents=True)
    return root


@pytest.fixture
def sftp_server(make_sftp_server: MakeSftpServer, sftp_root: Path) -> SftpServerHandle:
    """An in-process SFTP server over ``sftp_root``; ``.sites_root == "/sites"``."""
    return make_sftp_server(sftp_root, sites_root="/sites")


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MakeSshd]:
    """Factory: ``sshd(data_root)`` starts OpenSSH's sshd on 127.0.0.1 serving a copy of
    ``data_root`` (a sites root); the handle's ``sites_root`` is the copy's absolute path.

    Skips when this machine cannot run sshd (not installed, not root, no test user), unless
    QC_REQUIRE_SSHD=1 (CI), where that is a failure instead.
    """
    reason = sshd_support.unavailable_reason()
    if reason is not None:
        if os.environ.get("QC_REQUIRE_SSHD") == "1":
            pytest.fail(f"QC_REQUIRE_SSHD=1 but sshd is unavailable: {reason}", pytrace=False)
        pytest.skip(f"sshd unavailable: {reason}")
    base = tmp_path_factory.mktemp("sshd")
    started: list[sshd_support.SshdHandle] = []

    def make(data_root: Path) -> sshd_support.SshdHandle:
        handle = sshd_support.start_sshd(data_root, base / f"server-{len(started)}")
        assert handle is not None  # availability was checked above
        started.append(handle)
        return handle

    yield make
    for handle in started:
        handle.stop()


@pytest.fixture
def cpu_burners() -> Iterator[list[int]]:
    """Two CPU-burning processes (one per core here), ended (by their own ids) after the test.

    Each is started by a short-lived parent, so it is not a descendant of this process: the
    sampler counts this process's descendants as its own work, and another user's load is not.
    """
    code = "while True: pass"
    spawn = (
        "import subprocess, sys; "
        f"print(subprocess.Popen([sys.executable, '-c', {code!r}], stdin=subprocess.DEVNULL, "
        "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).pid)"
    )
    pids = [
        int(
            subprocess.run(
                [sys.executable, "-c", spawn], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(2)
    ]
    yield pids
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
