"""Scan one site: list it, take what the cache knows, read the rest over a pool of connections.

Images of each folder are dealt round-robin to that folder's connections (1 for
10 or fewer images, else min(4, max(2, n // 50))) as each has room (see dealing.py);
each connection is driven by one worker thread, which keeps many requests in flight.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, fields
from operator import attrgetter

from qc_tool.domain.exif import summarize
from qc_tool.domain.exif_reader import ExifBlock
from qc_tool.domain.models import (
    TRUNCATED_BODY,
    ExifSummary,
    FolderListing,
    FolderSummary,
    ImageResult,
    Progress,
    RemoteFile,
    ScanResult,
)
from qc_tool.domain.paths import name_problem, safe_name
from qc_tool.errors import Cancelled, QCError, SiteTooLarge
from qc_tool.services.ports import Connector, HeaderParser, ResultCache, SiteConnection
from qc_tool.services.scan.dealing import Dealer, OnResult, Retries, on_first, read_over_pool
from qc_tool.services.scan.pool import ConnectionPool, pool_size

log = logging.getLogger("qc_tool.scan")

ProgressCallback = Callable[[Progress], None]
PROGRESS_EVERY = 20
PARSE_BATCH = 32  # blocks per hand-over to the parsing processes
# Another pool login is not started for fewer images than this: the open connections
# read them before it would complete (measured: one open connection reads ~1,900
# headers/s on the LAN profile, a login takes 0.2-0.5 s).
WORTH_A_LOGIN = 100
# The most photos one QC takes: every photo costs memory until the QC is read (about 12 KB
# through View QC, docs/reliability.md), so this bounds a QC's memory whatever a site holds.
# A folder may list up to QC_MAX_LISTING (20,000) entries; one such folder is a site still.
MAX_SITE_PHOTOS = 20_000
LIST_BATCH = 16  # folders listed at once: the count is checked between batches


@dataclass(frozen=True, slots=True)
class ScanOptions:
    max_connections: int = 4
    pipelined: bool = True  # False: one request at a time, the reference path for tests
    max_photos: int = MAX_SITE_PHOTOS


def scan_site(
    connector: Connector,
    cache: ResultCache,
    site: str,
    *,
    options: ScanOptions = ScanOptions(),
    on_progress: ProgressCallback | None = None,
    cancelled: Callable[[], bool] = lambda: False,
    parser: HeaderParser | None = None,
) -> ScanResult:
    """Scan ``site`` and return every image's GPS result; the first login error is raised.

    With a ``parser``, EXIF blocks are parsed by it (other processes) while reading goes on.
    """
    site = safe_name(site, "site")
    started = time.perf_counter()
    first = connector.connect()  # the one login attempt; errors go straight to the caller
    pool = ConnectionPool(connector, first)
    prefix = f"/{site}"
    retries = Retries()  # connection failures this scan survives (listing and reading)
    cache.preload(connector.server_id, prefix)  # read while the site is listed
    try:
        if options.max_connections > 1 and cache.known(connector.server_id, prefix) == 0:
            # Nothing cached: a cold scan of a real site needs a pool, so the second
            # connection opens while the first lists (the size is settled after listing).
            pool.grow(2)
        listings, skipped = on_first(
            pool, lambda conn: _list(conn, site, options.max_photos), retries, cancelled
        )
        listing = {folder: found.photos for folder, found in listings.items()}
        run = _Run(site, listing, on_progress, parser, skipped, listings)
        cached = cache.get_many(connector.server_id, run.all_files, prefix)
        run.take_cached(cached)
        misses = run.misses(cached)
        dealer = Dealer(_folder_queues(misses, options.max_connections))
        pool.grow(dealer.width, needed=lambda: dealer.left() > WORTH_A_LOGIN)

        def read_on(
            conn: SiteConnection, files: Iterator[RemoteFile], report: OnResult[ExifBlock]
        ) -> None:
            try:
                conn.read_headers(
                    site, files, report, pipelined=options.pipelined, cancelled=cancelled
                )
            finally:
                run.add_opened(conn.files_opened)

        try:
            read_over_pool(pool, dealer, read_on, run.record, cancelled, "qc-sftp", retries)
        except QCError:
            # What was read stays read: a scan run again reads only the rest.
            run.wait_parsed()
            cache.put_many(connector.server_id, run.fresh_results(), prefix)
            raise
        run.wait_parsed()
        if cancelled():
            raise Cancelled("the scan was cancelled")
        used = min(dealer.width, pool.opened) if dealer.width else 1
        result = run.result(time.perf_counter() - started, used)
        result.stats.files_opened = run.files_opened
        fresh = [r for r in result.images if not r.cached]
        if fresh:  # a rescan of an unchanged site writes nothing
            cache.put_many(connector.server_id, fresh, prefix)
        cache.prune(connector.server_id, prefix, [f.path for f in run.all_files])
    finally:
        pool.close()
    _log_site(result)
    return result


def _list(
    conn: SiteConnection, site: str, max_photos: int
) -> tuple[dict[str, FolderListing], dict[str, str]]:
    """The site's folders and what they hold (photos at any depth), listed on one
    connection; and the folders left out, each with the reason (a name that cannot be sent
    to the server costs only itself). A site of more than ``max_photos`` is refused as soon
    as the folders listed so far hold more."""
    folders = conn.list_folders(site)
    skipped = {f: problem for f in folders if (problem := name_problem(f)) is not None}
    for folder, problem in skipped.items():
        log.warning("Folder %s skipped: %s", folder, problem)
    readable = [f for f in folders if f not in skipped]
    listing: dict[str, FolderListing] = {}
    for start in range(0, len(readable), LIST_BATCH):
        listing.update(conn.list_images(site, readable[start : start + LIST_BATCH]))
        count = sum(len(found.photos) for found in listing.values())
        for folder in readable[start : start + LIST_BATCH]:
            _log_listing(folder, listing[folder])
        if count > max_photos:
            more = " at least" if start + LIST_BATCH < len(readable) else ""
            raise SiteTooLarge(
                f"{site} holds{more} {count:,} photos, more than the {max_photos:,} one QC "
                "takes; split it into smaller sites"
            )
    conn.release()  # a worker thread takes it over for reading
    return listing, skipped


def _log_listing(folder: str, found: FolderListing) -> None:
    """What listing a folder found besides its own photos (subfolders, other files)."""
    deeper = sum(1 for f in found.photos if f.path.count("/") > 1)
    if found.directories > 1 or found.other_files:
        log.info(
            "Folder %s: %d photos (%d in %d subfolders), %d other files",
            folder,
            len(found.photos),
            deeper,
            found.directories - 1,
            found.other_files,
        )
    for entry in found.not_searched:
        log.warning("Folder %s: %s not searched: %s", folder, entry.path, entry.reason)


def _folder_queues(
    misses: dict[str, list[RemoteFile]], cap: int
) -> list[tuple[int, list[RemoteFile]]]:
    """Per folder, its images and its number of workers (logged as technicians read it)."""
    queues = []
    for folder, files in misses.items():
        if not files:
            continue
        workers = pool_size(len(files), max(1, cap))
        if workers > 1:
            log.info("Folder %s: %d images. Using %d parallel workers", folder, len(files), workers)
        else:
            log.info("Folder %s: %d images. Using one connection (no pool)", folder, len(files))
        queues.append((workers, files))
    return queues


class _Run:
    """The shared state of one scan: results so far, counts, progress and log lines."""

    def __init__(
        self,
        site: str,
        listing: dict[str, list[RemoteFile]],
        on_progress: ProgressCallback | None,
        parser: HeaderParser | None = None,
        skipped: Mapping[str, str] | None = None,
        found: Mapping[str, FolderListing] | None = None,
    ) -> None:
        self._parser = parser
        self._found = dict(found or {})  # other files and what was not searched, per folder
        self.skipped = dict(skipped or {})
        self._parsing: list[Future[list[ExifSummary | str]]] = []
        self._batch: list[tuple[RemoteFile, ExifBlock]] = []
        self._batches_open = 0
        self._batches_done = threading.Condition()
        self.site = site
        self.listing = listing
        self.all_files = [f for files in listing.values() for f in files]
        self.total = len(self.all_files)
        self._results: dict[str, ImageResult] = {}
        self._remaining = {folder: len(files) for folder, files in listing.items()}
        self._folder_started = {folder: time.perf_counter() for folder in listing}
        self._gps = 0
        self._opened_counts: list[int] = []
        self._lock = threading.Lock()
        self._on_progress = on_progress
        self.started = time.perf_counter()

    @property
    def files_opened(self) -> int:
        return sum(self._opened_counts)

    def add_opened(self, count: int) -> None:
        with self._lock:
            self._opened_counts.append(count)

    def take_cached(self, cached: Mapping[str, ImageResult]) -> None:
        for result in cached.values():
            self._add(_as_cached(result))

    def fresh_results(self) -> list[ImageResult]:
        """The results read by this scan so far (not those taken from the cache)."""
        with self._lock:
            return [r for r in self._results.values() if not r.cached]

    def misses(self, cached: Mapping[str, ImageResult]) -> dict[str, list[RemoteFile]]:
        return {
            folder: [f for f in files if f.path not in cached]
            for folder, files in self.listing.items()
        }

    def record(self, f: RemoteFile, block: ExifBlock | None, error: str | None) -> None:
        """Turn one finished read into a result, parsing here or batching the block for the parser."""
        if block is None:
            self._add(ImageResult(f.path, f.size, f.mtime, error=error or "unreadable"))
        elif self._parser is None:
            self._parsed(f, block, _inline(block))
        else:
            with self._lock:
                self._batch.append((f, block))
                full = len(self._batch) >= PARSE_BATCH
            if full:
                self._submit()

    def _submit(self) -> None:
        with self._lock:
            batch, self._batch = self._batch, []
        if not batch or self._parser is None:
            return
        with self._batches_done:
            self._batches_open += 1
        future = self._parser.submit([block for _, block in batch])
        self._parsing.append(future)

        def done(finished: Future[list[ExifSummary | str]]) -> None:
            try:
                if finished.exception() is None:
                    for (f, block), outcome in zip(batch, finished.result(), strict=True):
                        self._parsed(f, block, outcome)
            finally:
                with self._batches_done:
                    self._batches_open -= 1
                    self._batches_done.notify_all()

        future.add_done_callback(done)

    def wait_parsed(self) -> None:
        """Wait until every batch is parsed *and recorded* (callbacks run after a future resolves)."""
        self._submit()
        with self._batches_done:
            self._batches_done.wait_for(lambda: self._batches_open == 0)
        for future in self._parsing:
            future.result()  # a parser that died must not pass for a finished scan

    def _parsed(self, f: RemoteFile, block: ExifBlock, outcome: ExifSummary | str) -> None:
        if isinstance(outcome, str):
            self._add(
                ImageResult(f.path, f.size, f.mtime, error=outcome, bytes_read=block.bytes_read)
            )
            return
        facts = outcome
        self._add(
            ImageResult(
                f.path,
                f.size,
                f.mtime,
                lat=facts.lat,
                lon=facts.lon,
                alt=facts.alt,
                taken=facts.taken,
                camera=facts.camera,
                error=TRUNCATED_BODY if block.truncated else None,
                gps_note=facts.gps_note,
                iso=facts.iso,
                exposure_time=facts.exposure_time,
                bytes_read=block.bytes_read,
            )
        )

    def _add(self, result: ImageResult) -> None:
        with self._lock:
            if result.path in self._results:
                return  # a retried image reported twice counts once
            self._results[result.path] = result
            if result.has_gps and result.error is None:
                self._gps += 1
            done = len(self._results)
            folder = result.folder
            self._remaining[folder] -= 1
            folder_done = self._remaining[folder] == 0
            gps = self._gps
        if done % PROGRESS_EVERY == 0 or done == self.total:
            log.info("Progress: %d/%d images processed, %d GPS points found", done, self.total, gps)
        if folder_done and log.isEnabledFor(logging.INFO):  # a pass over the folder: only to log
            self._log_folder(folder)
        if self._on_progress is not None:
            folder_total = len(self.listing[folder])
            self._on_progress(Progress(done, self.total, gps, folder, result, folder_total))

    def _log_folder(self, folder: str) -> None:
        summary = FolderSummary(folder)
        with self._lock:
            for f in self.listing[folder]:
                summary.add(self._results[f.path])
        seconds = time.perf_counter() - self._folder_started[folder]
        log.info(
            "Folder %s done: %d images, %d GPS points, %d missing GPS, %d errors in %.2f s (%.1f images/s)",
            folder,
            summary.images,
            summary.gps_points,
            summary.missing_gps,
            summary.errors,
            seconds,
            summary.images / seconds if seconds > 0 else 0.0,
        )

    def result(self, seconds: float, connections: int) -> ScanResult:
        out = ScanResult(self.site)
        for folder, files in self.listing.items():
            summary = FolderSummary(folder)
            if folder in self._found:
                summary.take_listing(self._found[folder])
            for f in files:
                image = self._results.get(f.path)
                if image is None:  # never happens unless cancelled; keep the document whole
                    image = ImageResult(f.path, f.size, f.mtime, error="not read (scan cancelled)")
                    self._results[f.path] = image
                summary.add(image)
                out.images.append(image)
            out.folders.append(summary)
        if self.skipped:  # in the listing's (name) order, each skipped folder in its place
            out.folders += [FolderSummary(name, skipped=why) for name, why in self.skipped.items()]
            out.folders.sort(key=lambda f: f.name)
        out.stats.seconds = round(seconds, 3)
        out.stats.images_per_s = round(len(out.images) / seconds, 1) if seconds > 0 else 0.0
        out.stats.bytes_read = sum(i.bytes_read for i in out.images if not i.cached)
        out.stats.connections = connections
        out.stats.cached = sum(1 for i in out.images if i.cached)
        return out


# ImageResult's fields but "cached", in order: a rescan copies every result of the site once,
# and dataclasses.replace takes twice as long (4.8 against 2.6 us per result).
_UNCACHED_FIELDS = attrgetter(*(f.name for f in fields(ImageResult) if f.name != "cached"))


def _as_cached(result: ImageResult) -> ImageResult:
    """``replace(result, cached=True)``, in half the time."""
    # The getter yields every field but the last, "cached": mypy cannot count a tuple's items.
    return ImageResult(*_UNCACHED_FIELDS(result), cached=True)  # type: ignore[misc]


def _log_site(result: ScanResult) -> None:
    s = result.stats
    log.info(
        "Site %s done: %d images, %d GPS points in %.2f s (%.1f images/s), %d from cache, "
        "%d bytes read over %d connections",
        result.site,
        len(result.images),
        result.gps_points,
        s.seconds,
        s.images_per_s,
        s.cached,
        s.bytes_read,
        s.connections,
    )


def _inline(block: ExifBlock) -> ExifSummary | str:
    try:
        return summarize(block)
    except QCError as exc:
        return exc.message
