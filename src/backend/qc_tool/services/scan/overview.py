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
from qc_tool.domain.verdict import Verdict
from qc_tool.errors import BadRequest


def load_site_profile(path: Path) -> StructureProfile:
    """The site profile (expected folders, minimum photos) from a JSON file, or a clear error."""
    try:
        return StructureProfile.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError, StructureProfileError) as exc:
        raise BadRequest(f"cannot use the site profile {path}: {exc}") from exc


def site_structure(profile: StructureProfile, scan: ScanResult) -> StructureReport:
    # A folder skipped for its name was not read: it is neither short of photos nor expected.
    counts = {f.name: f.images for f in scan.folders if f.skipped is None}
    return check_structure(profile, counts)


def site_run(site: str, verdict: Verdict) -> SiteRun:
    """The summary the sites page shows for a finished QC: its verdict, as the page had it."""
    return SiteRun(
        site=site,
        finished=datetime.now(UTC).isoformat(timespec="seconds"),
        decision=verdict.decision,
        detail=verdict.detail,
        total=verdict.total,
        invalid=verdict.invalid,
        unchecked=verdict.unchecked,
    )
