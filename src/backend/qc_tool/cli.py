"""qc-tool: the same scan as the web app, from a terminal."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import TextIO
from urllib.parse import unquote, urlsplit

from qc_tool import config
from qc_tool.adapters.cache import SqliteCache
from qc_tool.adapters.local import LocalConnector
from qc_tool.adapters.sftp.connect import SftpEndpoint
from qc_tool.adapters.sftp.connection import SftpConnector
from qc_tool.domain.models import Progress, ScanResult
from qc_tool.errors import BadRequest, QCError
from qc_tool.services.check_report import (
    checks_csv,
    load_profile,
    parse_resolution,
    print_checks,
    result_document,
)
from qc_tool.services.parsing import ProcessParser, workers_setting
from qc_tool.services.ports import Connector, NoCache
from qc_tool.services.site_analysis_service import ScanOptions, scan_site
from qc_tool.services.validation_service import CheckOptions, CheckReport, check_site
from qc_tool.services.workers import MeasuringPool, check_workers_setting


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = config.load()
    logging.basicConfig(
        level=logging.WARNING if not args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("paramiko", "asyncssh"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        if args.command == "cache":
            count = SqliteCache(_cache_dir(args, settings)).clear()
            print(f"cache cleared: {count} results removed")
            return 0
        return _scan(args, settings)
    except QCError as exc:
        print(f"qc-tool: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("qc-tool: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qc-tool", description=__doc__)
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log the scan's progress lines"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    scan = sub.add_parser(
        "scan", help="scan one site (sftp://USER@HOST[:PORT]/PATH/TO/SITE or a folder)"
    )
    scan.add_argument(
        "target",
        help="sftp://USER@HOST[:PORT]/ABS/PATH/SITE, sftp://USER@HOST/~/REL/SITE, or LOCAL_DIR",
    )
    scan.add_argument(
        "--known-hosts",
        type=Path,
        help="known_hosts file (default: QC_KNOWN_HOSTS, then ~/.ssh/known_hosts)",
    )
    scan.add_argument(
        "--json", dest="json_out", help="write the result document to FILE ('-' for stdout)"
    )
    scan.add_argument(
        "--no-cache", action="store_true", help="neither read nor write the result cache"
    )
    scan.add_argument("--cache-dir", type=Path, help="cache folder (default: QC_CACHE_DIR)")
    scan.add_argument(
        "--max-connections", type=int, help="most SSH connections (default: QC_MAX_CONNECTIONS)"
    )
    scan.add_argument(
        "--checks",
        action="store_true",
        help="also check the photos: integrity, blur, exposure, duplicates, position, rules",
    )
    scan.add_argument(
        "--profile",
        type=Path,
        help="capture-rule profile, JSON: max_iso, min_shutter, gimbal_pitch_range, allowed_models",
    )
    scan.add_argument(
        "--whole-files",
        action="store_true",
        help="with --checks: read whole files (full-decode integrity) instead of previews",
    )
    scan.add_argument(
        "--min-resolution", help="with --checks: flag images smaller than WxH (e.g. 4000x3000)"
    )
    scan.add_argument(
        "--csv", dest="csv_out", help="with --checks: write every image and measured value to FILE"
    )
    cache = sub.add_parser("cache", help="manage the result cache")
    cache.add_argument("action", choices=["clear"])
    cache.add_argument("--cache-dir", type=Path, help="cache folder (default: QC_CACHE_DIR)")
    return parser


def _cache_dir(args: argparse.Namespace, settings: dict[str, object]) -> Path:
    return Path(args.cache_dir) if args.cache_dir else config.cache_dir(settings)


def _scan(args: argparse.Namespace, settings: dict[str, object]) -> int:
    connector, site = _target(args, settings)
    cache: SqliteCache | NoCache = (
        NoCache() if args.no_cache else SqliteCache(_cache_dir(args, settings))
    )
    cap = args.max_connections or int(str(settings["QC_MAX_CONNECTIONS"]))
    bar = _ProgressBar(sys.stderr)
    workers = workers_setting(settings.get("QC_PARSE_WORKERS"))
    # Local folders are read from disk in one thread; the parsing pool pays off over SFTP.
    parser = ProcessParser(workers) if workers and args.target.startswith("sftp://") else None
    try:
        result = scan_site(
            connector,
            cache,
            site,
            options=ScanOptions(max_connections=cap),
            on_progress=bar.update,
            parser=parser,
        )
    finally:
        if parser is not None:
            parser.close()
    bar.finish()
    out = sys.stdout if args.json_out != "-" else sys.stderr
    _print_table(result, out)
    report = None
    if args.checks:
        workers = check_workers_setting(settings.get("QC_CHECK_WORKERS"))
        report = _check(args, connector, result, cap, cache, MeasuringPool(workers))
        print_checks(report, out)
    document = result_document(result, report)
    if report is not None and args.csv_out:
        Path(args.csv_out).write_text(checks_csv(result, report), encoding="utf-8")
    if args.json_out:
        text = json.dumps(document, indent=2)
        if args.json_out == "-":
            print(text)
        else:
            Path(args.json_out).write_text(text + "\n", encoding="utf-8")
    return 0


def _check(
    args: argparse.Namespace,
    connector: Connector,
    result: ScanResult,
    cap: int,
    cache: SqliteCache | NoCache,
    measuring: MeasuringPool,
) -> CheckReport:
    profile = load_profile(args.profile) if args.profile else None
    options = CheckOptions(
        profile=profile,
        whole_file=args.whole_files,
        max_connections=cap,
        min_resolution=parse_resolution(args.min_resolution) if args.min_resolution else None,
    )
    try:
        executor, workers = measuring.executor()
        return check_site(
            connector, result, executor, options=options, workers=workers, cache=cache
        )
    finally:
        measuring.close()


def _target(args: argparse.Namespace, settings: dict[str, object]) -> tuple[Connector, str]:
    if not args.target.startswith("sftp://"):
        path = Path(args.target).resolve()
        if not path.is_dir():
            raise BadRequest(f"no such folder: {args.target}")
        return LocalConnector(path.parent), path.name
    url = urlsplit(args.target)
    if not url.username or not url.hostname:
        raise BadRequest(
            "the sftp URL needs a user and a host: sftp://USER@HOST[:PORT]/PATH/TO/SITE"
        )
    remote_path = unquote(url.path)
    if remote_path.startswith("/~/"):
        remote_path = remote_path[3:]  # relative to the login directory, as curl reads sftp URLs
        relative = True
    else:
        relative = False
    parent, _, site = remote_path.rstrip("/").rpartition("/")
    if not site:
        raise BadRequest("the sftp URL must name a site folder: sftp://USER@HOST/PATH/TO/SITE")
    root = parent if parent or relative else "/"
    if relative and not root:
        root = "."
    known = args.known_hosts or settings.get("QC_KNOWN_HOSTS") or Path.home() / ".ssh/known_hosts"
    endpoint = SftpEndpoint(
        url.hostname,
        url.port or 22,
        Path(str(known)),
        connect_timeout=float(str(settings["QC_CONNECT_TIMEOUT"])),
        op_timeout=float(str(settings["QC_OP_TIMEOUT"])),
        max_connections=int(str(settings["QC_MAX_SERVER_CONNECTIONS"])),
        max_handshakes=int(str(settings["QC_MAX_SERVER_HANDSHAKES"])),
        trust_on_first_use=bool(int(str(settings["QC_TRUST_ON_FIRST_USE"]))),
        max_listing=int(str(settings["QC_MAX_LISTING"])),
    )
    password = os.environ.get("QC_SFTP_PASSWORD")
    if password is None:
        password = getpass.getpass(f"Password for {url.username}@{url.hostname}: ")
    return SftpConnector(endpoint, root, unquote(url.username), password), site


class _ProgressBar:
    """A one-line progress bar on stderr (only when it is a terminal, else one line per 10%)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._started = time.perf_counter()
        self._last_decile = -1

    def update(self, p: Progress) -> None:
        if p.total == 0:
            return
        fraction = p.done / p.total
        if self._tty:
            filled = int(30 * fraction)
            rate = p.done / max(time.perf_counter() - self._started, 1e-6)
            self._stream.write(
                f"\r[{'#' * filled}{'.' * (30 - filled)}] {p.done}/{p.total} images, "
                f"{p.gps_points} GPS, {rate:.0f}/s "
            )
            self._stream.flush()
        elif int(fraction * 10) > self._last_decile:
            self._last_decile = int(fraction * 10)
            self._stream.write(f"{p.done}/{p.total} images, {p.gps_points} GPS points\n")

    def finish(self) -> None:
        if self._tty:
            self._stream.write("\n")


def _print_table(result: ScanResult, out: TextIO) -> None:
    width = max([len(f.name) for f in result.folders] + [6])
    print(f"{'folder':<{width}}  {'images':>6}  {'GPS':>6}  {'no GPS':>6}  {'errors':>6}", file=out)
    for f in result.folders:
        print(
            f"{f.name:<{width}}  {f.images:>6}  {f.gps_points:>6}  {f.missing_gps:>6}  {f.errors:>6}",
            file=out,
        )
    s = result.stats
    total = len(result.images)
    print(
        f"{'total':<{width}}  {total:>6}  {result.gps_points:>6}  "
        f"{sum(f.missing_gps for f in result.folders):>6}  {sum(f.errors for f in result.folders):>6}",
        file=out,
    )
    print(
        f"{s.seconds:.2f} s, {s.images_per_s:.1f} images/s, {s.cached} from cache, "
        f"{s.bytes_read / 1e6:.2f} MB read over {s.connections} connection(s)",
        file=out,
    )
    for image in result.images:
        if image.error is not None:
            print(f"  unreadable  {image.path}: {image.error}", file=out)
        elif not image.has_gps:
            print(f"  no GPS      {image.path}: {image.gps_note or 'no position'}", file=out)


if __name__ == "__main__":
    sys.exit(main())
