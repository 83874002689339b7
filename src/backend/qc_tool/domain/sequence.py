"""Gaps in a folder's photo sequence: a pause in the flight, or numbers missing from the names.

A drone shoots a folder at a steady interval and numbers its files one after another
(DJI_0123.JPG, DJI_0124.JPG ...). A pause far longer than the folder's usual interval, or
a jump in the numbering, often means photos were lost between the card and the server.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any

from qc_tool.domain.models import ImageResult

# A pause is flagged when it is this many times the folder's median interval ...
PAUSE_FACTOR = 5.0
# ... and at least this long (a pilot repositioning for a few seconds is normal).
MIN_PAUSE_S = 30.0
MIN_PHOTOS = 4  # fewer photos give no usable "usual" interval
_NUMBER = re.compile(r"^(?P<stem>.*?)(?P<number>\d+)(?P<ext>\.[A-Za-z0-9]+)$")


@dataclass(frozen=True, slots=True)
class Gap:
    folder: str
    kind: str  # "time" | "numbering"
    after: str  # the photo before the gap (path)
    before: str  # the photo after it
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {
            "folder": self.folder,
            "kind": self.kind,
            "after": self.after,
            "before": self.before,
            "detail": self.detail,
        }


def find_gaps(images: Iterable[ImageResult]) -> list[Gap]:
    """Time and numbering gaps of every folder, in folder order."""
    folders: dict[str, list[ImageResult]] = {}
    for image in images:
        folders.setdefault(image.folder, []).append(image)
    gaps: list[Gap] = []
    for folder, members in folders.items():
        gaps += _time_gaps(folder, members)
        gaps += _numbering_gaps(folder, members)
    return gaps


def _time_gaps(folder: str, images: Sequence[ImageResult]) -> list[Gap]:
    timed = sorted((t, i.path) for i in images if (t := _when(i.taken)) is not None)
    if len(timed) < MIN_PHOTOS:
        return []
    intervals = [(b[0] - a[0]).total_seconds() for a, b in pairwise(timed)]
    usual = statistics.median(intervals)
    limit = max(MIN_PAUSE_S, PAUSE_FACTOR * usual)
    return [
        Gap(folder, "time", a[1], b[1], f"{seconds:.0f} s without a photo (usual {usual:.0f} s)")
        for (a, b), seconds in zip(pairwise(timed), intervals, strict=True)
        if seconds > limit
    ]


def _numbering_gaps(folder: str, images: Sequence[ImageResult]) -> list[Gap]:
    # A series is numbered within its own directory: a card's 100MEDIA and 101MEDIA below
    # one folder each start their own run.
    numbered: dict[tuple[str, str, str], list[tuple[int, str]]] = {}
    for image in images:
        directory, _, name = image.path.rpartition("/")
        match = _NUMBER.match(name)
        if match:
            series = (directory, match["stem"], match["ext"].lower())
            numbered.setdefault(series, []).append((int(match["number"]), image.path))
    gaps = []
    for members in numbered.values():
        members.sort()
        for (n, path), (m, next_path) in pairwise(members):
            if m - n > 1:
                missing = m - n - 1
                what = f"number {n + 1}" if missing == 1 else f"numbers {n + 1}-{m - 1}"
                gaps.append(Gap(folder, "numbering", path, next_path, f"{what} missing"))
    return gaps


def _when(taken: str | None) -> datetime | None:
    if not taken:
        return None
    try:
        return datetime.fromisoformat(taken)
    except ValueError:
        return None
