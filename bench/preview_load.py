"""Many previews of one large photo at once, over OpenSSH's sshd: memory, time, who was served.

Each of ``--requests`` threads asks the one PreviewService of this process for a preview of
the same photo, as a different user on a connection of its own (as many logins' kept
connections would), all released together. The photo is a JPEG with no embedded preview, so
a preview must read and decode the whole file. Reported: this process's resident memory
before and its peak (VmHWM), the wall time until every request was answered, and how many
were served, turned away busy (503) or refused as too large.

    sudo .venv/bin/python -m bench.preview_load --megabytes 57
    sudo .venv/bin/python -m bench.preview_load --megabytes 30 --unbounded   # as before issue 10

``--unbounded`` takes the bounds away (no size cap, a slot per request): the old behaviour.
Needs root, /usr/sbin/sshd and the test account of .ci/setup_sshd_user.sh.
"""

from __future__ import annotations

import argparse
import io
import shutil
import threading
import time
import uuid
from pathlib import Path

import numpy as np
from PIL import Image
from qc_tool.adapters.sftp.connect import SftpEndpoint
from qc_tool.adapters.sftp.connection import SftpConnection, SftpConnector
from qc_tool.demo import openssh
from qc_tool.errors import PreviewsBusy, QCError
from qc_tool.services.previews import PreviewService

DATA_PARENT = Path("/srv/qc-sftp")
SITE, FOLDER = "BIG", "Tower"


def large_jpeg(megabytes: float) -> bytes:
    """Noise at quality 95 (~1.2 bytes per pixel) sized to about ``megabytes`` MB."""
    pixels = int(megabytes * 1e6 / 1.2)
    width = int((pixels * 4 / 3) ** 0.5)
    height = pixels // width
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(noise).save(out, "JPEG", quality=95)
    return out.getvalue()


def vm(field: str) -> float:
    """A VmRSS/VmHWM line of /proc/self/status, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=57.0)
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--unbounded", action="store_true", help="no size cap, no slot cap")
    args = parser.parse_args()
    creds = openssh.test_user()
    assert creds is not None and openssh.unavailable_reason() is None, openssh.unavailable_reason()
    username, password = creds

    data = DATA_PARENT / f"preview-load-{uuid.uuid4().hex[:8]}"
    photo = data / SITE / FOLDER / "DJI_0001.JPG"
    photo.parent.mkdir(parents=True)
    photo.write_bytes(large_jpeg(args.megabytes))
    for path in [data, *data.rglob("*")]:
        shutil.chown(path, user=username)
    work = data.with_name(data.name + "-sshd")
    server = openssh.start_openssh(data, work, username=username)
    conns: list[SftpConnection] = []
    try:
        endpoint = SftpEndpoint(
            server.host, server.port, server.known_hosts, max_connections=args.requests
        )
        connector = SftpConnector(endpoint, str(data), username, password)
        for _ in range(args.requests):  # one after another: sshd's MaxStartups stays clear
            conns.append(connector.connect())
        file = conns[0].list_images(SITE, [FOLDER])[FOLDER].photos[0]
        conns[0].release()  # its request thread takes it over
        service = (
            PreviewService(decodes=args.requests, max_file_bytes=1 << 40)
            if args.unbounded
            else PreviewService()
        )
        outcomes: list[str] = []
        start = threading.Barrier(args.requests + 1)

        def ask(n: int) -> None:
            start.wait()
            try:
                service.preview(conns[n], connector.server_id, SITE, file, 800, user=f"user{n:02d}")
                outcomes.append("served")
            except PreviewsBusy:
                outcomes.append("busy")
            except QCError as exc:
                outcomes.append(f"refused: {exc.message[:60]}")

        threads = [threading.Thread(target=ask, args=(n,)) for n in range(args.requests)]
        for t in threads:
            t.start()
        # Start the peak afresh: making the test photo took memory of its own.
        Path("/proc/self/clear_refs").write_text("5")
        before = vm("VmRSS")
        start.wait()
        began = time.perf_counter()
        for t in threads:
            t.join()
        wall = time.perf_counter() - began
        print(
            f"{args.requests} previews of a {file.size / 2**20:.1f} MiB JPEG (no embedded preview)"
            f"{', unbounded' if args.unbounded else ''}: RSS {before:.0f} MiB before, peak"
            f" {vm('VmHWM'):.0f} MiB; all answered in {wall:.2f} s;"
            f" most reading at once {service.slots.peak}"
        )
        for outcome in sorted(set(outcomes)):
            print(f"  {outcomes.count(outcome):3d} {outcome}")
    finally:
        for conn in conns:
            conn.close()
        server.stop()
        shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
