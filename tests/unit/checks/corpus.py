"""A labelled corpus of synthetic photos for the accuracy tests, and the scoring of a run.

Seeds here are disjoint from those the thresholds were tuned on (0-23, see docs/checks.md), so
the accuracy tests measure the checks on photos they have not seen.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TypeVar

from .scenes import KINDS, Defects, reencode, shot

SHARP = 24
BLURS = (  # focus blur of growing strength, then camera shake of several lengths and angles
    Defects(blur_sigma=1.0),
    Defects(blur_sigma=1.6),
    Defects(blur_sigma=2.5),
    Defects(blur_sigma=4.0),
    Defects(motion_px=5, motion_angle=20),
    Defects(motion_px=7, motion_angle=100),
    Defects(motion_px=9, motion_angle=160),
    Defects(motion_px=6, motion_angle=45),
)
BLURRED = 3 * len(BLURS)
DARK_EV = (-3.5, -4.0, -4.5, -5.0, -4.0, -3.5)
BRIGHT_EV = (2.0, 2.5, 3.0, 2.5, 2.0, 3.0)
# A dark scene (water) at +2 EV still looks like a normal photo; it takes +4 EV to blow it out.
WATER_BRIGHT_EV = 4.0
CUTS = (0.02, 0.15, 0.35, 0.5, 0.7, 0.9, 0.99, -2)  # fraction kept; -2: only the EOI is lost
T = TypeVar("T")
IDENTICAL = range(8, 12)  # sharp photos that get a byte-identical copy
NEAR = range(12, 16)  # sharp photos that get a re-encoded and a resized copy


@dataclass
class Corpus:
    photos: dict[str, bytes] = field(default_factory=dict)
    labels: dict[str, set[str]] = field(default_factory=dict)
    identical_pairs: set[frozenset[str]] = field(default_factory=set)
    near_pairs: set[frozenset[str]] = field(default_factory=set)

    def add(self, name: str, data: bytes, *labels: str) -> None:
        self.photos[name] = data
        self.labels[name] = set(labels)

    def with_label(self, label: str) -> set[str]:
        return {n for n, ls in self.labels.items() if label in ls}

    @property
    def clean(self) -> set[str]:
        """Sharp, well exposed, complete photos with no copy anywhere in the corpus."""
        return {n for n, ls in self.labels.items() if ls == {"sharp"}}

    @staticmethod
    def digest(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()


def build_corpus() -> Corpus:
    """About 100 photos at 1000x750: sharp, blurred, dark, bright, cut and copied."""
    c = Corpus()
    sharp = [shot(5000 + i) for i in range(SHARP)]
    for i, data in enumerate(sharp):
        c.add(f"sharp_{i:02d}.jpg", data, "sharp")
    for i in range(BLURRED):
        c.add(f"blur_{i:02d}.jpg", shot(6000 + i, BLURS[i % len(BLURS)]), "blur")
    for i, ev in enumerate(DARK_EV):
        c.add(f"dark_{i:02d}.jpg", shot(7000 + i, Defects(ev=ev)), "dark")
    for i, ev in enumerate(BRIGHT_EV):
        seed = 7100 + i
        if KINDS[seed % len(KINDS)] == "water":
            ev = WATER_BRIGHT_EV
        c.add(f"bright_{i:02d}.jpg", shot(seed, Defects(ev=ev)), "bright")
    for i, cut in enumerate(CUTS):
        data = sharp[i]
        end = len(data) + int(cut) if cut < 0 else int(len(data) * cut)
        c.add(f"cut_{i:02d}.jpg", data[:end], "truncated")
    for i in IDENTICAL:
        original, copy = f"sharp_{i:02d}.jpg", f"copy_{i:02d}.jpg"
        c.add(copy, sharp[i], "sharp", "identical")
        c.labels[original].add("identical")
        c.identical_pairs.add(frozenset((original, copy)))
    for i in NEAR:
        original, q75, small = f"sharp_{i:02d}.jpg", f"q75_{i:02d}.jpg", f"small_{i:02d}.jpg"
        c.add(q75, reencode(sharp[i], 75), "sharp", "near")
        c.add(small, reencode(sharp[i], 85, scale=0.9), "sharp", "near")
        c.labels[original].add("near")
        for pair in ((original, q75), (original, small), (q75, small)):
            c.near_pairs.add(frozenset(pair))
    return c


@dataclass(frozen=True)
class Score:
    """Confusion counts of one defect kind."""

    kind: str
    tp: int
    fp: int
    fn: int
    tn: int

    @classmethod
    def of(cls, kind: str, truth: set[T], flagged: set[T], universe: set[T]) -> Score:
        return cls(
            kind,
            len(truth & flagged),
            len(flagged - truth),
            len(truth - flagged),
            len(universe - truth - flagged),
        )

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    def row(self) -> str:
        return (
            f"{self.kind:<12} TP {self.tp:3d}  FP {self.fp:3d}  FN {self.fn:3d}  TN {self.tn:4d}"
            f"  precision {self.precision:.3f}  recall {self.recall:.3f}"
        )
