"""A site at a glance: its structure against the site profile, and the summary of its last QC."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from qc_tool.domain.models import ScanResult, SiteRun
from qc_tool.domain.structure import (
    StructureProfile,
    StructureProfileError,
    StructureReport,
    check_structure,
)
from qc_tool.errors import BadRequest
from qc_tool.services.validation_service import CheckReport


def load_site_profile(path: Path) -> StructureProfile:
    """The site profile (expected folders, minimum photos) from a JSON file, or a clear error."""
    try:
        return StructureProfile.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError, StructureProfileError) as exc:
        raise BadRequest(f"cannot use the site profile {path}: {exc}") from exc


def site_structure(profile: StructureProfile, scan: ScanResult) -> StructureReport:
    return check_structure(profile, {f.name: f.images for f in scan.folders})


def site_run(
    scan: ScanResult, report: CheckReport | None, structure: StructureReport | None
) -> SiteRun:
    """The summary the sites page shows for a finished QC."""
    return SiteRun(
        site=scan.site,
        finished=datetime.now(UTC).isoformat(timespec="seconds"),
        images=len(scan.images),
        gps_points=scan.gps_points,
        missing_gps=sum(f.missing_gps for f in scan.folders),
        unreadable=sum(f.errors for f in scan.folders),
        checked=len(report.images) if report is not None else 0,
        failed=sum(not c.valid for c in report.images) if report is not None else 0,
        structure_ok=structure.ok if structure is not None else None,
    )
