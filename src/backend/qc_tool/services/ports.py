"""The small interfaces services need from the outside world; adapters and fakes implement them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Protocol

from qc_tool.domain.exif_reader import ExifBlock
from qc_tool.domain.models import ExifSummary, FolderListing, ImageResult, RemoteFile, SiteInfo
from qc_tool.domain.pixel_reader import PixelSource

if TYPE_CHECKING:  # the checks' measures pull in numpy; a GPS scan never needs them
    from qc_tool.services.checks.measure import CachedMeasure

# (file, block or None, error or None): exactly one of block/error is set.
HeaderCallback = Callable[[RemoteFile, ExifBlock | None, str | None], None]
PixelCallback = Callable[[RemoteFile, PixelSource | None, str | None], None]


class ReadAdmission(Protocol):
    """Room for a photo's bytes before its reads start (the check pass's budget, budget.py).

    A connection asks ``try_admit`` while it has reads in flight and ``admit`` (which waits)
    only when it has none; a started read is never held back. ``requested`` tells of each
    batch of reads, ``finished`` of a photo reported, ``abandon`` of one that will not be.
    """

    def try_admit(self, key: RemoteFile) -> bool: ...

    def admit(self, key: RemoteFile) -> bool: ...

    def requested(self, key: RemoteFile, nbytes: int) -> None: ...

    def finished(self, key: RemoteFile) -> None: ...

    def abandon(self, key: RemoteFile) -> None: ...


class SiteConnection(Protocol):
    """One authenticated connection to where the sites live; used by one thread at a time."""

    def list_sites(self) -> list[SiteInfo]: ...

    def list_folders(self, site: str) -> list[str]: ...

    def list_images(self, site: str, folders: Sequence[str]) -> dict[str, FolderListing]:
        """Each folder's photos at any depth below it (``domain/listing.py``), other files
        and what was not searched. Raises RemoteError when a folder cannot be listed."""
        ...

    def read_headers(
        self,
        site: str,
        files: Iterable[RemoteFile],
        on_result: HeaderCallback,
        *,
        pipelined: bool = True,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> None:
        """Read each file's EXIF block, reporting each as it finishes.

        Raises RemoteUnavailable if the connection fails; files reported before that are final.
        """
        ...

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
        """Read each file's embedded preview (or the whole file), reporting each as it finishes.

        With ``admission``, a file's reads start only once it is admitted (its bytes fit the
        caller's budget), and it is told of each file's reads and end.
        """
        ...

    @property
    def files_opened(self) -> int: ...

    def release(self) -> None:
        """Let another thread take the connection over (never two at once)."""
        ...

    def close(self) -> None: ...


class Connector(Protocol):
    """Opens connections for one user; each ``connect`` is exactly one login attempt."""

    @property
    def server_id(self) -> str: ...

    def connect(self) -> SiteConnection: ...


class ResultCache(Protocol):
    """Per-file scan results keyed by (server, path, size, mtime)."""

    def get_many(
        self, server: str, files: Sequence[RemoteFile], prefix: str
    ) -> Mapping[str, ImageResult]: ...

    def put_many(self, server: str, results: Sequence[ImageResult], prefix: str) -> None: ...

    def prune(self, server: str, prefix: str, keep: Sequence[str]) -> int: ...

    def known(self, server: str, prefix: str) -> int:
        """How many results are cached for this site, whatever their freshness."""
        ...

    def preload(self, server: str, prefix: str) -> None:
        """Start reading this site's results now, for the next ``get_many`` of it (a hint:
        the answer is the same without it); the scan calls it before it lists the site."""
        ...


class MeasureCache(Protocol):
    """Per-file photo measures keyed by (server, path, size, mtime) and the measuring settings."""

    def get_measures(
        self, server: str, files: Sequence[RemoteFile], prefix: str, key: str
    ) -> Mapping[str, CachedMeasure]: ...

    def put_measures(
        self,
        server: str,
        measures: Sequence[tuple[RemoteFile, CachedMeasure]],
        prefix: str,
        key: str,
    ) -> None: ...


class HeaderParser(Protocol):
    """Parses batches of EXIF blocks elsewhere (other processes); None in scan_site means inline.

    Each result is the facts, or the reason the block could not be parsed.
    """

    def submit(self, blocks: list[ExifBlock]) -> Future[list[ExifSummary | str]]: ...


class NoCache:
    """The cache used with --no-cache: remembers nothing."""

    def get_many(
        self, server: str, files: Sequence[RemoteFile], prefix: str
    ) -> Mapping[str, ImageResult]:
        return {}

    def put_many(self, server: str, results: Sequence[ImageResult], prefix: str) -> None:
        return None

    def prune(self, server: str, prefix: str, keep: Sequence[str]) -> int:
        return 0

    def known(self, server: str, prefix: str) -> int:
        return 0

    def preload(self, server: str, prefix: str) -> None:
        return None

    def get_measures(
        self, server: str, files: Sequence[RemoteFile], prefix: str, key: str
    ) -> Mapping[str, CachedMeasure]:
        return {}

    def put_measures(
        self,
        server: str,
        measures: Sequence[tuple[RemoteFile, CachedMeasure]],
        prefix: str,
        key: str,
    ) -> None:
        return None
