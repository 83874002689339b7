"""Look inside an uploaded ZIP before anything is unpacked, then unpack only its photos, safely.

Everything a hostile ZIP could do is refused from its directory alone, before one byte is
decompressed: the file's size, the entry count (read from the end record, before Python
parses the directory), the photos' declared total, each entry's compression ratio, names
that would leave the target folder, links, special files, duplicates, overlapping entries and
encryption. Unpacking then trusts none of the declared sizes: each photo is streamed into a
private folder and counted against a byte budget. A photo whose data is damaged costs that
photo (its reason is kept), never the batch. The folder rule is in docs/uploads.md.

Written on top of the standard ``zipfile`` because it trusts what a ZIP declares (sizes, the
directory) and checks none of the above before extracting, and no maintained library does.
"""

from __future__ import annotations

import itertools
import logging
import lzma
import os
import re
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Self

from qc_tool.domain.paths import IMAGE_SUFFIXES_TEXT, is_image_name, safe_name
from qc_tool.errors import PathRejected, UploadRefused, UploadTooLarge

log = logging.getLogger(__name__)

MB = 2**20
TOP_LEVEL = "(top level)"  # the folder of photos that sit at the top of the ZIP
FOLDER_JOIN = " - "  # deeper directory levels joined into one folder name
CHUNK = MB  # unpacking streams this much at a time
# A directory entry is 46 bytes plus its name and extra fields; real ones are ~100-200 bytes.
# A directory larger than this per allowed entry is refused before Python parses it.
DIRECTORY_BYTES_PER_ENTRY = 1024
LOCAL_HEADER = 30  # fixed part of a local file header

_END = struct.Struct("<4s4H2LH")  # end of central directory record
_END64_LOCATOR = struct.Struct("<4sLQL")
_END64 = struct.Struct("<4sQ2H2L4Q")
_DRIVE = re.compile(r"^[A-Za-z]:")
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError, ValueError)


@dataclass(frozen=True, slots=True)
class ZipLimits:
    """What an upload may be: QC_UPLOAD_MAX_MB, QC_UPLOAD_MAX_FILES, QC_UPLOAD_MAX_TOTAL_MB."""

    max_zip_bytes: int = 2048 * MB  # the ZIP file as uploaded (~280 DJI photos of 7 MB)
    max_entries: int = 5000  # files and folders in it
    max_photo_bytes: int = 2560 * MB  # its photos, unpacked (JPEG data barely compresses)
    # Photos barely compress (JPEG data is already compressed), a zip bomb's entries ~1000:1.
    max_ratio: float = 100.0
    ratio_floor: int = MB  # smaller entries are not held to the ratio: they cannot hurt

    @classmethod
    def of_megabytes(cls, max_zip_mb: float, max_entries: int, max_photo_mb: float) -> ZipLimits:
        """The limits as the settings give them: sizes in MB."""
        return cls(int(max_zip_mb * MB), max_entries, int(max_photo_mb * MB))


@dataclass(frozen=True, slots=True)
class PlannedPhoto:
    """A photo that will be unpacked: its name in the ZIP and its place in the checked layout."""

    entry: str
    path: str  # "<folder>/<file>", as the results and the sorted ZIP name it
    size: int  # declared uncompressed size (not trusted while unpacking)
    date_time: tuple[int, int, int, int, int, int]


@dataclass(frozen=True, slots=True)
class SkippedEntry:
    entry: str
    reason: str


@dataclass(frozen=True, slots=True)
class ZipPlan:
    """What inspection found: the photos to unpack and the entries left out (with why)."""

    photos: tuple[PlannedPhoto, ...]
    skipped: tuple[SkippedEntry, ...]
    entries: int
    photo_bytes: int  # declared


class CheckedZip:
    """An uploaded ZIP that passed inspection; ``unpack`` writes its photos.

    Construction does the whole inspection and raises UploadRefused with a specific message.
    """

    def __init__(self, fileobj: IO[bytes], limits: ZipLimits) -> None:
        self._limits = limits
        self._zip = _open(fileobj, limits)
        try:
            infos = self._zip.infolist()
            if len(infos) > limits.max_entries:
                raise UploadRefused(_too_many(len(infos), limits))
            self.plan = _plan(infos, limits)
        except BaseException:
            self._zip.close()
            raise
        self._infos = {i.filename: i for i in infos}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()

    def unpack(self, dest: Path) -> dict[str, str]:
        """Write each photo to ``dest/<folder>/<file>``; returns {path: reason} of damaged ones.

        ``dest`` must be a private folder that does not exist yet. Raises UploadRefused when the
        photos' actual bytes exceed the budget, whatever their entries declared.
        """
        dest.mkdir(mode=0o700)
        budget = _Budget(self._limits.max_photo_bytes)
        damaged: dict[str, str] = {}
        for photo in self.plan.photos:
            target = dest.joinpath(*photo.path.split("/"))
            target.parent.mkdir(mode=0o700, exist_ok=True)
            try:
                problem = _unpack_one(self._zip, self._infos[photo.entry], target, budget)
            except BaseException:
                target.unlink(missing_ok=True)  # no partial photo stays behind
                raise
            if problem is not None:
                target.unlink(missing_ok=True)
                damaged[photo.path] = problem
                log.info("upload: %s not unpacked: %s", photo.entry, problem)
        return damaged


def inspect_zip(fileobj: IO[bytes], limits: ZipLimits) -> ZipPlan:
    """The plan of an uploaded ZIP; raises UploadRefused with the rule it broke."""
    with CheckedZip(fileobj, limits) as checked:
        return checked.plan


# -- before Python parses the directory ------------------------------------------------------


def _open(fileobj: IO[bytes], limits: ZipLimits) -> zipfile.ZipFile:
    size = fileobj.seek(0, os.SEEK_END)
    if size > limits.max_zip_bytes:
        limit = size_text(limits.max_zip_bytes)
        raise UploadTooLarge(
            f"The ZIP is {size_text(size)}; uploads of at most {limit} are accepted."
        )
    if size == 0:
        raise UploadRefused("The uploaded file is empty.")
    entries, directory_bytes = _declared_directory(fileobj, size)
    if entries > limits.max_entries:
        raise UploadRefused(_too_many(entries, limits))
    if directory_bytes > limits.max_entries * DIRECTORY_BYTES_PER_ENTRY:
        raise UploadRefused(
            f"The ZIP's table of contents is {size_text(directory_bytes)}, far more than "
            f"{limits.max_entries} entries need: it is refused."
        )
    fileobj.seek(0)
    try:
        return zipfile.ZipFile(fileobj)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, struct.error, EOFError) as exc:
        log.info("upload: unreadable ZIP directory: %s", exc)
        raise UploadRefused(
            "The ZIP is damaged: its table of contents cannot be read. Create the ZIP again."
        ) from exc


def _declared_directory(fileobj: IO[bytes], size: int) -> tuple[int, int]:
    """(entries, directory bytes) as the end record declares them, read as zipfile would."""
    tail_size = min(size, _END.size + 0xFFFF)  # the record, then a comment of up to 64 KB
    fileobj.seek(size - tail_size)
    tail = fileobj.read(tail_size)
    at = len(tail) - _END.size
    if at < 0 or tail[at : at + 4] != b"PK\x05\x06":
        at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + _END.size > len(tail):
        raise UploadRefused(
            "This file is not a ZIP archive (or its end is missing: was the upload cut short?)."
        )
    _, disk, directory_disk, _, entries, directory_bytes, _, _ = _END.unpack_from(tail, at)
    if disk or directory_disk:
        raise UploadRefused("Split (multi-part) ZIP archives are not accepted: upload one file.")
    if entries == 0xFFFF or directory_bytes == 0xFFFFFFFF:
        entries, directory_bytes = _zip64_directory(fileobj, size - tail_size + at)
    return entries, directory_bytes


def _zip64_directory(fileobj: IO[bytes], end_at: int) -> tuple[int, int]:
    if end_at < _END64_LOCATOR.size:
        raise UploadRefused("The ZIP is damaged: its ZIP64 end record is missing.")
    fileobj.seek(end_at - _END64_LOCATOR.size)
    locator = fileobj.read(_END64_LOCATOR.size)
    signature, _, record_at, _ = _END64_LOCATOR.unpack(locator)
    if signature != b"PK\x06\x07":
        raise UploadRefused("The ZIP is damaged: its ZIP64 end record is missing.")
    fileobj.seek(record_at)
    record = fileobj.read(_END64.size)
    if len(record) != _END64.size or record[:4] != b"PK\x06\x06":
        raise UploadRefused("The ZIP is damaged: its ZIP64 end record cannot be read.")
    fields = _END64.unpack(record)
    return fields[7], fields[8]


# -- the directory, entry by entry -------------------------------------------------------------


def _plan(infos: list[zipfile.ZipInfo], limits: ZipLimits) -> ZipPlan:
    seen: set[str] = set()
    photos: list[zipfile.ZipInfo] = []
    skipped: list[SkippedEntry] = []
    for info in infos:
        problem = _entry_problem(info, limits)
        if problem is None and info.filename in seen:
            problem = "appears twice in the ZIP"
        if problem is not None:
            raise UploadRefused(f"Refused: the entry {_shown(info.orig_filename)} {problem}.")
        seen.add(info.filename)
        if info.is_dir():
            continue
        reason = _skip_reason(info.filename)
        if reason is not None:
            skipped.append(SkippedEntry(info.filename, reason))
        else:
            photos.append(info)
    _refuse_overlaps(infos)
    if not photos:
        raise UploadRefused(
            f"The ZIP holds no photos ({IMAGE_SUFFIXES_TEXT})"
            + (f"; it holds {len(skipped)} other file(s)." if skipped else ".")
        )
    total = sum(i.file_size for i in photos)
    if total > limits.max_photo_bytes:
        raise UploadRefused(
            f"The photos in this ZIP unpack to {size_text(total)}; at most "
            f"{size_text(limits.max_photo_bytes)} are accepted. Split the batch into smaller ZIPs."
        )
    paths = layout([i.filename for i in photos])
    _refuse_collisions(paths)
    planned = tuple(
        PlannedPhoto(i.filename, paths[i.filename], i.file_size, i.date_time) for i in photos
    )
    return ZipPlan(planned, tuple(skipped), len(infos), total)


def _entry_problem(info: zipfile.ZipInfo, limits: ZipLimits) -> str | None:
    """Why this entry makes the whole ZIP unacceptable, or None."""
    name = info.orig_filename
    if "\x00" in name:
        return "has a NUL character in its name"
    if "\\" in name:
        return "uses backslashes in its path (paths in a ZIP use '/')"
    if name.startswith("/"):
        return "has an absolute path"
    if _DRIVE.match(name):
        return "starts with a drive letter"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "has control characters in its name"
    parts = name.rstrip("/").split("/")
    if ".." in parts:
        return "points outside the folder it would be unpacked into ('..')"
    if any(p in ("", ".") for p in parts):
        return "has an empty or '.' path component"
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        return "is a symbolic link"
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        return "is a special file (device, pipe or socket)"
    if info.flag_bits & 0x1:
        return "is encrypted (password-protected ZIPs are not accepted)"
    stored = max(info.compress_size, 1)
    if info.file_size > limits.ratio_floor and info.file_size > limits.max_ratio * stored:
        ratio = info.file_size / stored
        sizes = f"{size_text(info.compress_size)} to {size_text(info.file_size)}"
        return (
            f"expands {ratio:,.0f} times ({sizes}; "
            f"at most {limits.max_ratio:.0f} times is accepted): this looks like a zip bomb"
        )
    return None


NOT_A_PHOTO = "not a photo (JPEG, HEIC, HEIF or DNG)"


def _skip_reason(name: str) -> str | None:
    """Why a file is left out (not an error), or None for a photo to check."""
    parts = name.split("/")
    if parts[0] == "__MACOSX":
        return "macOS metadata"
    if any(p.startswith(".") for p in parts):
        return "hidden file"
    if not is_image_name(parts[-1]):
        return NOT_A_PHOTO
    return None


def _refuse_overlaps(infos: list[zipfile.ZipInfo]) -> None:
    """Entries that share bytes (the trick of the densest zip bombs) are refused."""
    ordered = sorted(infos, key=lambda i: i.header_offset)
    for first, second in itertools.pairwise(ordered):
        if second.header_offset < first.header_offset + LOCAL_HEADER + first.compress_size:
            raise UploadRefused(
                f"Refused: the entries {_shown(first.filename)} and {_shown(second.filename)} "
                "overlap in the file (a zip bomb trick)."
            )


def layout(entries: list[str]) -> dict[str, str]:
    """Photo entry name -> "<folder>/<file>": the site layout the checks read.

    The directories every photo shares (the folder a zip tool wraps around everything) are
    dropped, keeping at least each photo's innermost one; the remaining levels are joined with
    " - " into one folder name; photos at the top of the ZIP go to "(top level)".
    """
    split = {e: e.split("/") for e in entries}
    dirs = [parts[:-1] for parts in split.values()]
    shared = 0
    if dirs:
        shortest = min(len(d) for d in dirs)
        while shared < shortest - 1 and len({tuple(d[: shared + 1]) for d in dirs}) == 1:
            shared += 1
    out: dict[str, str] = {}
    for entry, parts in split.items():
        folder = FOLDER_JOIN.join(parts[shared:-1]) or TOP_LEVEL
        try:
            out[entry] = f"{safe_name(folder, 'folder')}/{safe_name(parts[-1], 'file name')}"
        except PathRejected as exc:
            raise UploadRefused(f"Refused: the entry {_shown(entry)}: {exc.message}.") from exc
    return out


def _refuse_collisions(paths: dict[str, str]) -> None:
    owner: dict[str, str] = {}
    for entry, path in paths.items():
        if path in owner:
            raise UploadRefused(
                f"Refused: {_shown(owner[path])} and {_shown(entry)} would both be checked as "
                f"{_shown(path)}. Rename one of them."
            )
        owner[path] = entry


# -- unpacking -------------------------------------------------------------------------------


class _Budget:
    """The bytes all photos may unpack to, counted as they are written."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def spend(self, n: int) -> None:
        self.used += n
        if self.used > self.limit:
            raise UploadRefused(
                f"The photos unpack to more than {size_text(self.limit)}, more than the ZIP "
                "declared: it is refused."
            )


def _unpack_one(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: _Budget
) -> str | None:
    """Stream one entry to ``target``; the reason it is damaged, or None."""
    try:
        source = archive.open(info)
    except NotImplementedError:
        return f"packed with a compression method this tool cannot unpack ({info.compress_type})"
    except _READ_ERRORS as exc:
        return _damage(exc)
    # O_EXCL | O_NOFOLLOW: never write through anything already at the target.
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with source, open(fd, "wb") as out:
        written = 0
        while True:
            try:
                chunk = source.read(CHUNK)
            except _READ_ERRORS as exc:
                return _damage(exc)
            if not chunk:
                return None
            written += len(chunk)
            if written > info.file_size:
                return "damaged in the ZIP: it holds more data than its entry declares"
            budget.spend(len(chunk))
            out.write(chunk)


def _damage(exc: BaseException) -> str:
    if "CRC" in str(exc):
        return "damaged in the ZIP: its data fails the CRC check"
    return "damaged in the ZIP: its data cannot be unpacked"


def _too_many(entries: int, limits: ZipLimits) -> str:
    return (
        f"The ZIP holds {entries:,} entries; at most {limits.max_entries:,} are accepted. "
        "Split the batch into smaller ZIPs."
    )


def size_text(n: int) -> str:
    """A byte count as people read it: 512.0 MB, 45.4 KB, 900 bytes."""
    if n >= MB:
        return f"{n / MB:,.1f} MB"
    return f"{n / 1024:,.1f} KB" if n >= 1024 else f"{n} bytes"


def _shown(name: str) -> str:
    """A name from the ZIP as a message shows it: quoted, escaped, not too long."""
    text = repr(name)
    return text if len(text) <= 120 else text[:117] + "..."
