"""What listing a site costs: flat folders against a copied drone card's nested ones, over the link.

    .venv/bin/python -m bench.listing [--server sshd|builtin] [--profile wan|lan] [--repeat 5]

Three sites of 12 folders and 1,380 photos (empty files: only the listing is measured): "flat"
(the photos in the folders), "card" (each folder a card copied as it is:
DCIM/100MEDIA with 100 photos, 2 videos and their 2 .SRT logs, DCIM/101MEDIA with 15) and
"deep" (the photos 8 levels down, the most the scan searches). Per site, the listing a scan
does before reading (the site's folders, then every folder's tree, level by level with every
directory of a level in flight) is timed on one open connection behind the link emulator;
the median of ``--repeat`` runs is printed with it in round trips of the link.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from qc_tool.adapters.sftp.connect import SftpEndpoint
from qc_tool.adapters.sftp.connection import SftpConnector

from bench.linkemu import PROFILES, start_link
from bench.servers import ServerKind, sshd_unavailable, start_server

FOLDERS = 12
PHOTOS = 115  # per folder: 1,380 in all, the seed site's size
LAYOUTS = {
    "flat": {"": PHOTOS},
    "card": {"DCIM/100MEDIA": 100, "DCIM/101MEDIA": PHOTOS - 100},
    "deep": {"a/b/c/d/e/f/g/h": PHOTOS},
}


def make_sites(root: Path) -> None:
    for site, layout in LAYOUTS.items():
        for f in range(FOLDERS):
            for sub, count in layout.items():
                where = root / site / f"Folder-{f:02d}" / sub
                where.mkdir(parents=True, exist_ok=True)
                for i in range(count):
                    (where / f"DJI_{i:04d}.JPG").touch()
                if site == "card" and sub.endswith("100MEDIA"):
                    for name in ("DJI_0900.MP4", "DJI_0900.SRT", "DJI_0901.MP4", "DJI_0901.SRT"):
                        (where / name).touch()
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.listing", description=__doc__)
    parser.add_argument("--server", choices=["sshd", "builtin"], default="sshd")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="wan")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="qc-bench-listing-") as tmp:
        root = Path(tmp) / "sites"
        make_sites(root)
        Path(tmp).chmod(0o755)
        kind: ServerKind = args.server
        if kind == "sshd" and (reason := sshd_unavailable(root)) is not None:
            raise SystemExit(f"sshd cannot be used: {reason}")
        server = start_server(kind, root, Path(tmp) / "work")
        shape = PROFILES[args.profile]
        link = start_link(
            server.host,
            server.port,
            one_way_delay_s=shape.one_way_delay_s,
            bandwidth_bps=shape.bandwidth_bps,
        )
        try:
            known_hosts = Path(tmp) / "known_hosts"
            known_hosts.write_text(server.known_hosts_line(link.host, link.port) + "\n")
            endpoint = SftpEndpoint(link.host, link.port, known_hosts, 10, 30)
            sites_root = server.sites_root
            connector = SftpConnector(endpoint, sites_root, server.username, server.password)
            rtt = 2 * shape.one_way_delay_s
            print(
                f"{server.kind} {server.version}, link {args.profile} (round trip {rtt * 1e3:.0f} ms)"
            )
            for site in LAYOUTS:
                conn = connector.connect()
                try:
                    runs = []
                    for _ in range(args.repeat):
                        start = time.perf_counter()
                        folders = conn.list_folders(site)
                        found = conn.list_images(site, folders)
                        runs.append(time.perf_counter() - start)
                finally:
                    conn.close()
                photos = sum(len(f.photos) for f in found.values())
                dirs = sum(f.directories for f in found.values())
                others = sum(f.other_files for f in found.values())
                seconds = statistics.median(runs)
                print(
                    f"  {site:5s} {photos:5d} photos, {others:3d} other files, {dirs:3d} directories "
                    f"listed: {seconds:.3f} s ({seconds / rtt:.1f} round trips; "
                    f"runs {min(runs):.3f}-{max(runs):.3f} s)"
                )
        finally:
            link.stop()
            server.stop()


if __name__ == "__main__":
    main()
