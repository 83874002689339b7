"""The result document as the exports read it: one ``Photo`` per image, with why it failed.

The document is ``ScanResult.to_json()``, optionally merged with the photo checks
(``check_report.merge_checks``). Every export works from it with or without checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from qc_tool.errors import NotFound

Document = Mapping[str, Any]

# The failure kinds the tool adds to the check names (blur, exposure, duplicate, position, ...).
UNREADABLE = "unreadable"
MISSING_GPS = "missing_gps"


class Failure(NamedTuple):
    kind: str  # a check name, or UNREADABLE / MISSING_GPS
    message: str  # written for the technician (and the pilot)


@dataclass(frozen=True, slots=True)
class Photo:
    """One image of the document, with the facts every export needs."""

    path: str
    lat: float | None
    lon: float | None
    alt: float | None
    taken: str | None  # ISO 8601, camera clock, no zone
    camera: str | None
    failures: tuple[Failure, ...]
    image: Mapping[str, Any]  # the document's dict, for the exports that show every field

    @property
    def folder(self) -> str:
        return self.path.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def valid(self) -> bool:
        return not self.failures

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
        """The failure kinds, each once, in the order they were found."""
        return list(dict.fromkeys(f.kind for f in self.failures))

    @property
    def reasons(self) -> str:
        return "; ".join(f.message for f in self.failures)


def image_failures(image: Mapping[str, Any]) -> tuple[Failure, ...]:
    """Why a photo is rejected: unreadable, no position, and every failed check.

    A photo the checks saw is judged by them; an unreadable one is reported once (as the
    integrity check's failure when the checks ran on it, else as ``unreadable``).
    """
    outcomes = (image.get("checks") or {}).get("outcomes") or []
    failed = tuple(Failure(o["name"], o["message"]) for o in outcomes if not o["ok"])
    out: list[Failure] = []
    if image.get("error") and not failed:
        out.append(Failure(UNREADABLE, f"Unreadable: {image['error']}"))
    if not image.get("error") and (image.get("lat") is None or image.get("lon") is None):
        out.append(Failure(MISSING_GPS, f"No GPS position: {image.get('gps_note') or 'unknown'}"))
    return tuple(out) + failed


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
            failures=image_failures(image),
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
