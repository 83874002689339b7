"""Small fakes of the services' ports (services/ports.py), shared by the unit tests.

The adapters themselves are tested against real SFTP servers; these stand in for them where a
test is about a service's own logic: the pool, the kept connections, the login's connector.
``RecordingConnector`` is the exception: it wraps a real connector and watches how the
services use its connections.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from qc_tool.domain.exif_reader import ExifBlock
from qc_tool.domain.models import FolderListing, RemoteFile, SiteInfo
from qc_tool.errors import RemoteUnavailable
from qc_tool.services.ports import HeaderCallback


class FakeConnection:
    """A site connection in memory: ``folders`` maps a folder to how many images it holds.

    Every header it reads is an ExifBlock without GPS; it remembers what it read, how often
    it was handed back (``releases``) and whether it was closed. ``n`` is its place among the
    connections of its connector.
    """

    files_opened = 0

    def __init__(self, folders: dict[str, int] | None = None, n: int = 0) -> None:
        self.folders = dict(folders or {})
        self.n = n
        self.read: list[str] = []
        self.releases = 0
        self.closed = False

    def list_sites(self) -> list[SiteInfo]:
        return [SiteInfo("s", len(self.folders))]

    def list_folders(self, site: str) -> list[str]:
        return sorted(self.folders)

    def list_images(self, site: str, folders: Sequence[str]) -> dict[str, FolderListing]:
        return {
            f: FolderListing(
                [RemoteFile(f"{f}/{i:04d}.JPG", 100, 1) for i in range(self.folders[f])]
            )
            for f in folders
        }

    def read_headers(
        self,
        site: str,
        files: Iterable[RemoteFile],
        on_result: HeaderCallback,
        *,
        pipelined: bool = True,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> None:
        for f in files:
            if cancelled():
                return
            self.read.append(f.path)
            on_result(f, ExifBlock(None, False, 10), None)

    def release(self) -> None:
        self.releases += 1

    def close(self) -> None:
        self.closed = True


class FakeConnector:
    """Opens FakeConnections; past the first ``working`` logins it raises ``failure`` instead.

    ``working=None`` never fails. The default failure is what a server at its MaxStartups
    limit causes; pass AuthFailed for a refused password, ServerBusy for a server that kept
    dropping the connection. ``attempts`` counts every call, ``connections`` what it opened.
    """

    server_id = "fake://"

    def __init__(
        self,
        folders: dict[str, int] | None = None,
        *,
        working: int | None = None,
        failure: Exception | None = None,
    ) -> None:
        self.folders = folders or {}
        self.working = working
        self.failure = failure or RemoteUnavailable("connection refused")
        self.attempts = 0
        self.connections: list[FakeConnection] = []

    def connect(self) -> Any:
        self.attempts += 1
        if self.working is not None and self.attempts > self.working:
            raise self.failure
        conn = FakeConnection(self.folders, n=len(self.connections))
        self.connections.append(conn)
        return conn


class FakeClock:
    """Seconds that move only when the test moves them; pass it where a service takes a clock."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RecordingConnector:
    """Wraps a real connector: every connection it opened, the threads that used each one, the
    headers each read, and how often two calls on one connection overlapped (never, if each
    connection has one owner at a time)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.opened: list[RecordedConnection] = []
        self.overlaps = 0

    @property
    def server_id(self) -> str:
        return str(self.inner.server_id)

    def connect(self) -> Any:
        conn = RecordedConnection(self, self.inner.connect())
        self.opened.append(conn)
        return conn


class RecordedConnection:
    """One connection of a RecordingConnector; every other attribute is the real one's."""

    def __init__(self, owner: RecordingConnector, inner: Any) -> None:
        self.inner = inner
        self.threads: set[int] = set()
        self.reads = 0
        self._owner = owner
        self._busy = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if not callable(target) or name == "close":  # close may come from any thread, to abort
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            if not self._busy.acquire(blocking=False):
                self._owner.overlaps += 1
                self._busy.acquire()
            try:
                self.threads.add(threading.get_ident())
                if name == "read_headers":
                    args = (args[0], self._counted(args[1]), *args[2:])
                return target(*args, **kwargs)
            finally:
                self._busy.release()

        return call

    def _counted(self, files: Iterable[RemoteFile]) -> Iterator[RemoteFile]:
        for f in files:
            self.reads += 1
            yield f
