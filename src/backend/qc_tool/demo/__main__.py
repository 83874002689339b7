"""Run the demo: generate a site, serve it over SFTP on 127.0.0.1, print how to log in.

    python -m qc_tool.demo --data-dir DIR [--port N] [--env-file FILE]

DIR/sites holds the generated site(s) and is the server's chroot, so the sites root clients use
is ``/``. DIR/known_hosts pins the server's key (kept in DIR/ssh_host_ed25519_key, so it is stable
across runs). The demo password is new each run; it is printed and kept in DIR/demo-login.txt
(mode 0600), never in the env file: the app does not need it, the person logging in does.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import shlex
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import asyncssh

from qc_tool.demo.sftp_server import SftpServerHandle, start_sftp_server

DEMO_USER = "demo"
SITES_ROOT = "/"
_GENERATED_MARKER = ".demo-generated"
_HOST_KEY_FILE = "ssh_host_ed25519_key"

log = logging.getLogger("qc_tool.demo")


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m qc_tool.demo", description="Serve the demo site over SFTP on 127.0.0.1."
    )
    parser.add_argument("--data-dir", type=Path, required=True, help="where sites and keys live")
    parser.add_argument("--port", type=int, default=0, help="port (default: any free one)")
    parser.add_argument("--env-file", type=Path, help="write shell export lines for the app here")
    return parser.parse_args(argv)


def _ensure_sites(data_dir: Path) -> Path:
    """Generate the demo site(s) once; a marker tells a finished generation from a broken one."""
    sites = data_dir / "sites"
    marker = data_dir / _GENERATED_MARKER
    if marker.exists():
        return sites
    # Imported here: the generator pulls in numpy and Pillow, which serving alone does not need.
    from qc_tool.demo.sites import generate_demo_site

    sites.mkdir(parents=True, exist_ok=True)
    print(f"Generating the demo site into {sites} (first run only)...", flush=True)
    generate_demo_site(sites)
    marker.write_text("generated\n", encoding="ascii")
    return sites


def _load_host_key(data_dir: Path) -> asyncssh.SSHKey:
    """Keep one host key per data dir, so known_hosts stays valid across restarts."""
    path = data_dir / _HOST_KEY_FILE
    if path.exists():
        return asyncssh.read_private_key(str(path))
    key = asyncssh.generate_private_key("ssh-ed25519", comment="qc-tool demo")
    _write_private(path, key.export_private_key("openssh"))
    return key


def _write_private(path: Path, data: bytes) -> None:
    """Write a file only its owner can read (mode 0600 even when it already existed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)


def _write_env_file(path: Path, server: SftpServerHandle, known_hosts: Path) -> None:
    """Write the export lines atomically, so a script waiting for the file never reads half."""
    values = {
        "QC_SFTP_HOST": server.host,
        "QC_SFTP_PORT": str(server.port),
        "QC_SITES_ROOT": server.sites_root,
        "QC_KNOWN_HOSTS": str(known_hosts.resolve()),
    }
    text = "".join(f"export {name}={shlex.quote(value)}\n" for name, value in values.items())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _wait_for_signal() -> None:
    """Block until SIGTERM or SIGINT."""
    stop = threading.Event()

    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("received signal %d, stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    while not stop.wait(1.0):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the demo site until interrupted."""
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    data_dir: Path = args.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    env_file: Path | None = args.env_file.resolve() if args.env_file else None
    if env_file is not None:
        env_file.unlink(missing_ok=True)  # a stale file would point at a dead port

    sites = _ensure_sites(data_dir)
    password = secrets.token_urlsafe(12)
    server = start_sftp_server(
        sites,
        {DEMO_USER: password},
        port=args.port,
        host_key=_load_host_key(data_dir),
        sites_root=SITES_ROOT,
    )
    try:
        known_hosts = server.write_known_hosts(data_dir / "known_hosts")
        _write_private(
            data_dir / "demo-login.txt",
            f"QC_DEMO_USER={DEMO_USER}\nQC_DEMO_PASSWORD={password}\n".encode(),
        )
        if env_file is not None:
            _write_env_file(env_file, server, known_hosts)
        print(
            f"Demo SFTP server listening on {server.host}:{server.port}\n"
            f"  sites root:  {server.sites_root}  (serving {sites})\n"
            f"  known_hosts: {known_hosts}\n"
            f"  username:    {DEMO_USER}\n"
            f"  password:    {password}\n"
            "Press Ctrl-C to stop.",
            flush=True,
        )
        _wait_for_signal()
    finally:
        server.stop()
        if env_file is not None:
            env_file.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
