"""The photo checks of an unpacked upload, its CSV, and the ZIP sorted into valid/ and invalid/.

The unpacked photos are laid out like a site (``root/<site>/<folder>/<file>``), so the same
``scan_site`` and ``check_site`` as View QC run on them through the local-folder adapter.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import zipfile
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from pathlib import Path

from qc_tool.adapters.local import LocalConnector
from qc_tool.domain.checks.result import CheckOutcome, ImageChecks
from qc_tool.domain.models import FolderSummary, ImageResult, ScanResult
from qc_tool.services.check_report import checks_csv
from qc_tool.services.ports import NoCache
from qc_tool.services.site_analysis_service import ProgressCallback, ScanOptions, scan_site
from qc_tool.services.validation_service import (
    CheckOptions,
    CheckProgressCallback,
    CheckReport,
    check_site,
)
from qc_tool.services.zip_safety import PlannedPhoto

CSV_NAME = "checks.csv"
VALID, INVALID = "valid", "invalid"
COPY_CHUNK = 2**20
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def check_unpacked(
    root: Path,
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
    """The GPS/EXIF pass, then the pixel checks of ``root/site``; every photo gets a result.

    ``damaged`` (path -> reason) are the photos that could not be unpacked: they are in the
    result too, as unreadable.
    """
    connector = LocalConnector(root)
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
    _add_unreadable(scan, report)
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


def _add_unreadable(scan: ScanResult, report: CheckReport) -> None:
    """A photo the checks could not read still gets a result: invalid, with the reason."""
    by_name = {c.name: c for c in report.images}
    for image in scan.images:
        if image.path in by_name:
            continue
        reason = image.error or "unreadable"
        outcome = CheckOutcome("integrity", False, f"Unreadable: {reason}", "unreadable")
        by_name[image.path] = ImageChecks.of(image.path, (outcome,), "full", 0.0)
        report.folders.setdefault(image.folder, Counter()).update(["integrity"])
    report.images = [by_name[i.path] for i in scan.images]
    report.folders = {f.name: report.folders.get(f.name, Counter()) for f in scan.folders}


def upload_csv(scan: ScanResult, report: CheckReport) -> str:
    """Every photo with every measured value (checks_csv's columns), safe in a spreadsheet.

    Names come from the uploaded ZIP, so a cell such as ``=HYPERLINK(...)`` is written as text.
    """
    rows = csv.reader(io.StringIO(checks_csv(scan, report)))
    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:
        writer.writerow([_no_formula(cell) for cell in row])
    return out.getvalue()


def _no_formula(cell: str) -> str:
    if not cell.startswith(_FORMULA_START):
        return cell
    try:
        float(cell)  # a negative number is a number, not a formula
    except ValueError:
        return "'" + cell
    return cell


def write_sorted_zip(
    target: Path,
    photos: Path,
    planned: Mapping[str, PlannedPhoto],
    report: CheckReport,
    csv_text: str,
) -> int:
    """``checks.csv``, then each photo under ``valid/`` or ``invalid/``; returns the photo count.

    Photos are stored, not recompressed (JPEG data does not shrink), so they are the uploaded
    bytes; a photo that could not be unpacked is only in checks.csv.
    """
    partial = target.with_name(target.name + ".part")
    written = 0
    with zipfile.ZipFile(partial, "w") as out:
        out.writestr(CSV_NAME, csv_text, compress_type=zipfile.ZIP_DEFLATED)
        for checks in report.images:
            source = photos.joinpath(*checks.name.split("/"))
            photo = planned.get(checks.name)
            if photo is None or not source.is_file():
                continue
            verdict = VALID if checks.valid else INVALID
            info = zipfile.ZipInfo(f"{verdict}/{checks.name}", date_time=photo.date_time)
            info.compress_type = zipfile.ZIP_STORED
            info.file_size = source.stat().st_size
            with source.open("rb") as src, out.open(info, "w") as dst:
                shutil.copyfileobj(src, dst, COPY_CHUNK)
            written += 1
    os.replace(partial, target)
    return written
