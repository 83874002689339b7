"""The benchmark: the old approach against the tool, through an emulated site link, in one run.

    python -m bench.run [--profile wan|lan|both] [--small] [--sample N] [--data DIR]
                        [--server sshd|builtin|auto] [--repeat N] [--json OUT]
                        [--checks [--no-scan] [--check-workers N]] [--no-framing]
                        [--no-preview-share F]

For each link profile a link emulator (bench/linkemu.py) is put in front of one SFTP server,
and every scan goes through it in a fresh child process (bench/child.py) so its peak RSS is
its own. Everything runs on 127.0.0.1, every wait has a timeout, and the run stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import check_report, cli_run, report
from bench.data import Dataset, ensure_dataset, warm_page_cache
from bench.linkemu import PROFILES, LinkHandle, start_link
from bench.servers import Server, ServerKind, sshd_unavailable, start_server

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"
CHILD_TIMEOUT_S = 1800.0  # an old-approach scan of the sample on a slow machine stays far below
THRESHOLD_SIZES = (5, 10, 20, 50)
THRESHOLD_VARIANTS = ((1, True), (1, False), (2, True), (4, True))  # (connections, pipelined)
SITE_WIDTHS = (1, 4)  # the whole site's reads on 1 and on 4 already-open connections
THRESHOLD_FOLDER = "Tower-Scans"  # the only folder with >= 50 images to take the first n of


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    p.add_argument("--profile", choices=["wan", "lan", "both"], default="both")
    p.add_argument("--small", action="store_true", help="small bodies (quick check, ~1 minute)")
    p.add_argument("--sample", type=int, default=8, help="old approach: images per folder")
    p.add_argument("--data", type=Path, default=OUT / "data", help="where the site is generated")
    p.add_argument("--server", choices=["sshd", "builtin", "auto"], default="auto")
    p.add_argument("--repeat", type=int, default=3, help="tool cold+warm scans per profile")
    p.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    p.add_argument(
        "--checks",
        action="store_true",
        help="also measure the photo-check pass (check_site) and its accuracy",
    )
    p.add_argument(
        "--no-scan",
        action="store_true",
        help="with --checks or --no-framing: skip the scan rows, measure only those",
    )
    p.add_argument(
        "--no-framing",
        action="store_true",
        help=(
            "also run the cold scan without the SFTP wire's framing (paramiko sends each "
            "request as its own SSH packet) and compare packets and client CPU per image"
        ),
    )
    p.add_argument(
        "--check-workers",
        type=int,
        default=os.cpu_count() or 2,
        help="measuring processes of the check pass (default: cores, as the CLI)",
    )
    p.add_argument(
        "--no-preview-share",
        type=float,
        default=0.0,
        help=(
            "share of the photos written without an MPF preview (own scene and EXIF "
            "thumbnail), generated into its own data directory; the issue's site: 0.3"
        ),
    )
    p.add_argument(
        "--cli",
        action="store_true",
        help=(
            "also the whole QC from the shell (bench/cli_run.py): a cold `qc-tool scan "
            "--checks` and warm `qc-tool scan` runs; wall time and the process tree's peak RSS"
        ),
    )
    args = p.parse_args(argv)
    if not 0.0 <= args.no_preview_share <= 1.0:
        p.error("--no-preview-share must be between 0 and 1")
    if args.sample < 1 or args.repeat < 1 or args.check_workers < 1:
        p.error("--sample, --repeat and --check-workers must be >= 1")
    if args.no_scan and not (args.checks or args.no_framing or args.cli):
        p.error("--no-scan needs --checks, --no-framing or --cli")
    return args


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import cryptography
    import paramiko

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    commit = (
        subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        or "unknown"
    )
    dirty = [
        line[3:]
        for line in subprocess.run(
            ["git", "status", "--porcelain", "src/backend"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.splitlines()
    ]
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "code": commit + (f" + uncommitted: {', '.join(dirty[:5])}" if dirty else ""),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "paramiko": paramiko.__version__,
        "cryptography": cryptography.__version__,
    }


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run_child(label: str, job: dict[str, Any]) -> dict[str, Any]:
    """Run one job in a fresh ``python -m bench.child``; return its record."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench.child"],
        cwd=REPO,
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{label} failed:\n{proc.stderr[-4000:]}")
    record: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    record["label"] = label
    return record


class Profile:
    """One link profile's measurements: the proxy, the login details, each child's record."""

    def __init__(self, name: str, server: Server, data: Dataset, workdir: Path) -> None:
        self.name = name
        self.server = server
        self.data = data
        self.workdir = workdir
        shape = PROFILES[name]
        self.link: LinkHandle = start_link(
            server.host,
            server.port,
            one_way_delay_s=shape.one_way_delay_s,
            bandwidth_bps=shape.bandwidth_bps,
        )
        known_hosts = workdir / f"known_hosts.{name}"
        # The tool looks the key up under the address it dials: the proxy's.
        known_hosts.write_text(server.known_hosts_line(self.link.host, self.link.port) + "\n")
        self.login = {
            "host": self.link.host,
            "port": self.link.port,
            "known_hosts": str(known_hosts),
            "username": server.username,
            "password": server.password,
            "sites_root": server.sites_root,
        }

    def measure(self, label: str, job: dict[str, Any]) -> dict[str, Any]:
        """Run one job in a child process; add what the parent saw (link, server, load)."""
        print(f"  [{self.name}] {label} ...", end="", flush=True)
        load_before = _load()
        down, up, conns = self.link.bytes_down, self.link.bytes_up, self.link.connections
        server_cpu = self.server.cpu_seconds()
        own = resource.getrusage(resource.RUSAGE_SELF)
        record = run_child(label, {**self.login, **job})
        self.server.settle()
        after = resource.getrusage(resource.RUSAGE_SELF)
        record.update(
            load_before=load_before,
            load_after=_load(),
            wire_down=self.link.bytes_down - down,
            wire_up=self.link.bytes_up - up,
            tcp_connections=self.link.connections - conns,
            server_cpu_s=self.server.cpu_seconds() - server_cpu,
            link_cpu_s=(after.ru_utime + after.ru_stime) - (own.ru_utime + own.ru_stime),
        )
        print(f" {record['child_wall_s']:.2f} s", flush=True)
        return record

    def run(self, repeat: int) -> dict[str, Any]:
        data = self.data
        tool = {"kind": "tool", "site": data.site, "max_connections": 4, "pipelined": True}
        cold, warm, kept = [], [], []
        for n in range(repeat):
            cache = self.workdir / f"cache-{self.name}-{n}"  # new directory: an empty cache
            cold.append(
                self.measure(f"tool cold {n + 1}/{repeat}", {**tool, "cache_dir": str(cache)})
            )
            warm.append(
                self.measure(f"tool warm {n + 1}/{repeat}", {**tool, "cache_dir": str(cache)})
            )
            kept.append(
                self.measure(
                    f"tool warm, kept connection {n + 1}/{repeat}",
                    {**tool, "cache_dir": str(cache), "kept": True},
                )
            )
        # A variant, not a goal row: the same cold scan on one connection (no pool logins).
        single = [
            self.measure(
                f"tool cold 1 conn {n + 1}/{repeat}",
                {
                    **tool,
                    "max_connections": 1,
                    "cache_dir": str(self.workdir / f"c1-{self.name}-{n}"),
                },
            )
            for n in range(repeat)
        ]
        reference = self.measure(
            "reference (one at a time, sample)",
            {**tool, "site": data.sample_site, "cache_dir": None, "pipelined": False},
        )
        threshold = self.measure(
            "small-folder threshold",
            {
                "kind": "threshold",
                "site": data.site,
                "folder": THRESHOLD_FOLDER,
                "sizes": list(THRESHOLD_SIZES),
                "variants": [list(v) for v in THRESHOLD_VARIANTS],
                "site_widths": list(SITE_WIDTHS),
                "repeats": 3,
            },
        )
        root = self.server.sites_root.rstrip("/")
        folders = {
            f: [f"{root}/{data.site}/{p}" for p in paths] for f, paths in data.sample.items()
        }
        old_seq = self.measure(
            "old sequential", {"kind": "old", "folders": folders, "connections": 1}
        )
        old_4 = self.measure("old 4 conn", {"kind": "old", "folders": folders, "connections": 4})
        return {
            "cold": cold,
            "warm": warm,
            "kept": kept,
            "single": single,
            "reference": reference,
            "threshold": threshold,
            "old_seq": old_seq,
            "old_4": old_4,
        }

    def run_framing(self, repeat: int) -> dict[str, list[dict[str, Any]]]:
        """Cold scans with and without the wire's framing, alternated, counting packets."""
        tool = {
            "kind": "tool",
            "site": self.data.site,
            "max_connections": 4,
            "pipelined": True,
            "count_packets": True,
        }
        runs: dict[str, list[dict[str, Any]]] = {"framed": [], "unframed": []}
        for n in range(repeat):
            for way, framed in (("framed", True), ("unframed", False)):
                cache = self.workdir / f"framing-{self.name}-{way}-{n}"  # new: an empty cache
                label = f"cold {way} {n + 1}/{repeat}"
                job = {**tool, "framed": framed, "cache_dir": str(cache)}
                runs[way].append(self.measure(label, job))
        return runs

    def run_checks(self, repeat: int, workers: int) -> list[dict[str, Any]]:
        """The check pass over the whole site, ``repeat`` times, each in a fresh child."""
        job = {
            "kind": "checks",
            "site": self.data.site,
            "root": str(self.data.sites_root),
            "max_connections": 4,
            "workers": workers,
        }
        return [self.measure(f"check pass {n + 1}/{repeat}", job) for n in range(repeat)]

    def run_cli(self, repeat: int) -> dict[str, list[dict[str, Any]]]:
        """The whole QC from the shell: cold with every check, then warm without (cli_run.py)."""
        cold, warm = [], []
        for n in range(repeat):
            cache = self.workdir / f"cli-cache-{self.name}-{n}"
            out = self.workdir / f"cli-{self.name}-{n}.json"
            for label, runs, checks in (("cold --checks", cold, True), ("warm", warm, False)):
                print(f"  [{self.name}] qc-tool scan {label} {n + 1}/{repeat} ...", end="")
                load = _load()
                record = cli_run.run_cli(
                    self.login,
                    self.data.site,
                    cache,
                    checks=checks,
                    json_out=out if checks else None,
                )
                record.update(label=f"{label} {n + 1}/{repeat}", load_before=load)
                print(
                    f" {record['wall_s']:.2f} s, tree peak {record['peak_tree_pss_mb']:.0f} MB PSS "
                    f"({record['peak_tree_mb']:.0f} MB summed RSS)"
                )
                runs.append(record)
        return {"cold": cold, "warm": warm}

    def close(self) -> None:
        self.link.stop()


def _choose_server(wanted: str, data: Dataset) -> ServerKind:
    reason = sshd_unavailable(data.sites_root)
    if wanted == "sshd" and reason:
        raise SystemExit(f"--server sshd: {reason}")
    if wanted == "auto" and reason:
        print(f"OpenSSH's sshd is not usable ({reason}); using the built-in server")
        return "builtin"
    return "builtin" if wanted == "builtin" else "sshd"


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    info = machine()
    print(f"qc-tool benchmark, {info['date']}")
    print(
        f"machine: {info['cpu']}, {info['cores']} cores, {info['ram_gib']} GiB RAM, "
        f"Linux {info['kernel']}; Python {info['python']}, paramiko {info['paramiko']}, "
        f"cryptography {info['cryptography']}; load {_load()}"
    )
    print(f"code: commit {info['code']}")
    data = ensure_dataset(
        args.data,
        small=args.small,
        per_folder=args.sample,
        no_preview_share=args.no_preview_share,
    )
    how = "reused" if data.generated_s is None else f"generated in {data.generated_s:.0f} s"
    print(
        f"data: {data.label}-size site {data.site}, {len(data.truth.images):,} images, "
        f"{data.truth.total_bytes / 1e9:.2f} GB ({data.disk_bytes / 1e9:.2f} GB on disk), {how}, "
        f"at {data.sites_root}; sample {data.sample_count} images"
    )
    kind = _choose_server(args.server, data)
    OUT.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="run-", dir=OUT))
    server = start_server(kind, data.sites_root, workdir)
    print(
        f"server: {server.kind} ({server.version}) on 127.0.0.1:{server.port}, "
        f"sites root {server.sites_root}"
    )
    warmed = warm_page_cache(data, checks=args.checks)
    print(f"page cache warmed in {warmed:.1f} s (the server's disk is not measured)")
    local: dict[str, Any] | None = None
    if not args.no_scan:
        local = run_child(
            "local floor",
            {
                "kind": "local",
                "root": str(data.sites_root),
                "site": data.site,
                "max_connections": 4,
            },
        )
        print(report.render_local(local))
    names = ["wan", "lan"] if args.profile == "both" else [args.profile]
    results: dict[str, Any] = {}
    checks: dict[str, list[dict[str, Any]]] = {}
    framing: dict[str, dict[str, list[dict[str, Any]]]] = {}
    cli: dict[str, dict[str, list[dict[str, Any]]]] = {}
    try:
        for name in names:
            profile = Profile(name, server, data, workdir)
            try:
                if not args.no_scan:
                    results[name] = profile.run(args.repeat)
                if args.no_framing:
                    framing[name] = profile.run_framing(args.repeat)
                if args.checks:
                    checks[name] = profile.run_checks(args.repeat, args.check_workers)
                if args.cli:
                    cli[name] = profile.run_cli(args.repeat)
            finally:
                profile.close()
            if name in results:
                print(report.render_profile(name, results[name], data, server, args.repeat))
            if name in framing:
                print(report.render_framing(name, framing[name], data))
            if name in checks:
                print(check_report.render_checks(name, checks[name], data.truth, PROFILES[name]))
            if name in cli:
                print(check_report.render_cli(name, cli[name]))
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    verdicts = report.goal_verdicts(results, data)
    for name, runs in checks.items():
        verdicts += check_report.check_verdicts(name, runs, data.truth, PROFILES[name])
    for name, cli_runs in cli.items():
        verdicts += check_report.cli_verdicts(name, cli_runs)
    results_json = {"local_floor": local, **results} if local is not None else dict(results)
    print(report.render_summary(verdicts))
    if args.json:
        document = report.to_json(info, data, server, results_json, verdicts)
        document["checks"] = {
            name: [check_report.slim(m) for m in runs] for name, runs in checks.items()
        }
        document["cli"] = cli
        document["framing"] = {n: report.slim_framing(f) for n, f in framing.items()}
        args.json.write_text(json.dumps(document, indent=1))
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    started = time.perf_counter()
    code = main()
    print(f"benchmark finished in {time.perf_counter() - started:.0f} s")
    sys.exit(code)
