"""Camera and upload defects for generated photos, and where a generated site gets them.

The pixel defects follow the checks' accuracy corpus (tests/unit/checks/scenes.py imports
``Defects``, ``photograph`` and ``reencode`` from here): blur, camera shake and an exposure
error are applied to the clean scene before the sensor noise and the JPEG encoding, as in a
camera; a near-duplicate is the same picture decoded and encoded again.

A generated site (``SiteLayout.defects``) gets each kind on a few percent of its photos, at
places drawn from a seeded RNG, and records them in its truth (``ImageTruth.defects``).
Pair kinds (identical, near_duplicate, hovering) label both photos of the pair: the defect
photo and the one before it in the same folder, which it copies or hovers next to.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageFilter

from qc_tool.demo.segments import strip_app_segments
from qc_tool.domain.checks.result import CheckOutcome, ImageChecks

DefectKind = Literal[
    "focus_blur",
    "motion_blur",
    "dark",
    "bright",
    "truncated",
    "identical",
    "near_duplicate",
    "hovering",
    "outside",
]
DEFECT_KINDS: tuple[DefectKind, ...] = get_args(DefectKind)
PIXEL_KINDS = frozenset({"focus_blur", "motion_blur", "dark", "bright"})
PAIR_KINDS = frozenset({"identical", "near_duplicate", "hovering"})

# Strengths in the pixels the checks read (the preview when there is one), cycled through.
# The mildest of each is still plainly visible at that size: what a technician would reject.
FOCUS_SIGMAS = (1.6, 2.5, 4.0, 2.0)
MOTIONS = ((5, 20.0), (7, 100.0), (9, 160.0), (6, 45.0))  # (length px, angle degrees)
DARK_EVS = (-3.5, -4.0, -4.5, -5.0)
BRIGHT_EVS = (2.0, 2.5, 3.0)
NEAR_QUALITIES = (75, 70, 80)
CUT_FRACTIONS = (0.1, 0.3, 0.5, 0.7, 0.9, -2)  # of the file kept; -2: only the final EOI lost
OUTSIDE_M = (2_000.0, 5_000.0)  # how far from the site an outside photo was taken
HOVER_OFFSET_M = 0.3  # a hovering drone's second photo, this far from its first


@dataclass(frozen=True)
class Defects:
    """What the camera did wrong: focus blur (sigma, px), motion blur (px), exposure error (EV)."""

    blur_sigma: float = 0.0
    motion_px: int = 0
    motion_angle: float = 0.0
    ev: float = 0.0


def _motion_blur(img: np.ndarray, length: int, angle_deg: float) -> np.ndarray:
    """Average of copies shifted along a line: a straight camera shake during the exposure."""
    acc = np.zeros_like(img)
    dx, dy = np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))
    for i in range(length):
        t = i - (length - 1) / 2
        acc += np.roll(img, (round(t * dy), round(t * dx)), axis=(0, 1))
    return acc / length


def photograph(scene: np.ndarray, defects: Defects, seed: int, noise: float = 1.5) -> np.ndarray:
    """What the camera records: blur, exposure error (in linear light), then sensor noise."""
    img = scene
    if defects.blur_sigma > 0:
        pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
        img = np.asarray(pil.filter(ImageFilter.GaussianBlur(defects.blur_sigma)), np.float32)
    if defects.motion_px > 1:
        img = _motion_blur(img, defects.motion_px, defects.motion_angle)
    if defects.ev:
        linear = (np.clip(img, 0, 255) / np.float32(255)) ** 2.2 * np.float32(2.0**defects.ev)
        img = 255.0 * np.clip(linear, 0.0, 1.0) ** (1 / 2.2)
    rng = np.random.default_rng(seed + 7919)
    img = img + noise * rng.standard_normal(img.shape[:2], np.float32)[:, :, None]
    recorded: np.ndarray = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return recorded


def _jpeg(rgb: np.ndarray | Image.Image, quality: int = 90) -> bytes:
    """JPEG bytes of an RGB array or image."""
    img = rgb if isinstance(rgb, Image.Image) else Image.fromarray(rgb, "RGB")
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality)
    return out.getvalue()


def reencode(data: bytes, quality: int, scale: float = 1.0) -> bytes:
    """The same photo decoded and saved again, optionally resized: a near-duplicate."""
    img = Image.open(io.BytesIO(data)).convert("RGB")
    if scale != 1.0:
        size = (round(img.width * scale), round(img.height * scale))
        img = img.resize(size, Image.Resampling.LANCZOS)
    return _jpeg(img, quality)


# --- a generated site's defects ------------------------------------------------------------


def camera_defects(kind: DefectKind, occurrence: int) -> Defects:
    """The pixel defect of the ``occurrence``-th photo of a pixel kind (strengths cycle)."""
    if kind == "focus_blur":
        return Defects(blur_sigma=FOCUS_SIGMAS[occurrence % len(FOCUS_SIGMAS)])
    if kind == "motion_blur":
        length, angle = MOTIONS[occurrence % len(MOTIONS)]
        return Defects(motion_px=length, motion_angle=angle)
    if kind == "dark":
        return Defects(ev=DARK_EVS[occurrence % len(DARK_EVS)])
    if kind == "bright":
        return Defects(ev=BRIGHT_EVS[occurrence % len(BRIGHT_EVS)])
    raise ValueError(f"{kind} is not a pixel defect")


def defective_body(scene: NDArray[np.uint8], defects: Defects, seed: int, quality: int) -> bytes:
    """A scene photographed with ``defects``, encoded like ``scene.encode_body`` (4:2:2, no APPn).

    The generator's scenes carry their grain already; the defect then blurs or darkens it, and
    ``photograph`` adds the sensor's own noise after, as a camera would.
    """
    pixels = photograph(scene.astype(np.float32), defects, seed)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=quality, subsampling=1)
    return strip_app_segments(out.getvalue())


def near_copy(jpeg: bytes, occurrence: int) -> bytes:
    """A near-duplicate of a complete JPEG: re-encoded at another quality, the same size."""
    quality = NEAR_QUALITIES[occurrence % len(NEAR_QUALITIES)]
    return b"\xff\xd8" + strip_app_segments(reencode(jpeg, quality))


def truncate(data: bytes, occurrence: int, keep_at_least: int) -> bytes:
    """An upload cut short: a fraction of the file, never less than its header."""
    fraction = CUT_FRACTIONS[occurrence % len(CUT_FRACTIONS)]
    end = len(data) + int(fraction) if fraction < 0 else int(len(data) * fraction)
    cut = data[: min(len(data) - 1, max(keep_at_least, end))]
    # A cut that happens to end like a whole file (an end marker, maybe zero padding) would
    # not be a truncated upload to anyone: cut one byte more.
    while cut.rstrip(b"\x00").endswith(b"\xff\xd9"):
        cut = cut[:-1]
    return cut


def moved(lat: float, lon: float, metres: float, bearing_deg: float) -> tuple[float, float]:
    """A position ``metres`` away on a bearing (flat-earth: fine over a few kilometres)."""
    north = metres * math.cos(math.radians(bearing_deg))
    east = metres * math.sin(math.radians(bearing_deg))
    return (lat + north / 111_320.0, lon + east / (111_320.0 * math.cos(math.radians(lat))))


def plan_defects(
    counts: Sequence[int],
    eligible: Sequence[bool],
    kinds: Sequence[DefectKind],
    rate: float,
    rng: random.Random,
) -> dict[int, DefectKind]:
    """Which photos (numbered across the site, folder by folder) get which defect.

    Each kind goes to ``max(1, round(rate * total))`` photos. A defect photo is never the
    first of its folder, and it and the photo before it (a pair's other half, or simply a
    clean neighbour) are eligible and touched by no other defect, so every label is
    unambiguous. Raises ValueError when the site is too small for the rate.
    """
    total = sum(counts)
    per_kind = max(1, round(rate * total))
    firsts, start = set(), 0
    for count in counts:
        firsts.add(start)
        start += count
    candidates = [n for n in range(total) if n not in firsts and eligible[n] and eligible[n - 1]]
    rng.shuffle(candidates)
    used: set[int] = set()
    plan: dict[int, DefectKind] = {}
    wanted = [kind for kind in kinds for _ in range(per_kind)]
    for n in candidates:
        if not wanted:
            break
        if n in used or n - 1 in used:
            continue
        plan[n] = wanted.pop()
        used.update((n, n - 1))
    if wanted:
        raise ValueError(
            f"{total} photos are too few for {len(kinds)} defect kinds at {rate:.0%} each"
        )
    return plan


# --- how well the checks found them --------------------------------------------------------

# The failed outcome (name, and for exposure its threshold) that finds each defect kind.
FINDS: dict[DefectKind, tuple[tuple[str, str | None], ...]] = {
    "focus_blur": (("blur", None),),
    "motion_blur": (("blur", None),),
    "dark": (("exposure", "under"),),
    "bright": (("exposure", "over"),),
    "truncated": (("integrity", None), ("decode", None)),
    "identical": (("duplicate", None),),
    "near_duplicate": (("near_duplicate", None),),
    "hovering": (("hovering", None),),
    "outside": (("position", None),),
}


@dataclass(frozen=True)
class KindScore:
    """How one defect kind was found: counts of photos, and precision and recall from them."""

    kind: str
    true_pos: int
    false_pos: int
    false_neg: int

    @property
    def precision(self) -> float:
        flagged = self.true_pos + self.false_pos
        return self.true_pos / flagged if flagged else 1.0

    @property
    def recall(self) -> float:
        labelled = self.true_pos + self.false_neg
        return self.true_pos / labelled if labelled else 1.0


@dataclass(frozen=True)
class DefectScores:
    """Per-kind scores of one check pass, and the clean photos it flagged anyway."""

    kinds: tuple[KindScore, ...]
    clean: int
    clean_flagged: tuple[str, ...]

    @property
    def clean_flagged_share(self) -> float:
        return len(self.clean_flagged) / self.clean if self.clean else 0.0


def _matches(outcome: CheckOutcome, finds: tuple[tuple[str, str | None], ...]) -> bool:
    return any(
        outcome.name == name and (threshold is None or outcome.threshold == threshold)
        for name, threshold in finds
    )


def score_defects(
    labels: Mapping[str, frozenset[DefectKind]], checks: Sequence[ImageChecks]
) -> DefectScores:
    """Score a check pass against the truth's labels (photo path -> its defect kinds).

    A flag is a true positive on a photo labelled with the kind, and a false positive on a
    photo labelled with no kind that the same check finds (a blur flag on a motion-blurred
    photo does not count against focus blur; a blur flag on a dark photo does). Photos the
    pass did not check (unreadable files) are left out.
    """
    kinds = [k for k in DEFECT_KINDS if any(k in labels.get(c.name, ()) for c in checks)]
    scores = []
    for kind in kinds:
        finds = FINDS[kind]
        siblings = {k for k, f in FINDS.items() if set(f) & set(finds)}
        tp = fp = fn = 0
        for c in checks:
            mine = labels.get(c.name, frozenset())
            hit = any(_matches(o, finds) for o in c.failures)
            if kind in mine:
                tp, fn = tp + hit, fn + (not hit)
            elif hit and not mine & siblings:
                fp += 1
        scores.append(KindScore(kind, tp, fp, fn))
    clean = [c for c in checks if not labels.get(c.name)]
    return DefectScores(
        tuple(scores), len(clean), tuple(sorted(c.name for c in clean if not c.valid))
    )
