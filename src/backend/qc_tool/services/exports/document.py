"""The result document as the exports read it: one ``Photo`` per image, with why it failed.

The document is ``ScanResult.to_json()``, optionally merged with the photo checks
(``check_report.merge_checks``). Every export works from it with or without checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from qc_tool.errors import NotFound

Document = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Photo:
    """One image of the document, with the facts every export needs."""

    path: str
    lat: float | None
    lon: float | None
    alt: float | None
    taken: str | None  # ISO 8601, camera clock, no zone
    camera: str | None
    image: Mapping[str, Any]  # the document's dict, for the exports that show every field

    @property
    def folder(self) -> str:
        return self.path.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def valid(self) -> bool | None:
        """The verdict's: True, False, or None when the photo was not judged."""
        valid: bool | None = self.image.get("valid")
        return valid

    @property
    def rejected(self) -> bool:
        return self.image.get("valid") is False

    @property
    def position(self) -> tuple[float, float] | None:
        """(lat, lon), or None without a usable GPS position."""
        if self.lat is None or self.lon is None:
            return None
        return self.lat, self.lon

    @property
    def checks(self) -> Mapping[str, Any] | None:
        checks: Mapping[str, Any] | None = self.image.get("checks")
        return checks

    @property
    def kinds(self) -> list[str]:
        """What is wrong, as the verdict's kinds, worst first."""
        return list(self.image.get("problems") or [])

    @property
    def messages(self) -> list[str]:
        """What is wrong, written for the technician (the verdict's reasons)."""
        return list(self.image.get("reasons") or [])

    @property
    def reasons(self) -> str:
        return "; ".join(self.messages)


def photos(document: Document) -> list[Photo]:
    """Every image of the document, in its order."""
    return [
        Photo(
            path=image["path"],
            lat=image.get("lat"),
            lon=image.get("lon"),
            alt=image.get("alt"),
            taken=image.get("taken"),
            camera=image.get("camera"),
            image=image,
        )
        for image in document["images"]
    ]


def flight_order(items: Iterable[Photo]) -> list[Photo]:
    """By capture time, then file name (DJI numbers photos in order); photos without a time last."""
    return sorted(items, key=lambda p: (p.taken is None, p.taken or "", p.path))


def by_folder(document: Document, items: Iterable[Photo]) -> dict[str, list[Photo]]:
    """Photos grouped by folder, folders in the document's order (then any others)."""
    groups: dict[str, list[Photo]] = {f["name"]: [] for f in document["folders"]}
    for photo in items:
        groups.setdefault(photo.folder, []).append(photo)
    return groups


def with_gps(items: Iterable[Photo]) -> list[Photo]:
    """The GPS points, by the scan's rule: a position in a file that could be read whole.

    A truncated upload keeps the position from its header, but it is counted (and listed in
    the rejected list) as unreadable, so the map, the totals and the geo files agree.
    """
    return [p for p in items if p.position is not None and not p.image.get("error")]


def select_folder(document: Document, folder: str) -> dict[str, Any]:
    """The document cut down to one folder (its images and its summary); stats are kept."""
    summaries = [f for f in document["folders"] if f["name"] == folder]
    if not summaries:
        raise NotFound(f"no folder {folder!r} in the result of site {document['site']}")
    images = [i for i in document["images"] if i["path"].split("/", 1)[0] == folder]
    return {**document, "folders": summaries, "images": images}
