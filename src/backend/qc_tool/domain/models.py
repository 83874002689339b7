"""The values that flow through a scan: files seen on the server, per-image results, totals."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# The error of an image whose header (and position) was read but whose end is missing:
# still worth checking, unlike one that could not be read at all.
TRUNCATED_BODY = "truncated: the file ends before its end-of-image marker"


@dataclass(frozen=True, slots=True)
class RemoteFile:
    """One image as listed on the server: its path inside the site, size and mtime."""

    path: str  # "<folder>/<file>", always with forward slashes; names as paths.display_name shows
    size: int
    mtime: int

    @property
    def folder(self) -> str:
        return self.path.split("/", 1)[0]


@dataclass(frozen=True, slots=True)
class OtherFile:
    """A file of a folder that is not a photo (a video, a flight log, text): shown, never read."""

    path: str  # "<folder>/<sub>/<file>", as RemoteFile.path
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size}


@dataclass(frozen=True, slots=True)
class NotSearched:
    """A directory or link below a folder that was not looked into, and why (too deep, a link,
    a name that cannot be sent back, the server refused to list it)."""

    path: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "reason": self.reason}


@dataclass(slots=True)
class FolderListing:
    """What listing one top-level folder (and the folders below it) found.

    ``others`` and ``not_searched`` keep their first listing.MAX_SHOWN entries by path;
    ``other_files`` counts every other file.
    """

    photos: list[RemoteFile] = field(default_factory=list)
    others: list[OtherFile] = field(default_factory=list)
    other_files: int = 0
    not_searched: list[NotSearched] = field(default_factory=list)
    directories: int = 0  # directories listed, the folder itself included


@dataclass(frozen=True, slots=True)
class ExifSummary:
    """What the header reader extracts from one image; GPS fields are None when missing."""

    lat: float | None = None
    lon: float | None = None
    alt: float | None = None
    taken: str | None = None  # DateTimeOriginal as ISO 8601, no zone (cameras record none)
    camera: str | None = None  # "Make Model"
    gps_note: str | None = None  # why there is no position: no tags, 0/0, out of range
    iso: int | None = None
    exposure_time: float | None = None  # seconds


@dataclass(frozen=True, slots=True)
class ImageResult:
    """The scan result of one image, as it appears in the result document."""

    path: str
    size: int
    mtime: int
    lat: float | None = None
    lon: float | None = None
    alt: float | None = None
    taken: str | None = None
    camera: str | None = None
    error: str | None = None  # the image could not be read: why
    gps_note: str | None = None  # the image was read but has no usable position: why
    iso: int | None = None
    exposure_time: float | None = None  # seconds
    bytes_read: int = 0
    cached: bool = False

    @property
    def folder(self) -> str:
        return self.path.split("/", 1)[0]

    @property
    def file(self) -> RemoteFile:
        """The file this result is of, as listed."""
        return RemoteFile(self.path, self.size, self.mtime)

    @property
    def has_gps(self) -> bool:
        return self.lat is not None and self.lon is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "lat": self.lat,
            "lon": self.lon,
            "alt": self.alt,
            "taken": self.taken,
            "camera": self.camera,
            "error": self.error,
            "gps_note": self.gps_note,
            "iso": self.iso,
            "exposure_time": self.exposure_time,
            "size": self.size,
            "cached": self.cached,
        }


@dataclass(slots=True)
class FolderSummary:
    name: str  # as domain.paths.display_name shows it
    images: int = 0
    gps_points: int = 0
    missing_gps: int = 0
    errors: int = 0
    skipped: str | None = None  # the folder was not read: why (its name cannot be used)
    in_subfolders: int = 0  # of ``images``, those found in folders below this one
    other_files: int = 0  # files that are not photos, at any depth below the folder
    others: list[OtherFile] = field(default_factory=list)  # the first MAX_SHOWN of them
    not_searched: list[NotSearched] = field(default_factory=list)  # the first MAX_SHOWN

    def add(self, image: ImageResult) -> None:
        self.images += 1
        if image.path.count("/") > 1:
            self.in_subfolders += 1
        if image.error is not None:
            self.errors += 1
        elif image.has_gps:
            self.gps_points += 1
        else:
            self.missing_gps += 1

    def take_listing(self, listing: FolderListing) -> None:
        """Add what the listing found besides photos: other files, what was not searched."""
        self.other_files = listing.other_files
        self.others = list(listing.others)
        self.not_searched = list(listing.not_searched)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        if self.skipped is None:  # only a skipped folder carries the key
            del out["skipped"]
        return out


@dataclass(slots=True)
class ScanStats:
    seconds: float = 0.0
    images_per_s: float = 0.0
    bytes_read: int = 0
    connections: int = 0
    cached: int = 0
    files_opened: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class ScanResult:
    site: str
    folders: list[FolderSummary] = field(default_factory=list)
    images: list[ImageResult] = field(default_factory=list)
    stats: ScanStats = field(default_factory=ScanStats)

    @property
    def gps_points(self) -> int:
        return sum(f.gps_points for f in self.folders)

    @property
    def missing_gps(self) -> int:
        return sum(f.missing_gps for f in self.folders)

    @property
    def errors(self) -> int:
        return sum(f.errors for f in self.folders)

    @property
    def other_files(self) -> int:
        return sum(f.other_files for f in self.folders)

    def to_json(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "folders": [f.to_json() for f in self.folders],
            "images": [i.to_json() for i in self.images],
            "stats": self.stats.to_json(),
        }


@dataclass(frozen=True, slots=True)
class SiteInfo:
    name: str  # as domain.paths.display_name shows it
    folders: int
    problem: str | None = None  # why the site cannot be opened (its name cannot be used)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "folders": self.folders}
        if self.problem is not None:  # only on a site that cannot be opened
            out["problem"] = self.problem
        return out


@dataclass(frozen=True, slots=True)
class Progress:
    """A progress report during a scan: counts so far, and the image just finished."""

    done: int
    total: int
    gps_points: int
    folder: str | None = None
    image: ImageResult | None = None
    folder_total: int = 0  # images of ``folder``


@dataclass(frozen=True, slots=True)
class SiteRun:
    """A site's last QC, kept so the sites page can show its verdict without a scan."""

    site: str
    finished: str  # ISO 8601, UTC
    decision: str  # the verdict's: pass | refly | incomplete
    detail: str  # the verdict's headline after its label
    total: int
    invalid: int
    unchecked: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
