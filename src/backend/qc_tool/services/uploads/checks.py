"""The photo checks of an unpacked upload, the ZIP sorted by the verdict, and its photos' pixels.

The unpacked photos are laid out like a site (``root/<site>/<folder>/<file>``), so the same
``scan_site`` and ``check_site`` as View QC run on them through the local-folder adapter, and
the same ``result_document`` judges them: the upload's page, its ``checks.csv`` and its
sorted ZIP all follow that document's verdict.
"""

from __future__ import annotations

import os
import shutil
import struct
import zipfile
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from pathlib import Path

from qc_tool.domain.models import FolderSummary, ImageResult, ScanResult
from qc_tool.domain.pixel_reader import PixelSource, read_pixels
from qc_tool.domain.sparse import run_program
from qc_tool.errors import NotFound, QCError, UnreadableImage
from qc_tool.services.checks.options import CheckOptions
from qc_tool.services.checks.run import CheckProgressCallback, CheckReport, check_site
from qc_tool.services.exports.document import Document
from qc_tool.services.ports import Connector, NoCache
from qc_tool.services.scan.site_analysis_service import ProgressCallback, ScanOptions, scan_site
from qc_tool.services.uploads.zip_safety import PlannedPhoto

CSV_NAME = "checks.csv"
VALID, INVALID = "valid", "invalid"
COPY_CHUNK = 2**20
LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature ... file name length, extra field length
LOCAL_SIGNATURE = b"PK\x03\x04"


def check_unpacked(
    connector: Connector,
    site: str,
    executor: Executor,
    *,
    workers: int,
    options: CheckOptions,
    damaged: Mapping[str, str],
    on_scan: ProgressCallback | None = None,
    on_checks: CheckProgressCallback | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> tuple[ScanResult, CheckReport]:
    """The GPS/EXIF pass, then the pixel checks of ``site`` as View QC runs them; ``connector``
    reads the unpacked photos' folder (the local-folder adapter, chosen by qc_tool.bootstrap).

    ``damaged`` (path -> reason) are the photos that could not be unpacked: they join the
    scan as unreadable, so the verdict judges them with the rest.
    """
    # One connection: the files are on the local disk, more threads would only share it.
    scan = scan_site(
        connector,
        NoCache(),
        site,
        options=ScanOptions(max_connections=1),
        on_progress=on_scan,
        cancelled=cancelled,
    )
    _add_damaged(scan, damaged)
    report = check_site(
        connector,
        scan,
        executor,
        options=options,
        on_progress=on_checks,
        cancelled=cancelled,
        workers=workers,
    )
    return scan, report


def _add_damaged(scan: ScanResult, damaged: Mapping[str, str]) -> None:
    """Photos that could not be unpacked join the scan as unreadable, in their folders."""
    if not damaged:
        return
    scan.images.extend(ImageResult(path, 0, 0, error=why) for path, why in damaged.items())
    scan.images.sort(key=lambda i: (i.folder, i.path))
    folders: dict[str, FolderSummary] = {}
    for image in scan.images:
        folders.setdefault(image.folder, FolderSummary(image.folder)).add(image)
    scan.folders = [folders[name] for name in sorted(folders)]


def write_sorted_zip(
    target: Path,
    photos: Path,
    planned: Mapping[str, PlannedPhoto],
    document: Document,
    csv_text: str,
) -> int:
    """``checks.csv``, then each photo under ``valid/`` or ``invalid/``; returns the photo count.

    The document's verdict decides: ``valid/`` holds exactly the photos whose ``valid`` is
    true, ``invalid/`` every other one (failed, or not judged). Photos are stored, not
    recompressed (JPEG data does not shrink), so they are the uploaded bytes; a photo that
    could not be unpacked is only in checks.csv.
    """
    partial = target.with_name(target.name + ".part")
    written = 0
    with zipfile.ZipFile(partial, "w") as out:
        out.writestr(CSV_NAME, csv_text, compress_type=zipfile.ZIP_DEFLATED)
        for image in document["images"]:
            path = image["path"]
            source = photos.joinpath(*path.split("/"))
            photo = planned.get(path)
            if photo is None or not source.is_file():
                continue
            verdict = VALID if image.get("valid") is True else INVALID
            info = zipfile.ZipInfo(f"{verdict}/{path}", date_time=photo.date_time)
            info.compress_type = zipfile.ZIP_STORED
            info.file_size = source.stat().st_size
            with source.open("rb") as src, out.open(info, "w") as dst:
                shutil.copyfileobj(src, dst, COPY_CHUNK)
            written += 1
    os.replace(partial, target)
    return written


def read_sorted_csv(sorted_zip: Path) -> bytes:
    """``checks.csv`` as the sorted ZIP holds it (the one copy kept)."""
    try:
        with zipfile.ZipFile(sorted_zip) as archive:
            return archive.read(CSV_NAME)
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise QCError("the results of this upload could not be read") from exc


def sorted_photo_source(
    sorted_zip: Path, path: str, max_bytes: int, whole_file: bool = False
) -> PixelSource:
    """A photo's pixels from the sorted ZIP, read by the checks' read program.

    Only a photo the ZIP holds can be read: ``path`` names a member (``valid/<path>`` or
    ``invalid/<path>``), never a file on disk. Members are stored uncompressed, so the read
    program's ranges are read in place (the embedded preview only, when there is one, else
    the whole photo: the checks' band of top rows is no picture to show); a photo listed
    larger than ``max_bytes`` is not read.
    """
    try:
        with zipfile.ZipFile(sorted_zip) as archive:
            info = _member(archive, path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise QCError("the photos of this upload could not be read") from exc
    if info.compress_type != zipfile.ZIP_STORED:
        raise UnreadableImage(f"{path}: not stored as uploaded")  # never written by us
    if info.file_size > max_bytes:
        raise UnreadableImage(
            f"{path}: too large to preview ({info.file_size // 2**20} MB; previews are made"
            f" from files up to {max_bytes // 2**20} MB)"
        )
    with sorted_zip.open("rb") as archive_file:
        fd = archive_file.fileno()
        start = _data_offset(fd, info)
        end = start + info.file_size

        def read_at(offset: int, length: int) -> bytes:
            at = start + offset
            return os.pread(fd, max(0, min(length, end - at)), at)

        try:
            source = run_program(read_pixels(info.file_size, whole_file=whole_file), read_at)
            if source.source == "band":
                source = run_program(read_pixels(info.file_size, whole_file=True), read_at)
            return source
        except OSError as exc:
            raise QCError("the photos of this upload could not be read") from exc


def _member(archive: zipfile.ZipFile, path: str) -> zipfile.ZipInfo:
    for verdict in (VALID, INVALID):
        try:
            return archive.getinfo(f"{verdict}/{path}")
        except KeyError:
            continue
    raise NotFound("no such photo in this upload (a photo damaged in the ZIP has no preview)")


def _data_offset(fd: int, info: zipfile.ZipInfo) -> int:
    """Where a member's bytes start: after its local header, whose lengths may differ from
    the central directory's."""
    header = os.pread(fd, LOCAL_HEADER.size, info.header_offset)
    if len(header) < LOCAL_HEADER.size:
        raise QCError("the photos of this upload could not be read")
    signature, name_len, extra_len = LOCAL_HEADER.unpack(header)
    if signature != LOCAL_SIGNATURE:
        raise QCError("the photos of this upload could not be read")
    offset: int = info.header_offset + LOCAL_HEADER.size + name_len + extra_len
    return offset
