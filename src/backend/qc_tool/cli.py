"""qc-tool: the same scan as the web app, from a terminal."""

from __future__ import annotations

import argparse
import getpass
import importlib
import json
import logging
import os
import socket
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import unquote, urlsplit

from qc_tool import config
from qc_tool.domain.paths import IMAGE_SUFFIXES_TEXT, display_text
from qc_tool.errors import BadRequest, QCError
from qc_tool.heap import share_heaps

if TYPE_CHECKING:
    # Imported where used: a warm scan's start-up is the login's round trips, and the tool's
    # modules import while those are waited for (_LoginAhead; docs/performance.md: start-up).
    import paramiko

    from qc_tool.adapters.cache import UserCache
    from qc_tool.adapters.sftp.connect import SftpEndpoint
    from qc_tool.adapters.sftp.connection import SftpConnector
    from qc_tool.config import Settings
    from qc_tool.domain.checks.rules import CaptureProfile
    from qc_tool.domain.models import Progress, ScanResult
    from qc_tool.domain.structure import StructureProfile
    from qc_tool.services.checks.options import CheckOptions
    from qc_tool.services.checks.run import CheckReport
    from qc_tool.services.ports import Connector, NoCache, SiteConnection
    from qc_tool.services.workers import MeasuringPool

# What a run needs only after its scan (the result document, the checks), and which pulls in
# numpy and Pillow: imported by a thread while the login and the scan wait on the network, so
# a warm scan does not pay for the imports in series (docs/performance.md: start-up).
AFTER_THE_SCAN = ("qc_tool.services.checks.result",)
WITH_CHECKS = ("qc_tool.services.checks.run",)

EXIT_CODES = """exit codes:
  0  pass: every photo judged good (and the site profile met, when one is set)
  1  re-fly: a photo is invalid, or the site lacks what its profile asks for
  2  the tool could not do its job: usage, URL, login, host key, server, output path,
     or no photos at the path
  3  incomplete: nothing calls for a re-fly, but photos were not judged (no --checks,
     or the checks did not finish)
"""

EXIT_PASS, EXIT_REFLY, EXIT_FAILED, EXIT_INCOMPLETE = 0, 1, 2, 3
_DECISION_EXIT = {"pass": EXIT_PASS, "refly": EXIT_REFLY, "incomplete": EXIT_INCOMPLETE}


def main(argv: list[str] | None = None) -> int:
    share_heaps()  # before any thread starts (heap.py)
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
            from qc_tool.adapters.cache import SqliteCache

            count = SqliteCache(args.cache_dir or settings.cache_folder()).clear()
            print(f"cache cleared: {count} results removed")
            return 0
        return _scan(args, settings)
    except QCError as exc:
        print(f"qc-tool: {display_text(exc.message)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("qc-tool: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qc-tool",
        description="Drone photo QC of one site, as the web app does it, from a terminal.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log the scan's progress lines"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    scan = sub.add_parser(
        "scan",
        help="scan one site (sftp://USER@HOST[:PORT]/PATH/TO/SITE or a folder)",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
        "--max-connections",
        type=_positive,
        help="most SSH connections (default: QC_MAX_CONNECTIONS)",
    )
    scan.add_argument(
        "--checks",
        action="store_true",
        help="also check the photos: integrity, blur, exposure, duplicates, position, rules",
    )
    scan.add_argument(
        "--profile",
        type=Path,
        help="capture-rule profile, JSON: max_iso, min_shutter, gimbal_pitch_range, "
        "allowed_models, require_rtk_fix, max_rtk_std_m",
    )
    scan.add_argument(
        "--site-profile",
        type=Path,
        help="site profile, JSON: expected folders and minimum photos, and the coverage "
        "settings (tower, orbits, sectors, max_orbit_gap_deg, max_aim_off_deg) "
        "(default: QC_SITE_PROFILE)",
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
        "--csv",
        dest="csv_out",
        help="write every image, its verdict and (with --checks) its measured values to FILE",
    )
    cache = sub.add_parser("cache", help="manage the result cache")
    cache.add_argument("action", choices=["clear"])
    cache.add_argument("--cache-dir", type=Path, help="cache folder (default: QC_CACHE_DIR)")
    return parser


def _scan(args: argparse.Namespace, settings: Settings) -> int:
    # Everything the user typed is checked before the first byte is read.
    if not args.checks:
        needless = [o for o, v in _CHECK_ONLY if getattr(args, v)]
        if needless:
            one = len(needless) == 1
            what = "an option of the photo checks" if one else "options of the photo checks"
            raise BadRequest(f"{', '.join(needless)} need{'s' if one else ''} --checks ({what})")
    options = _check_options(args) if args.checks else None
    profile_path = args.site_profile or settings.site_profile
    site_profile = None
    if profile_path:
        from qc_tool.services.scan.overview import load_site_profile

        site_profile = load_site_profile(profile_path)
    for path in (args.json_out, args.csv_out):
        if path and path != "-":
            _check_writable(Path(path))
    connector, site, user = _target(args, settings)
    try:
        return _scan_target(args, settings, connector, site, user, options, site_profile)
    finally:
        if isinstance(connector, _LoginAhead):
            connector.close_unused()


def _scan_target(
    args: argparse.Namespace,
    settings: Settings,
    connector: Connector,
    site: str,
    user: str,
    options: CheckOptions | None,
    site_profile: StructureProfile | None,
) -> int:
    """The scan (and checks) of a target whose arguments were all checked: the login runs."""
    if isinstance(connector, _LoginAhead):
        connector.wait_until_connecting()  # its imports first: the rest imports meanwhile
    _import_meanwhile(AFTER_THE_SCAN + (WITH_CHECKS if options else ()))
    from qc_tool.adapters.cache import SqliteCache
    from qc_tool.bootstrap import bootstrap
    from qc_tool.services.checks.options import MB, CheckOptions
    from qc_tool.services.ports import NoCache
    from qc_tool.services.scan.parsing import LazyParser, workers_setting

    workers = workers_setting(settings.parse_workers)
    # Local folders are read from disk in one thread; the parsing pool pays off over SFTP.
    sftp = args.target.startswith("sftp://")
    parts = bootstrap(
        settings,
        cache=None if args.no_cache else SqliteCache(args.cache_dir or settings.cache_folder()),
        # Started by the first header to parse: a warm scan, all from the cache, starts none.
        parser=LazyParser(workers) if workers and sftp else None,
        check_options=options or CheckOptions(),  # the command line's, not QC_CHECK_PROFILE
        site_profile=site_profile,
    )
    # The cache holds what each login read (adapters/cache.py): this run's rows are the SFTP
    # user's, or for a local folder the account running the tool.
    cache: UserCache | NoCache = parts.cache.for_user(user) if parts.cache else NoCache()
    cap = args.max_connections or settings.max_connections
    bar = _ProgressBar(sys.stderr)
    try:
        result = parts.scan(connector, cache, site, max_connections=cap, on_progress=bar.update)
    finally:
        if parts.parser is not None:
            parts.parser.close()
    bar.finish()
    if not result.images:
        raise BadRequest(_no_photos(args.target, result))
    from qc_tool.services.checks.result import print_check_stats, result_document

    out = sys.stdout if args.json_out != "-" else sys.stderr
    _print_table(result, out)
    report = None
    if options is not None:
        options = replace(options, memory_budget=settings.check_memory_mb * MB)
        report = _check(options, connector, result, cap, cache, parts.measuring)
        print_check_stats(report, out)
    structure = None
    if site_profile is not None:
        from qc_tool.services.scan.overview import site_structure

        structure = site_structure(site_profile, result)
    document = result_document(result, report, structure)
    verdict = document["verdict"]
    _print_verdict(verdict, document["images"], out)
    if args.csv_out:
        from qc_tool.services.exports import images_csv

        _write(args.csv_out, images_csv(document))
    if args.json_out:
        _write(args.json_out, json.dumps(document, indent=2) + "\n")
    return _DECISION_EXIT[verdict["decision"]]


_CHECK_ONLY = (
    ("--profile", "profile"),
    ("--min-resolution", "min_resolution"),
    ("--whole-files", "whole_files"),
)


def _check_options(args: argparse.Namespace) -> CheckOptions:
    from qc_tool.services.checks.options import CheckOptions, load_profile, parse_resolution

    profile: CaptureProfile | None = load_profile(args.profile) if args.profile else None
    resolution = parse_resolution(args.min_resolution) if args.min_resolution else None
    return CheckOptions(profile=profile, whole_file=args.whole_files, min_resolution=resolution)


def _check_writable(path: Path) -> None:
    """Refuse an output path that cannot be written, before the scan rather than after it."""
    if path.is_dir():
        raise BadRequest(f"cannot write {path}: it is a folder")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise BadRequest(f"cannot write {path}: no folder {folder}")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise BadRequest(f"cannot write {path}: permission denied")


def _write(path: str, text: str) -> None:
    if path == "-":
        sys.stdout.write(text)
        return
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise BadRequest(f"cannot write {path}: {exc.strerror or exc}") from exc


def _no_photos(target: str, result: ScanResult) -> str:
    """Why nothing was judged: the folders found, and the other files they hold."""
    if result.folders:
        others = result.other_files
        held = f"only {others} other file{'s' if others != 1 else ''}" if others else "none"
        n = len(result.folders)
        return (
            f"no photos in {target}: its {n} folder{'s' if n != 1 else ''} and the folders below "
            f"them hold {held} (photos are {IMAGE_SUFFIXES_TEXT} files)"
        )
    return f"no photos in {target}: a site holds folders of photos"


def _check(
    options: CheckOptions,
    connector: Connector,
    result: ScanResult,
    cap: int,
    cache: UserCache | NoCache,
    measuring: MeasuringPool,
) -> CheckReport:
    from qc_tool.services.checks.run import check_site

    try:
        executor, workers = measuring.executor()
        return check_site(
            connector,
            result,
            executor,
            options=replace(options, max_connections=cap),
            workers=workers,
            cache=cache,
        )
    finally:
        measuring.close()


def _import_meanwhile(modules: tuple[str, ...]) -> None:
    """Import ``modules`` on a daemon thread; whoever imports them later waits for it to end."""

    def work() -> None:
        for name in modules:
            try:
                importlib.import_module(name)
            except ImportError:  # the main thread's own import raises it where it belongs
                return

    threading.Thread(target=work, name="qc-imports", daemon=True).start()


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a whole number of 1 or more, not {text!r}")
    return int(text)


def _target(args: argparse.Namespace, settings: Settings) -> tuple[Connector, str, str]:
    """The connector, the site, and whose reads these are (the cache's user)."""
    if not args.target.startswith("sftp://"):
        path = Path(args.target).resolve()
        if not path.is_dir():
            scheme = args.target.split("/", 1)[0]
            if scheme.rstrip(":").isalpha() and scheme.endswith(":") or scheme.startswith("sftp"):
                # "http://...", "sftp:/..." or "sftp//...": a URL, not a local folder.
                raise BadRequest(
                    f"{args.target} is not an sftp:// URL nor a local folder: "
                    "sftp://USER@HOST[:PORT]/PATH/TO/SITE"
                )
            raise BadRequest(f"no such folder: {args.target}")
        from qc_tool.adapters.local import LocalConnector

        return LocalConnector(path.parent), path.name, _local_user()
    url = urlsplit(args.target)
    try:
        port = url.port or 22
    except ValueError:
        raise BadRequest(f"the port in {args.target} must be a number from 1 to 65535") from None
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
    known = Path(args.known_hosts or settings.known_hosts or Path.home() / ".ssh/known_hosts")
    host = url.hostname
    password = os.environ.get("QC_SFTP_PASSWORD")
    if password is None and not sys.stdin.isatty():
        raise BadRequest("no password: set QC_SFTP_PASSWORD, or run qc-tool in a terminal")
    if password is None:
        password = getpass.getpass(f"Password for {url.username}@{url.hostname}: ")
    username = unquote(url.username)

    return _LoginAhead(settings, host, port, known, root, username, password), site, username


def _without_invoke() -> None:
    """Keep paramiko from importing invoke (50 ms of a warm scan's start-up, with its YAML
    and unittest.mock): paramiko uses it only for ssh_config's "Match exec", which the tool
    never reads (it takes no ssh_config). A process that imported invoke already keeps it."""
    sys.modules.setdefault("invoke", None)  # type: ignore[arg-type]  # None: "not importable"


class _LoginAhead:
    """The SFTP connector of a run, whose first login starts as soon as the target is known.

    A login is 7 round trips (0.35 s on a site link) and the tool's modules take about as long
    to import. So a thread dials the server (the TCP handshake and the server's banner come
    while paramiko imports), imports paramiko and the login alone (adapters/sftp/connect.py),
    and logs in; the main thread imports the rest meanwhile, the connector with it. The first
    ``connect`` takes that connection in (``SftpConnector.adopt``), or raises what the login
    raised: it is the run's one password attempt, never retried. Later ones, the scan's pool
    and the checks', are the connector's own.
    """

    def __init__(
        self,
        settings: Settings,
        host: str,
        port: int,
        known_hosts: Path,
        root: str,
        username: str,
        password: str,
    ) -> None:
        self._settings = settings
        self._address = (host, port, known_hosts)
        self._login = (root, username, password)
        self._lock = threading.Lock()
        self._connecting = threading.Event()  # the endpoint is known: the login is on its way
        self._done = threading.Event()
        self._endpoint: SftpEndpoint | None = None
        self._connector: SftpConnector | None = None
        self._opened: tuple[paramiko.Transport, paramiko.SFTPClient] | None = None
        self._error: BaseException | None = None
        self._taken = False
        threading.Thread(target=self._log_in, name="qc-login", daemon=True).start()

    def _log_in(self) -> None:
        host, port, known = self._address
        _, username, password = self._login
        try:
            try:
                sock: socket.socket | None = socket.create_connection(
                    (host, port), timeout=self._settings.connect_timeout
                )
            except OSError:  # the login dials again and says why, in the tool's words
                sock = None
            _without_invoke()
            from qc_tool.adapters.sftp.connect import open_connection
            from qc_tool.bootstrap import sftp_endpoint

            endpoint = replace(
                sftp_endpoint(self._settings), host=host, port=port, known_hosts=known
            )
            self._endpoint = endpoint
            self._connecting.set()
            self._opened = open_connection(endpoint, username, password, sock=sock)
        except BaseException as exc:  # noqa: BLE001 (raised again by connect, in the main thread)
            self._error = exc
        finally:
            self._connecting.set()
            self._done.set()

    def wait_until_connecting(self) -> None:
        self._connecting.wait()

    def _inner(self) -> SftpConnector:
        self._connecting.wait()
        with self._lock:
            if self._connector is None:
                if self._endpoint is None:
                    assert self._error is not None
                    raise self._error
                from qc_tool.adapters.sftp.connection import SftpConnector

                self._connector = SftpConnector(self._endpoint, *self._login)
            return self._connector

    @property
    def server_id(self) -> str:
        return self._inner().server_id

    def connect(self) -> SiteConnection:
        with self._lock:
            first, self._taken = not self._taken, True
        if not first:
            return self._inner().connect()
        self._done.wait()
        if self._error is not None:
            raise self._error
        assert self._opened is not None
        opened, self._opened = self._opened, None
        return self._inner().adopt(*opened)

    def close_unused(self) -> None:
        """Close the first connection if nobody took it (the run failed before its scan)."""
        with self._lock:
            self._taken = True
        self._done.wait()
        if self._opened is not None:
            self._opened[0].close()
            self._opened = None


def _local_user() -> str:
    """The account reading a local folder: the files' permissions are judged against it."""
    try:
        return getpass.getuser()
    except OSError:  # no login name in the environment nor in the password database
        return f"uid:{os.getuid()}"


class _ProgressBar:
    """A one-line progress bar on stderr (only when it is a terminal, else one line per 10%)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        from qc_tool.services.progress import Rate

        self._rate = Rate()
        self._last_decile = -1

    def update(self, p: Progress) -> None:
        if p.total == 0:
            return
        self._rate.update(p.done, p.total)
        fraction = p.done / p.total
        if self._tty:
            filled = int(30 * fraction)
            speed = f"{self._rate.rate:.0f}/s" if self._rate.rate else ""
            self._stream.write(
                f"\r[{'#' * filled}{'.' * (30 - filled)}] {p.done}/{p.total} images, "
                f"{p.gps_points} GPS {speed} "
            )
            self._stream.flush()
        elif int(fraction * 10) > self._last_decile:
            self._last_decile = int(fraction * 10)
            self._stream.write(f"{p.done}/{p.total} images, {p.gps_points} GPS points\n")

    def finish(self) -> None:
        if self._tty:
            self._stream.write("\n")


def _print_table(result: ScanResult, out: TextIO) -> None:
    # Names come escaped from the listing (domain.paths.display_name); messages may quote the
    # server or a file's EXIF, so everything printed goes through display_text too: no
    # control character of anyone else's choosing reaches the terminal.
    show = display_text
    width = max([len(show(f.name)) for f in result.folders] + [6])
    print(f"{'folder':<{width}}  {'images':>6}  {'GPS':>6}  {'no GPS':>6}  {'errors':>6}", file=out)
    for f in result.folders:
        if f.skipped is not None:
            print(f"{show(f.name):<{width}}  skipped: {show(f.skipped)}", file=out)
            continue
        print(
            f"{show(f.name):<{width}}  {f.images:>6}  {f.gps_points:>6}  {f.missing_gps:>6}  "
            f"{f.errors:>6}",
            file=out,
        )
        found = [
            f"{f.in_subfolders} in subfolders" if f.in_subfolders else "",
            f"{f.other_files} other files" if f.other_files else "",
            f"{len(f.not_searched)} not searched" if f.not_searched else "",
        ]
        if any(found):  # what the folder held besides photos at its top
            print(f"{'':<{width}}  ({', '.join(x for x in found if x)})", file=out)
        for entry in f.not_searched:
            print(f"{'':<{width}}  {show(entry.path)}: {show(entry.reason)}", file=out)
    s = result.stats
    total = len(result.images)
    print(
        f"{'total':<{width}}  {total:>6}  {result.gps_points:>6}  "
        f"{result.missing_gps:>6}  {result.errors:>6}",
        file=out,
    )
    print(
        f"{s.seconds:.2f} s, {s.images_per_s:.1f} images/s, {s.cached} from cache, "
        f"{s.bytes_read / 1e6:.2f} MB read over {s.connections} connection(s)",
        file=out,
    )


def _print_verdict(verdict: dict[str, Any], images: list[dict[str, Any]], out: TextIO) -> None:
    """The verdict as the QC page shows it: what to fly again, each invalid photo and why,
    then the decision's headline (all counted by the domain, nothing here)."""
    show = display_text
    labels = {k["kind"]: k["label"] for k in [*verdict["kinds"], *verdict["folder_reasons"]]}
    if verdict["refly"]:
        print("\nto fly again:", file=out)
    for item in verdict["refly"]:
        why = ", ".join(labels.get(k, k) for k in item["reasons"])
        n = len(item["photos"])
        count = f"{n} photo{'s' if n != 1 else ''}, " if n else ""
        note = f" ({show(item['note'])})" if item.get("note") else ""
        print(f"  {show(item['folder'])}: {count}{why}{note}", file=out)
    for image in images:
        if image["valid"] is False:
            reasons = "; ".join(show(r) for r in image["reasons"])
            print(f"  FAIL {show(image['path'])}: {reasons}", file=out)
    print(f"\n{show(verdict['headline'])}", file=out)
    for note in verdict["notes"]:
        print(f"  note: {show(note)}", file=out)


if __name__ == "__main__":
    sys.exit(main())
