"""What a second look at an unchanged site costs: the web app's rescan and a warm CLI run.

    .venv/bin/python -m bench.rescan [--data DIR] [--small] [--profile wan|lan] [--repeat 3]

Per profile, through the link emulator and the same server as ``bench.run``: cold scans of
the site (each in a fresh child, on an empty cache: the GPS pass, which must not get slower),
then warm scans on a kept connection (the web app's rescan: the login's connection opened
before the clock, no login inside it), then a cold ``qc-tool scan`` from the shell that fills
the CLI's cache and warm ``qc-tool scan`` runs of the unchanged site (bench/cli_run.py: a fresh
process each, wall time from the shell). Each row: best, median and every run. A few minutes
less than ``bench.run``, which also times the old approach; the figures are the same kind.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import cli_run
from bench.data import ensure_dataset, warm_page_cache
from bench.linkemu import PROFILES
from bench.run import OUT, Profile, _choose_server, _load
from bench.servers import start_server


def _row(label: str, seconds: list[float], extra: str = "") -> str:
    runs = ", ".join(f"{s:.3f}" for s in seconds)
    best, median = min(seconds), statistics.median(seconds)
    return f"  {label:38s} best {best:.3f} s, median {median:.3f} s (runs {runs}){extra}"


def measure(profile: Profile, repeat: int) -> list[str]:
    """The rows of one profile: cold scans, kept-connection rescans, warm CLI runs."""
    tool = {"kind": "tool", "site": profile.data.site, "max_connections": 4, "pipelined": True}
    images = len(profile.data.truth.images)
    cold: list[dict[str, Any]] = []
    for n in range(repeat):
        cache = profile.workdir / f"rescan-cache-{profile.name}-{n}"
        cold.append(profile.measure(f"cold {n + 1}/{repeat}", {**tool, "cache_dir": str(cache)}))
    cache = profile.workdir / f"rescan-cache-{profile.name}-0"
    kept = [
        profile.measure(f"kept {n + 1}/{repeat}", {**tool, "cache_dir": str(cache), "kept": True})
        for n in range(repeat)
    ]
    cli_cache = profile.workdir / f"rescan-cli-{profile.name}"
    first = cli_run.run_cli(
        profile.login, profile.data.site, cli_cache, checks=False, json_out=None
    )
    warm_cli = []
    for n in range(repeat):
        load = _load()
        record = cli_run.run_cli(
            profile.login, profile.data.site, cli_cache, checks=False, json_out=None
        )
        print(f"  [{profile.name}] warm qc-tool scan {n + 1}/{repeat} {record['wall_s']:.2f} s")
        record["load_before"] = load
        warm_cli.append(record)
    cold_s = [r["result"]["wall_s"] for r in cold]
    logins = sorted({r["result"]["logins"] for r in kept})
    return [
        f"{profile.name}: {images:,} images",
        _row(
            "cold scan (GPS pass)", cold_s, f"; {images / statistics.median(cold_s):,.0f} images/s"
        ),
        _row(
            "rescan on the kept connection",
            [r["result"]["wall_s"] for r in kept],
            f"; logins {logins}",
        ),
        _row("qc-tool scan, cache filled (shell)", [r["wall_s"] for r in warm_cli]),
        f"  (the CLI run that filled its cache: {first['wall_s']:.2f} s)",
        "  where the last rescan's time went: "
        + ", ".join(_event(e) for e in kept[-1]["result"]["events"]),
    ]


def _event(event: dict[str, Any]) -> str:
    return f"{event['name']} {event['start']:.3f}-{event['end']:.3f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.rescan", description=__doc__)
    parser.add_argument("--data", type=Path, default=OUT / "data")
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="wan")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--server", choices=["sshd", "builtin", "auto"], default="auto")
    args = parser.parse_args(argv)
    data = ensure_dataset(args.data, small=args.small, per_folder=8)
    kind = _choose_server(args.server, data)
    OUT.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="rescan-", dir=OUT))
    server = start_server(kind, data.sites_root, workdir)
    print(f"server: {server.kind} ({server.version}); load {_load()}")
    warm_page_cache(data)
    try:
        profile = Profile(args.profile, server, data, workdir)
        try:
            rows = measure(profile, args.repeat)
        finally:
            profile.close()
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print("\n".join(rows))
    print(f"load after: {_load()}")


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"finished in {time.perf_counter() - started:.0f} s")
