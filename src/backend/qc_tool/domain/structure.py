"""A site's folders against what a site must hold: expected folders, enough photos in each.

An inspection is flown to a plan (tower top, each antenna sector, the cabinet, the
compound); a folder that is missing or holds a handful of photos means a part of the
site was not covered, which no per-photo check can see.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .coverage import CoverageProfile, CoverageProfileError


class StructureProfileError(ValueError):
    """A site profile that cannot be used, with the reason."""


@dataclass(frozen=True, slots=True)
class ExpectedFolder:
    pattern: str  # a folder name, or a shell pattern such as "Sector *"
    min_images: int

    def matches(self, name: str) -> bool:
        return fnmatch.fnmatchcase(name.casefold(), self.pattern.casefold())


@dataclass(frozen=True, slots=True)
class StructureProfile:
    folders: tuple[ExpectedFolder, ...] = ()
    min_images_per_folder: int = 0  # for every folder, expected or not
    coverage: CoverageProfile = field(default_factory=CoverageProfile)  # tower, orbits, limits

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StructureProfile:
        """From ``{"min_images_per_folder": 20, "folders": ["Tower top", {"name": "Sector *",
        "min_images": 30}]}``; anything else is a StructureProfileError saying what is wrong."""
        if not isinstance(data, Mapping):
            raise StructureProfileError("a site profile is a JSON object")
        unknown = set(data) - {"folders", "min_images_per_folder"} - CoverageProfile.KEYS
        if unknown:
            raise StructureProfileError(f"unknown keys: {', '.join(sorted(unknown))}")
        try:
            coverage = CoverageProfile.from_dict(data)
        except CoverageProfileError as exc:
            raise StructureProfileError(str(exc)) from exc
        default = _count(data.get("min_images_per_folder", 0), "min_images_per_folder")
        folders = data.get("folders", [])
        if not isinstance(folders, list):
            raise StructureProfileError("folders must be a list")
        expected = []
        for item in folders:
            if isinstance(item, str) and item.strip():
                expected.append(ExpectedFolder(item.strip(), default))
            elif isinstance(item, Mapping) and isinstance(item.get("name"), str):
                minimum = _count(item.get("min_images", default), f"min_images of {item['name']}")
                expected.append(ExpectedFolder(item["name"].strip(), minimum))
            else:
                raise StructureProfileError(f"a folder is a name or {{name, min_images}}: {item!r}")
        return cls(tuple(expected), default, coverage)


@dataclass(frozen=True, slots=True)
class StructureReport:
    missing: tuple[str, ...] = ()  # expected folders (patterns) no folder matches
    too_few: tuple[tuple[str, int, int], ...] = ()  # (folder, images, minimum)
    unexpected: tuple[str, ...] = ()  # folders no expectation names (reported, not failed)
    messages: tuple[str, ...] = field(default=())
    # The profile's coverage settings travel with its findings to the result document.
    coverage: CoverageProfile = field(default_factory=CoverageProfile, compare=False)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.too_few

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "missing": list(self.missing),
            "too_few": [{"folder": f, "images": n, "minimum": m} for f, n, m in self.too_few],
            "unexpected": list(self.unexpected),
            "messages": list(self.messages),
        }


def check_structure(
    profile: StructureProfile, images_per_folder: Mapping[str, int]
) -> StructureReport:
    """Which expected folders are missing and which folders hold too few photos."""
    missing, too_few, messages = [], [], []
    for expected in profile.folders:
        if not any(expected.matches(name) for name in images_per_folder):
            missing.append(expected.pattern)
            messages.append(f"Missing folder: {expected.pattern}")
    for name, count in images_per_folder.items():
        minimum = max(
            [e.min_images for e in profile.folders if e.matches(name)]
            or [profile.min_images_per_folder]
        )
        if count < minimum:
            too_few.append((name, count, minimum))
            messages.append(f"Folder {name} has {count} photos (at least {minimum} expected)")
    unexpected = tuple(
        name
        for name in images_per_folder
        if profile.folders and not any(e.matches(name) for e in profile.folders)
    )
    return StructureReport(
        tuple(missing), tuple(too_few), unexpected, tuple(messages), profile.coverage
    )


def _count(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise StructureProfileError(f"{what} must be a whole number of 0 or more, not {value!r}")
    return value
