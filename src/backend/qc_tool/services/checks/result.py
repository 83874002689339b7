"""The photo checks as people read them: the result document (with the verdict) and a table.

The one CSV of every photo is ``services/exports/tables.images_csv(document)``.
"""

from __future__ import annotations

from typing import Any, TextIO

from qc_tool.domain.checks.geo import position_outcome, site_centre
from qc_tool.domain.checks.settings import CheckSettings
from qc_tool.domain.coverage import Coverage, CoverageProfile, Shot, judge_coverage
from qc_tool.domain.models import TRUNCATED_BODY, ScanResult
from qc_tool.domain.sequence import find_gaps
from qc_tool.domain.structure import StructureReport
from qc_tool.domain.verdict import ChecksState, Verdict, judge_site
from qc_tool.services.checks.run import CheckReport

OUTSIDE_SITE_M = CheckSettings().outside_site_m  # the position check's distance


def site_coverage(
    scan: ScanResult, report: CheckReport | None = None, structure: StructureReport | None = None
) -> Coverage:
    """Coverage of the tower (domain/coverage.py) from the scan's positions and GPS altitudes,
    and, once the checks ran, each photo's height above take-off and camera yaw (DJI XMP,
    which the check pass reads; the GPS pass does not, see docs/performance.md)."""
    flight = report.flight if report is not None else {}
    shots = []
    for image in scan.images:
        if image.error not in (None, TRUNCATED_BODY):
            continue
        facts = flight.get(image.path)
        shots.append(
            Shot(
                image.path,
                image.folder,
                image.lat,
                image.lon,
                height_m=facts.height_m if facts else None,
                alt=image.alt,
                yaw=facts.camera_yaw if facts else None,
            )
        )
    profile = structure.coverage if structure is not None else CoverageProfile()
    return judge_coverage(shots, profile)


def site_verdict(
    scan: ScanResult,
    report: CheckReport | None = None,
    structure: StructureReport | None = None,
    checks_state: ChecksState | None = None,
    coverage: Coverage | None = None,
) -> Verdict:
    """The site's verdict (domain/verdict.py) from what a QC produced; coverage is judged
    here when not given."""
    state: ChecksState = checks_state or ("done" if report is not None else "not_run")
    checks = report.images if report is not None else None
    not_applied = report.not_applied if report is not None else ()
    if coverage is None:
        coverage = site_coverage(scan, report, structure)
    return judge_site(
        scan.images, checks, state, structure, not_applied=not_applied, coverage=coverage
    )


def result_document(
    scan: ScanResult,
    report: CheckReport | None = None,
    structure: StructureReport | None = None,
    checks_state: ChecksState | None = None,
) -> dict[str, Any]:
    """The result document of the API, the CLI and uploads: the scan, its sequence gaps, the
    site's structure against the site profile (None without one), the photo checks, and the
    verdict with each image's ``valid``, ``problems`` (the kinds it fails, worst first) and
    ``reasons`` (what is wrong, for the technician).

    ``checks_state`` says how far the checks got when ``report`` is not the end of them
    (running, failed, cancelled); by default a report means done and none means not run.
    """
    document = scan.to_json()
    document["gaps"] = [g.to_json() for g in find_gaps(scan.images)]
    document["structure"] = structure.to_json() if structure is not None else None
    flight = report.flight if report is not None else {}
    for image in document["images"]:
        facts = flight.get(image["path"])
        image["height_m"] = facts.height_m if facts else None
        image["gimbal"] = facts.gimbal_json() if facts else None
        image["rtk"] = facts.rtk_json() if facts else None
    if report is not None:
        merge_checks(document, report)
    coverage = site_coverage(scan, report, structure)
    document["coverage"] = coverage.to_json()
    verdict = site_verdict(scan, report, structure, checks_state, coverage)
    by_path = verdict.by_path()
    for image in document["images"]:
        judged = by_path[image["path"]]
        image["valid"] = judged.valid
        image["problems"] = list(judged.kinds)
        image["reasons"] = list(judged.messages)
    document["verdict"] = verdict.to_json()
    document["site_area"] = site_area(scan)
    document["site_area"]["rings"] = coverage.rings_json()  # each orbit's ring, for the maps
    return document


def site_area(scan: ScanResult, radius_m: float = OUTSIDE_SITE_M) -> dict[str, Any]:
    """Where the site is, for the maps: its centre, the position check's distance, and the
    located photos farther than that (with their distance), which the maps list instead of fitting.

    The centre and the rule are the position check's own (``site_centre`` over the photos the
    checks read, ``position_outcome``), so before the checks run the map already shows what
    the check will call outside the site, and after they ran the two agree photo for photo.
    """
    checked = [i for i in scan.images if i.error in (None, TRUNCATED_BODY)]
    centre = site_centre(
        [(i.lat, i.lon) if i.lat is not None and i.lon is not None else None for i in checked]
    )
    outside = []
    for image in scan.images:
        if centre is None or image.error is not None or image.lat is None or image.lon is None:
            continue  # the maps draw readable, located photos only
        outcome = position_outcome((image.lat, image.lon), centre, radius_m)
        if not outcome.ok:
            outside.append({"path": image.path, "distance_m": outcome.value})
    outside.sort(key=lambda o: (str(o["path"]).casefold(), o["path"]))
    return {
        "centre": list(centre) if centre is not None else None,
        "outside_site_m": radius_m,
        "outside": outside,
    }


def merge_checks(document: dict[str, Any], report: CheckReport) -> dict[str, Any]:
    """The scan result document with per-image ``checks`` and per-folder ``failures``."""
    by_name = {c.name: c for c in report.images}
    for image in document["images"]:
        checks = by_name.get(image["path"])
        image["checks"] = checks.to_json() if checks is not None else None
    failures = {name: dict(counts) for name, counts in report.folders.items()}
    for folder in document["folders"]:
        folder["failures"] = failures.get(folder["name"], {})
    document["check_stats"] = report.stats.to_json()
    return document


def print_check_stats(report: CheckReport, out: TextIO) -> None:
    """How the check pass went (what it judged is the verdict's to say)."""
    s = report.stats
    print(
        f"\nchecks: {len(report.images)} images in {s.seconds:.1f} s ({s.images_per_s:.1f} images/s,"
        f" {s.seconds_per_image * 1000:.0f} ms/image); measuring CPU "
        f"{s.cpu_seconds:.1f} s = {s.speedup:.2f}x wall; {s.preview_images} previews, "
        f"{s.band_images} bands, {s.full_images} whole files, {s.bytes_read / 1e6:.1f} MB read",
        file=out,
    )
    if s.workers_over_time:
        counts = ", ".join(f"{n} from {t:.1f} s" for t, n in s.workers_over_time)
        print(
            f"measuring at once: {counts}; this process and its workers {s.ours_cpu_seconds:.1f}"
            f" CPU s, at most {s.ours_peak_rss_mb:.0f} MB; photos waiting held at most "
            f"{s.held_peak_mb:.0f} of {s.memory_budget_mb:.0f} MB",
            file=out,
        )
