"""The SFTP servers the other tests rely on behave like real servers, seen through paramiko."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import paramiko
import pytest
from paramiko.sftp import CMD_DATA, CMD_READ, int64
from qc_tool.demo.sftp_server import SftpServerHandle
from waiting import wait_until

if TYPE_CHECKING:
    from sshd import SshdHandle

MakeSftpServer = Callable[..., SftpServerHandle]


@contextmanager
def sftp_session(
    host: str, port: int, known_hosts: Path, username: str, password: str
) -> Iterator[paramiko.SFTPClient]:
    """Log in as the tool does: a Transport whose host key must be in known_hosts (reject
    otherwise), then one password attempt."""
    transport = paramiko.Transport((host, port))
    try:
        transport.start_client(timeout=10)
        key = transport.get_remote_server_key()
        if not paramiko.HostKeys(str(known_hosts)).check(f"[{host}]:{port}", key):
            raise paramiko.SSHException(f"host key for [{host}]:{port} not in {known_hosts}")
        transport.auth_password(username, password)
        sftp = paramiko.SFTPClient.from_transport(transport)
        assert sftp is not None
        with sftp:
            yield sftp
    finally:
        transport.close()


def write_site(sites: Path) -> dict[str, bytes]:
    """A small site: two folders of 'images' with distinct contents; returns path -> bytes."""
    files = {
        "SITE-001/Antenna A/IMG_0001.JPG": os.urandom(150_000),
        "SITE-001/Antenna A/IMG_0002.JPG": os.urandom(1_000),
        "SITE-001/Tower base/IMG_0100.JPG": os.urandom(70_000),
    }
    for rel, data in files.items():
        path = sites / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


@pytest.fixture
def site_files(sftp_root: Path) -> dict[str, bytes]:
    return write_site(sftp_root / "sites")


@pytest.fixture
def known_hosts(sftp_server: SftpServerHandle, tmp_path: Path) -> Path:
    return sftp_server.write_known_hosts(tmp_path / "known_hosts")


def login(
    server: SftpServerHandle, known_hosts: Path, username: str, password: str
) -> AbstractContextManager[paramiko.SFTPClient]:
    """``sftp_session`` against an in-process server."""
    return sftp_session(server.host, server.port, known_hosts, username, password)


def test_listing_shows_sites_folders_and_file_attributes(
    sftp_server: SftpServerHandle,
    known_hosts: Path,
    site_files: dict[str, bytes],
    sftp_username: str,
    sftp_password: str,
) -> None:
    with login(sftp_server, known_hosts, sftp_username, sftp_password) as sftp:
        assert sftp_server.sites_root == "/sites"
        assert sftp.listdir("/") == ["sites"]
        assert sftp.listdir(sftp_server.sites_root) == ["SITE-001"]
        folders = {a.filename: a for a in sftp.listdir_attr("/sites/SITE-001")}
        assert set(folders) == {"Antenna A", "Tower base"}
        assert all(stat.S_ISDIR(a.st_mode or 0) for a in folders.values())
        images = {a.filename: a for a in sftp.listdir_attr("/sites/SITE-001/Antenna A")}
        assert {name: a.st_size for name, a in images.items()} == {
            "IMG_0001.JPG": 150_000,
            "IMG_0002.JPG": 1_000,
        }
        local = sftp_server.root / "sites/SITE-001/Antenna A/IMG_0001.JPG"
        assert images["IMG_0001.JPG"].st_mtime == int(local.stat().st_mtime)
    assert sftp_server.files_opened == 0  # listing opens directories, not files


def test_reads_are_byte_exact_and_counted(
    sftp_server: SftpServerHandle,
    known_hosts: Path,
    site_files: dict[str, bytes],
    sftp_username: str,
    sftp_password: str,
) -> None:
    rel = "SITE-001/Antenna A/IMG_0001.JPG"
    with login(sftp_server, known_hosts, sftp_username, sftp_password) as sftp:
        with sftp.open(f"/sites/{rel}", "rb") as remote:
            assert remote.read() == site_files[rel]
        with sftp.open(f"/sites/{rel}", "rb") as remote:
            header = remote.read(4096)
    assert header == site_files[rel][:4096]
    assert sftp_server.files_opened == 2
    assert sftp_server.bytes_read == len(site_files[rel]) + 4096


def test_read_cap_shortens_every_read_reply(
    make_sftp_server: MakeSftpServer,
    sftp_root: Path,
    tmp_path: Path,
    sftp_username: str,
    sftp_password: str,
) -> None:
    files = write_site(sftp_root / "sites")
    rel = "SITE-001/Antenna A/IMG_0001.JPG"
    server = make_sftp_server(sftp_root, sites_root="/sites", read_cap=32768)
    known = server.write_known_hosts(tmp_path / "kh")
    with (
        login(server, known, sftp_username, sftp_password) as sftp,
        sftp.open(f"/sites/{rel}", "rb") as remote,
    ):
        # One raw READ asking for 128 KiB: the server answers with at most 32 KiB.
        kind, msg = sftp._request(CMD_READ, remote.handle, int64(0), 131072)
        assert kind == CMD_DATA
        assert msg.get_string() == files[rel][:32768]
        # Pipelined reads with a bigger request size still reassemble the whole file.
        chunks = remote.readv([(0, 100_000), (100_000, 50_000)])
        assert b"".join(chunks) == files[rel]


def test_wrong_password_costs_exactly_one_attempt(
    sftp_server: SftpServerHandle,
    known_hosts: Path,
    sftp_username: str,
) -> None:
    with (
        pytest.raises(paramiko.AuthenticationException),
        login(sftp_server, known_hosts, sftp_username, "not-the-password"),
    ):
        pass
    assert sftp_server.auth_attempts[sftp_username] == 1


def test_unknown_host_key_is_rejected(
    sftp_server: SftpServerHandle,
    make_sftp_server: MakeSftpServer,
    sftp_root: Path,
    tmp_path: Path,
    sftp_username: str,
    sftp_password: str,
) -> None:
    other = make_sftp_server(sftp_root)  # same address, different key
    wrong = tmp_path / "wrong_known_hosts"
    wrong.write_text(other.host_key_line.replace(str(other.port), str(sftp_server.port)) + "\n")
    with (
        pytest.raises(paramiko.SSHException, match="not in"),
        login(sftp_server, wrong, sftp_username, sftp_password),
    ):
        pass
    assert sftp_server.auth_attempts[sftp_username] == 0  # no password sent to the impostor


def test_server_refuses_writes_and_stays_in_its_root(
    sftp_server: SftpServerHandle,
    known_hosts: Path,
    site_files: dict[str, bytes],
    sftp_username: str,
    sftp_password: str,
) -> None:
    with login(sftp_server, known_hosts, sftp_username, sftp_password) as sftp:
        with pytest.raises(PermissionError):
            sftp.open("/sites/new.txt", "wb")
        with pytest.raises(PermissionError):
            sftp.mkdir("/sites/new")
        with pytest.raises(PermissionError):
            sftp.remove("/sites/SITE-001/Antenna A/IMG_0002.JPG")
        assert sftp.listdir("/../..") == ["sites"]  # ".." stops at the chroot
    assert not (sftp_server.root / "sites/new.txt").exists()
    assert (sftp_server.root / "sites/SITE-001/Antenna A/IMG_0002.JPG").exists()


def test_max_sessions_limits_channels_per_connection(
    make_sftp_server: MakeSftpServer,
    sftp_root: Path,
    tmp_path: Path,
    sftp_username: str,
    sftp_password: str,
) -> None:
    server = make_sftp_server(sftp_root, max_sessions=2)
    known = server.write_known_hosts(tmp_path / "kh")
    with login(server, known, sftp_username, sftp_password) as first:
        transport = first.get_channel().get_transport()
        second = paramiko.SFTPClient.from_transport(transport)
        assert second is not None
        with pytest.raises(paramiko.ChannelException):
            paramiko.SFTPClient.from_transport(transport)
        assert server.max_concurrent_channels == 2
        second.close()

        def third() -> paramiko.SFTPClient | None:
            try:
                return paramiko.SFTPClient.from_transport(transport)
            except paramiko.ChannelException:
                return None  # the server frees the closed channel's slot a moment later

        wait_until(third, message="a channel once the second one closed").close()
    assert server.max_concurrent_channels == 2


def test_stop_is_idempotent_and_closes_the_port(
    make_sftp_server: MakeSftpServer,
    sftp_root: Path,
) -> None:
    server = make_sftp_server(sftp_root)
    server.stop()
    server.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((server.host, server.port), timeout=2)


def test_demo_entry_point_serves_and_writes_its_files(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    (data / "sites" / "SITE-9").mkdir(parents=True)
    (data / "sites" / "SITE-9" / "a.JPG").write_bytes(b"x" * 10)
    (data / ".demo-generated").write_text("generated\n")  # skip the image generator here
    env_file = tmp_path / "demo.env"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "qc_tool.demo",
            "--data-dir",
            str(data),
            "--env-file",
            str(env_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until(
            lambda: env_file.exists() or proc.poll() is not None,
            message="the demo to write its env file (or exit)",
        )
        assert env_file.exists(), "demo did not write its env file"
        env = dict(
            line.removeprefix("export ").split("=", 1) for line in env_file.read_text().splitlines()
        )
        assert set(env) == {"QC_SFTP_HOST", "QC_SFTP_PORT", "QC_SITES_ROOT", "QC_KNOWN_HOSTS"}
        login_file = data / "demo-login.txt"
        assert stat.S_IMODE(login_file.stat().st_mode) == 0o600
        creds = dict(line.split("=", 1) for line in login_file.read_text().splitlines())
        assert creds["QC_DEMO_PASSWORD"] not in env_file.read_text()
        with sftp_session(
            env["QC_SFTP_HOST"],
            int(env["QC_SFTP_PORT"]),
            Path(env["QC_KNOWN_HOSTS"]),
            creds["QC_DEMO_USER"],
            creds["QC_DEMO_PASSWORD"],
        ) as sftp:
            assert sftp.listdir(env["QC_SITES_ROOT"]) == ["SITE-9"]
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert creds["QC_DEMO_PASSWORD"] in output  # shown to the person at the terminal
    assert not env_file.exists()  # a stopped demo leaves no env file pointing at a dead port


def test_sshd_serves_a_real_login_listing_and_read(
    sshd: Callable[[Path], SshdHandle],
    tmp_path: Path,
) -> None:
    files = write_site(tmp_path / "sites")
    server = sshd(tmp_path / "sites")
    rel = "SITE-001/Tower base/IMG_0100.JPG"
    with sftp_session(
        server.host, server.port, server.known_hosts, server.username, server.password
    ) as sftp:
        assert sftp.listdir(server.sites_root) == ["SITE-001"]
        assert sorted(sftp.listdir(f"{server.sites_root}/SITE-001")) == ["Antenna A", "Tower base"]
        with sftp.open(f"{server.sites_root}/{rel}", "rb") as remote:
            assert remote.read() == files[rel]
    assert server.failed_password_count(server.username) == 0


def test_sshd_wrong_password_is_one_failed_attempt(
    sshd: Callable[[Path], SshdHandle],
    tmp_path: Path,
) -> None:
    write_site(tmp_path / "sites")
    server = sshd(tmp_path / "sites")
    with (
        pytest.raises(paramiko.AuthenticationException),
        sftp_session(
            server.host, server.port, server.known_hosts, server.username, "not-the-password"
        ),
    ):
        pass
    # Once sshd has logged the connection's end, a second, late "Failed password" line of it
    # would be there too.
    wait_until(
        lambda: server.refused_logins_ended(server.username) == 1,
        message="sshd to log the end of the refused connection",
    )
    assert server.failed_password_count(server.username) == 1
