"""One user's connection to the SFTP server: listing and header reads, pipelined."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import paramiko
from paramiko.sftp import SFTP_NO_SUCH_FILE

from qc_tool.adapters.sftp.connect import SftpEndpoint, open_connection
from qc_tool.adapters.sftp.engine import Engine, LStat, SftpStatus, Task
from qc_tool.adapters.sftp.errors import LINK_ERRORS
from qc_tool.adapters.sftp.limits import SERVER_SLOTS, ServerSlots, Slot
from qc_tool.adapters.sftp.tasks import entry, header_task, is_dir, listing_task, pixels_task
from qc_tool.adapters.sftp.wire import Wire
from qc_tool.domain import paths
from qc_tool.domain.listing import FolderWalk
from qc_tool.domain.models import FolderListing, RemoteFile, SiteInfo
from qc_tool.domain.paths import (
    join_remote,
    name_problem,
    path_problem,
    safe_name,
)
from qc_tool.errors import RemoteError
from qc_tool.services.ports import HeaderCallback, PixelCallback, ReadAdmission

log = logging.getLogger(__name__)

T = TypeVar("T")

# Files in flight per connection: enough to hide a 50 ms round trip at well over 1,000 images/s,
# few enough to stay far below a server's open-file limit.
MAX_FILES_IN_FLIGHT = 192
MAX_REQUESTS_IN_FLIGHT = 768
PREVIEWS_IN_FLIGHT = 24
WHOLE_FILES_IN_FLIGHT = 4


class _Live:
    """How many of a connector's connections are open (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    def add(self, n: int) -> None:
        with self._lock:
            self._count += n

    @property
    def count(self) -> int:
        with self._lock:
            return self._count


@dataclass(frozen=True, slots=True)
class SftpConnector:
    """Opens connections to the configured server with one user's credentials.

    Each connection holds a slot of the server's process-wide cap until it closes. A user's
    first connection waits for a slot (up to ``endpoint.slot_wait``); further ones, which
    only grow a pool that already works, take a free slot or fail at once.
    """

    endpoint: SftpEndpoint
    sites_root: str
    username: str
    password: str
    slots: ServerSlots = field(default=SERVER_SLOTS, repr=False, compare=False)
    framed: bool = field(default=True, repr=False, compare=False)  # False: bench.run --no-framing
    _live: _Live = field(default_factory=_Live, repr=False, compare=False)

    @property
    def server_id(self) -> str:
        return f"{self.endpoint.server_id}{self.sites_root}"

    def connect(self) -> SftpConnection:
        slot = self._slot()
        try:
            transport, sftp = open_connection(self.endpoint, self.username, self.password)
        except BaseException:
            slot.release()
            raise
        return self._connection(transport, sftp, slot)

    def adopt(self, transport: paramiko.Transport, sftp: paramiko.SFTPClient) -> SftpConnection:
        """A connection to this endpoint that ``open_connection`` opened before the connector
        existed (the CLI logs in while the rest of the tool imports), taken in as if this
        connector had opened it: it holds a slot until it closes."""
        try:
            slot = self._slot()
        except BaseException:
            transport.close()
            raise
        return self._connection(transport, sftp, slot)

    def _slot(self) -> Slot:
        wait = self.endpoint.slot_wait if self._live.count == 0 else 0.0
        return self.slots.acquire(self.endpoint.server_id, self.endpoint.max_connections, wait)

    def _connection(
        self, transport: paramiko.Transport, sftp: paramiko.SFTPClient, slot: Slot
    ) -> SftpConnection:
        self._live.add(1)

        def closed() -> None:
            slot.release()
            self._live.add(-1)

        return SftpConnection(
            transport,
            sftp,
            self.sites_root,
            on_close=closed,
            max_listing=self.endpoint.max_listing,
            framed=self.framed,
        )

    def __repr__(self) -> str:  # never show the password in a log or traceback
        return f"SftpConnector({self.endpoint.server_id}, user={self.username!r})"


class SftpConnection:
    """An authenticated transport and its SFTP channel; one thread uses it at a time."""

    def __init__(
        self,
        transport: paramiko.Transport,
        sftp: paramiko.SFTPClient,
        root: str,
        *,
        on_close: Callable[[], None] | None = None,
        max_listing: int | None = None,
        framed: bool = True,
    ) -> None:
        self._transport = transport
        self._sftp = sftp
        self._root = root
        # All SFTP traffic of this connection goes through the wire.
        self._wire = Wire(sftp, framed=framed)
        self._owner: int | None = None  # the thread using it; None: free to take over
        self._owner_lock = threading.Lock()
        self._opened = 0
        self._on_close = on_close
        self._max_listing = max_listing  # entries one READDIR listing may hold (QC_MAX_LISTING)
        self._closed = False
        self._close_lock = threading.Lock()

    @property
    def files_opened(self) -> int:
        return self._opened

    def list_sites(self) -> list[SiteInfo]:
        sites = {s: name_problem(s) for s in self._site_names()}
        # A name shown escaped is not the server's name for the site: it is never sent back.
        usable = {s: join_remote(self._root, s) for s, problem in sites.items() if not problem}
        counts = self._list_many(usable)
        return [
            SiteInfo(s, sum(1 for e in counts.get(s, ()) if is_dir(e) and _plain(e.filename)), p)
            for s, p in sites.items()
            if p or s in counts
        ]

    def list_folders(self, site: str) -> list[str]:
        site = safe_name(site, "site")
        # Only a real folder of the sites root is a site: a symlink there (to anywhere) is
        # neither listed by list_sites nor followed here, whatever name a request gives. So
        # the site is looked at first with LSTAT, which does not follow a link (one round
        # trip, where listing the root took two), and opened only once it says "a folder".
        path = join_remote(self._root, site)
        entries = self._run_one(_site_listing(path, self._max_listing), f"site {site!r}")
        if entries is None:
            raise RemoteError(f"there is no site {site!r} in {self._root}")
        return _folder_names(entries)

    def list_images(self, site: str, folders: Sequence[str]) -> dict[str, FolderListing]:
        site = safe_name(site, "site")
        base = join_remote(self._root, site)
        walks = {f: FolderWalk(safe_name(f, "folder")) for f in folders}
        # One budget per folder's whole tree (QC_MAX_LISTING), shared by its listings in flight.
        limit = paths.MAX_LISTING if self._max_listing is None else self._max_listing
        budgets = {f: paths.EntryBudget(limit, join_remote(base, f)) for f in folders}
        # Level by level: every directory of a level, of every folder, is listed at once.
        level = {f: f for f in folders}  # directory (path inside the site) -> its folder
        while level:
            listed, failed = self._list_level(base, level, budgets)
            for budget in budgets.values():  # a tree past QC_MAX_LISTING fails the scan
                paths.check_listing(budget.used, budget.limit, budget.path)
            # A folder that cannot be listed fails the scan with the reason (no permission)
            # rather than passing for an empty folder; a directory below it costs only itself.
            for directory, reason in sorted(failed.items()):
                if directory in walks:
                    raise RemoteError(f"cannot list {join_remote(base, directory)}: {reason}")
                walks[level[directory]].not_searched(directory, f"cannot list it: {reason}")
            level = {
                sub: level[directory]
                for directory, entries in sorted(listed.items())
                for sub in walks[level[directory]].add(directory, map(entry, entries))
            }
        return {f: walk.listing() for f, walk in walks.items()}

    def _list_level(
        self, base: str, level: dict[str, str], budgets: dict[str, paths.EntryBudget]
    ) -> tuple[dict[str, list[Any]], dict[str, str]]:
        """List every directory of one level at once: their entries, and why others failed."""
        listed: dict[str, list[Any]] = {}
        failed: dict[str, str] = {}

        def done(directory: str, value: list[Any] | None, error: str | None) -> None:
            if error is not None or value is None:
                log.warning("cannot list %s: %s", join_remote(base, directory), error)
                failed[directory] = error or "no reply"
            else:
                listed[directory] = value

        tasks = (
            (d, listing_task(join_remote(base, *d.split("/")), budget=budgets[folder]))
            for d, folder in level.items()
        )
        self._engine().run(tasks, done)
        return listed, failed

    def read_headers(
        self,
        site: str,
        files: Iterable[RemoteFile],
        on_result: HeaderCallback,
        *,
        pipelined: bool = True,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> None:
        self._read_files(
            site,
            files,
            lambda path, f: header_task(path, f.size),
            on_result,
            MAX_FILES_IN_FLIGHT if pipelined else 1,
            cancelled,
        )

    def read_pixels(
        self,
        site: str,
        files: Iterable[RemoteFile],
        on_result: PixelCallback,
        *,
        whole_file: bool = False,
        cancelled: Callable[[], bool] = lambda: False,
        admission: ReadAdmission | None = None,
    ) -> None:
        # Previews are ~0.3 MB and whole files ~7 MB: fewer in flight keeps memory bounded.
        in_flight = WHOLE_FILES_IN_FLIGHT if whole_file else PREVIEWS_IN_FLIGHT
        self._read_files(
            site,
            files,
            lambda path, f: pixels_task(path, f.size, whole_file),
            on_result,
            in_flight,
            cancelled,
            admission,
        )

    def _read_files(
        self,
        site: str,
        files: Iterable[RemoteFile],
        make_task: Callable[[str, RemoteFile], Task[Any]],
        on_result: Callable[[RemoteFile, Any, str | None], None],
        in_flight: int,
        cancelled: Callable[[], bool],
        admission: ReadAdmission | None = None,
    ) -> None:
        site_path = join_remote(self._root, safe_name(site, "site"))

        def tasks() -> Iterator[tuple[RemoteFile, Task[Any]]]:
            for f in files:
                if cancelled():
                    return
                problem = path_problem(f.path)
                if problem is not None:  # a name shown escaped: its own result, never sent
                    on_result(f, None, problem)
                    continue
                yield f, make_task(f"{site_path}/{f.path}", f)

        engine = self._engine(max_tasks=in_flight)
        try:
            engine.run(tasks(), on_result, admission)
        finally:
            self._opened += engine.stats.files_opened

    def close(self) -> None:
        """Close channel and transport (once); a connection that already died closes quietly."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._sftp.close()
        except LINK_ERRORS as exc:
            log.debug("closing the SFTP channel: %s", exc)
        finally:
            self._transport.close()
            if self._on_close is not None:
                self._on_close()

    def _engine(self, max_tasks: int = MAX_FILES_IN_FLIGHT) -> Engine:
        me = threading.get_ident()
        with self._owner_lock:
            if self._owner not in (None, me):
                # Two threads on one SFTPClient interleave packets ("Garbage packet received").
                raise RuntimeError("an SFTP connection is owned by another thread")
            self._owner = me
        return Engine(self._wire, max_tasks=max_tasks, max_requests=MAX_REQUESTS_IN_FLIGHT)

    def release(self) -> None:
        """Hand the connection to another thread, which takes it over at its next read.

        The caller makes sure the two never overlap: the scan's pool releases between
        folders, a login's kept connection after each request, under its lock.
        """
        with self._owner_lock:
            self._owner = None

    def _run_one(self, task: Task[T], what: str) -> T:
        results: list[tuple[T, str | None]] = []
        self._engine().run(iter([(what, task)]), lambda k, v, e: results.append((v, e)))
        value, error = results[0]
        if error is not None:
            raise RemoteError(f"cannot list {what}: {error}")
        return value

    def _site_names(self) -> list[str]:
        entries = self._run_one(self._listing(self._root), f"the sites folder {self._root}")
        return _folder_names(entries)

    def _listing(self, path: str) -> Task[list[Any]]:
        return listing_task(path, self._max_listing)

    def _list_many(self, dirs: dict[str, str]) -> dict[str, list[Any]]:
        """List several folders at once; one that cannot be listed is logged and left out."""
        listed: dict[str, list[Any]] = {}

        def done(key: str, value: list[Any] | None, error: str | None) -> None:
            if error is not None or value is None:
                log.warning("cannot list %s: %s", dirs[key], error)
            else:
                listed[key] = value

        self._engine().run(((k, self._listing(p)) for k, p in dirs.items()), done)
        return listed


def _site_listing(path: str, limit: int | None) -> Task[list[Any] | None]:
    """The entries of the folder ``path``; None if it is not one (a link, a file, nothing).

    LSTAT first, alone: nothing is opened at ``path`` until its answer says a real folder.
    """
    try:
        (found,) = yield [LStat(path)]
    except SftpStatus as exc:
        if exc.code == SFTP_NO_SUCH_FILE:
            return None
        raise
    if not is_dir(found):
        return None
    entries: list[Any] = yield from listing_task(path, limit)
    return entries


def _folder_names(entries: list[Any]) -> list[str]:
    return sorted(e.filename for e in entries if is_dir(e) and _plain(e.filename))


def _plain(name: str) -> bool:
    return not name.startswith(".")
