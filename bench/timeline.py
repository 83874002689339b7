"""Thin wrappers around the tool's connector, connections and cache that time every call.

``scan_site`` takes its collaborators as parameters, so the benchmark can see where a scan's
time goes (logins, listing, cache, reads per connection) without touching the tool: each
wrapper only delegates and notes when a call started and ended. The overhead is a few
``perf_counter`` calls per connection, not per image; the check pass's pixel reads also note
each image's source and bytes read (one small dict per image, against ~20 ms of measuring).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from qc_tool.domain.exif_reader import ExifBlock
from qc_tool.domain.models import FolderListing, ImageResult, RemoteFile, SiteInfo
from qc_tool.domain.pixel_reader import PixelSource
from qc_tool.services.ports import (
    Connector,
    HeaderCallback,
    PixelCallback,
    ReadAdmission,
    ResultCache,
    SiteConnection,
)


@dataclass
class Timeline:
    """Events as (name, start, end, extra), in seconds since ``t0``; what each pixel read got."""

    t0: float = field(default_factory=time.perf_counter)
    events: list[dict[str, Any]] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    pixels: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> float:
        return time.perf_counter() - self.t0

    def add(self, name: str, start: float, end: float, **extra: Any) -> None:
        with self._lock:
            self.events.append({"name": name, "start": start, "end": end, **extra})

    def add_pixels(
        self, f: RemoteFile, conn: int, source: PixelSource | None, error: str | None
    ) -> None:
        with self._lock:
            self.pixels.append(
                {
                    "path": f.path,
                    "size": f.size,
                    "conn": conn,
                    "error": error,
                    "source": source.source if source else None,
                    "bytes": source.bytes_read if source else 0,
                }
            )


class TimedConnector:
    """Delegates to a real connector; notes each login (one SSH connection each)."""

    def __init__(self, inner: Connector, timeline: Timeline) -> None:
        self._inner = inner
        self._timeline = timeline
        self._count = 0

    @property
    def server_id(self) -> str:
        return self._inner.server_id

    def connect(self) -> SiteConnection:
        start = self._timeline.now()
        conn = self._inner.connect()
        self._count += 1
        self._timeline.add("connect", start, self._timeline.now(), n=self._count)
        transport = getattr(conn, "_transport", None)  # bench-only peek: which cipher ran
        if transport is not None and "cipher" not in self._timeline.facts:
            self._timeline.facts["cipher"] = getattr(transport, "local_cipher", None)
            self._timeline.facts["mac"] = getattr(transport, "local_mac", None)
        return TimedConnection(conn, self._timeline, self._count)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)  # a method added to the port later: untimed


class TimedConnection:
    """Delegates to one real connection; notes listings and each stream of header reads."""

    def __init__(self, inner: SiteConnection, timeline: Timeline, n: int) -> None:
        self._inner = inner
        self._timeline = timeline
        self._n = n

    def list_sites(self) -> list[SiteInfo]:
        return self._inner.list_sites()

    def list_folders(self, site: str) -> list[str]:
        start = self._timeline.now()
        folders = self._inner.list_folders(site)
        self._timeline.add("list folders", start, self._timeline.now(), count=len(folders))
        return folders

    def list_images(self, site: str, folders: Sequence[str]) -> dict[str, FolderListing]:
        start = self._timeline.now()
        listing = self._inner.list_images(site, folders)
        files = sum(len(v.photos) for v in listing.values())
        self._timeline.add("list images", start, self._timeline.now(), count=files)
        return listing

    def read_headers(
        self,
        site: str,
        files: Iterable[RemoteFile],
        on_result: HeaderCallback,
        *,
        pipelined: bool = True,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> None:
        start = self._timeline.now()
        first: list[float] = []
        dealt = [0]

        def noted(f: RemoteFile, block: ExifBlock | None, error: str | None) -> None:
            if not first:
                first.append(self._timeline.now())
            on_result(f, block, error)

        def counted() -> Iterator[RemoteFile]:
            for f in files:  # the scan deals images as the connection has room
                dealt[0] += 1
                yield f

        try:
            self._inner.read_headers(
                site, counted(), noted, pipelined=pipelined, cancelled=cancelled
            )
        finally:
            self._timeline.add(
                "read",
                start,
                self._timeline.now(),
                conn=self._n,
                files=dealt[0],
                first=first[0] if first else None,
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
        start = self._timeline.now()
        first: list[float] = []
        dealt = [0]

        def noted(f: RemoteFile, source: PixelSource | None, error: str | None) -> None:
            if not first:
                first.append(self._timeline.now())
            self._timeline.add_pixels(f, self._n, source, error)
            on_result(f, source, error)

        def counted() -> Iterator[RemoteFile]:
            for f in files:  # the check pass deals images as the connection has room
                dealt[0] += 1
                yield f

        try:
            self._inner.read_pixels(
                site,
                counted(),
                noted,
                whole_file=whole_file,
                cancelled=cancelled,
                admission=admission,
            )
        finally:
            self._timeline.add(
                "read pixels",
                start,
                self._timeline.now(),
                conn=self._n,
                files=dealt[0],
                first=first[0] if first else None,
            )

    @property
    def files_opened(self) -> int:
        return self._inner.files_opened

    def release(self) -> None:
        self._inner.release()

    def close(self) -> None:
        self._inner.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)  # a method added to the port later: untimed


class TimedCache:
    """Delegates to a real cache; notes lookups and stores."""

    def __init__(self, inner: ResultCache, timeline: Timeline) -> None:
        self._inner = inner
        self._timeline = timeline

    def get_many(
        self, server: str, files: Sequence[RemoteFile], prefix: str
    ) -> Mapping[str, ImageResult]:
        start = self._timeline.now()
        found = self._inner.get_many(server, files, prefix)
        self._timeline.add("cache lookup", start, self._timeline.now(), hits=len(found))
        return found

    def put_many(self, server: str, results: Sequence[ImageResult], prefix: str) -> None:
        start = self._timeline.now()
        self._inner.put_many(server, results, prefix)
        self._timeline.add("cache store", start, self._timeline.now(), count=len(results))

    def prune(self, server: str, prefix: str, keep: Sequence[str]) -> int:
        start = self._timeline.now()
        removed = self._inner.prune(server, prefix, keep)
        self._timeline.add("cache prune", start, self._timeline.now(), removed=removed)
        return removed

    def known(self, server: str, prefix: str) -> int:
        start = self._timeline.now()
        count = self._inner.known(server, prefix)
        self._timeline.add("cache known", start, self._timeline.now(), count=count)
        return count

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)  # a method added to the port later: untimed
