"""SFTP tasks for the engine: read one image's EXIF header, list one folder."""

from __future__ import annotations

import stat
from typing import Any, TypeVar

from paramiko.sftp_attr import SFTPAttributes

from qc_tool.adapters.sftp.engine import Open, OpenDir, Read, ReadDir, Task
from qc_tool.domain import paths
from qc_tool.domain.exif_reader import ExifBlock, read_exif_block
from qc_tool.domain.listing import Entry, kind_of
from qc_tool.domain.pixel_reader import PixelSource, read_pixels
from qc_tool.domain.sparse import ReadProgram

T = TypeVar("T")

# READDIRs sent at once on one handle. Servers answer them in order (the protocol
# requires in-order processing per handle), so a 700-image folder lists in two round
# trips (OpenSSH sends 100 names a reply).
READDIR_AHEAD = 8


def program_task(path: str, program: ReadProgram[T]) -> Task[T]:
    """Open ``path`` and run a read program on it; each of its batches is sent at once."""
    (handle,) = yield [Open(path)]
    try:
        want = next(program)
        while True:
            data = yield [Read(handle, off, length) for off, length in want]
            want = program.send(data)
    except StopIteration as stop:
        result: T = stop.value
        return result


def header_task(path: str, size: int) -> Task[ExifBlock]:
    """The EXIF header of one image (GPS, time, camera)."""
    return program_task(path, read_exif_block(size))


def pixels_task(path: str, size: int, whole_file: bool) -> Task[PixelSource]:
    """The pixels the photo checks look at: the embedded preview, else the whole file."""
    return program_task(path, read_pixels(size, whole_file=whole_file))


def listing_task(
    path: str, limit: int | None = None, budget: paths.EntryBudget | None = None
) -> Task[list[SFTPAttributes]]:
    """List a directory with attributes (READDIR returns size and mtime with each name).

    More than ``limit`` entries (default: domain.paths.MAX_LISTING), or than ``budget`` has
    left when several listings share one, is an error (RemoteError), not a listing silently
    cut short, and it ends a directory that never reports its end. Attributes are the
    server's READDIR ones (lstat on OpenSSH): a symlink is neither a directory nor a file
    here, so nothing is ever listed or read through one.
    """
    if budget is None:
        budget = paths.EntryBudget(paths.MAX_LISTING if limit is None else limit, path)
    (handle,) = yield [OpenDir(path)]
    entries: list[SFTPAttributes] = []
    while True:
        batches = yield [ReadDir(handle) for _ in range(READDIR_AHEAD)]
        before = len(entries)
        for batch in batches:
            if batch is not None:
                entries.extend(e for e in batch if e.filename not in (".", ".."))
        budget.take(len(entries) - before)
        if any(batch is None for batch in batches):
            break
    return entries


def entry(attr: Any) -> Entry:
    """A READDIR entry as the folder walk sorts it (its kind from the lstat mode)."""
    kind = kind_of(getattr(attr, "st_mode", None))
    return Entry(attr.filename, kind, int(attr.st_size or 0), int(attr.st_mtime or 0))


def is_dir(attr: Any) -> bool:
    mode = getattr(attr, "st_mode", None)
    return mode is not None and stat.S_ISDIR(mode)
