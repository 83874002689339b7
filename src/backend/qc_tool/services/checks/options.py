"""What a check pass is asked to do, and the files and flags that say it.

Apart from ``run.py`` so that the CLI and the bootstrap can name it without importing numpy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from qc_tool.domain.checks.rules import CaptureProfile, ProfileError
from qc_tool.domain.checks.settings import CheckSettings
from qc_tool.errors import BadRequest

MB = 1024 * 1024
DEFAULT_MEMORY_BUDGET = 128 * MB  # QC_CHECK_MEMORY_MB


@dataclass(frozen=True, slots=True)
class CheckOptions:
    settings: CheckSettings = field(default_factory=CheckSettings)
    profile: CaptureProfile | None = None
    min_resolution: tuple[int, int] | None = None  # main image, e.g. (4000, 3000); None: off
    whole_file: bool = False  # read whole files (full decode for integrity) instead of previews
    max_connections: int = 4
    memory_budget: int = DEFAULT_MEMORY_BUDGET  # bytes of photos read and not yet measured


def load_profile(path: Path) -> CaptureProfile:
    """A capture-rule profile from a JSON file; a bad one is a clear error, not a traceback."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return CaptureProfile.from_dict(data)
    except (OSError, json.JSONDecodeError, ProfileError) as exc:
        raise BadRequest(f"cannot use the profile {path}: {exc}") from exc


def parse_resolution(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` (e.g. 4000x3000) as numbers; anything else is a clear error."""
    width, sep, height = text.strip().lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit() or not int(width) or not int(height):
        raise BadRequest(f"a minimum resolution is WIDTHxHEIGHT, e.g. 4000x3000, not {text!r}")
    return int(width), int(height)
