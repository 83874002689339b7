"""Write whole synthetic sites (``<root>/<site>/<folder>/DJI_0001.JPG``) and the truth a scan must find.

Everything is deterministic from (site, seed): positions on a drone orbit around a tower, capture
times about 2 s apart within a folder, and the header variety real DJI files show (big MakerNotes
before the GPS IFD, JFIF+ICC before EXIF, big-endian EXIF, XMP, MPF previews). With
``SiteLayout.defects`` a few percent of the photos get each photo defect (demo/defects.py), and
the truth says which (``ImageTruth.defects``).
"""

from __future__ import annotations

import io
import json
import math
import os
import random
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from PIL import Image

from qc_tool.demo.defects import (
    DEFECT_KINDS,
    HOVER_OFFSET_M,
    OUTSIDE_M,
    PAIR_KINDS,
    PIXEL_KINDS,
    DefectKind,
    camera_defects,
    defective_body,
    moved,
    near_copy,
    plan_defects,
    truncate,
)
from qc_tool.demo.imagegen import (
    ImageSpec,
    build_jpeg,
    encode_body,
    encode_jpeg,
    exif_app1_end,
    quantise_gps,
    thumbnail_of,
)
from qc_tool.demo.scene import render_scene
from qc_tool.demo.tower import tower_flight, write_tower_site

SMALL_BODY = (320, 240)  # unit and integration tests: the full seed layout in seconds
DEMO_BODY = (800, 600)
FULL_BODY = (4000, 3000)  # benchmark: about 6.5 MB per image at quality 92
BODY_QUALITY = 92
PREVIEW_QUALITY = 85
SHOT_SPACING_M = 5.0  # a drone orbiting at ~2 m/s with a photo every 2-3 s
GpsState = Literal["ok", "absent", "zero_denominator", "unreadable"]
BrokenKind = Literal["empty", "truncated", "not_jpeg"]


@dataclass(frozen=True)
class SiteLayout:
    """The shape of a site: folders and image counts, how many lack GPS, body and preview sizes."""

    folders: tuple[tuple[str, int], ...]
    without_gps: int = 0
    body_size: tuple[int, int] = SMALL_BODY
    previews: bool = False  # MPF preview per image: realistic, but adds ~300 KB to every file
    preview_size: tuple[int, int] = (960, 720)
    # Render every image's own scene (and preview) instead of sharing one body: what the
    # photo checks need (one shared body makes every photo a duplicate of every other).
    # Costs ~50 ms an image at demo sizes; the full-size benchmark site shares one body.
    distinct_scenes: bool = False
    origin: tuple[float, float] = (52.37, 4.89)  # the tower; negative values cover S/W refs
    start: datetime = datetime(2024, 5, 14, 9, 30, 0)
    # Photo defects (demo/defects.py) on ``defect_rate`` of the photos per kind. The pixels the
    # checks read (each preview, or each body without previews) are then rendered per photo.
    defects: tuple[DefectKind, ...] = ()
    defect_rate: float = 0.02
    # None: the orbit of the GPS tests, whose big folders put shots ~0.2 m apart (every shot
    # would read as hovering); a number: the drone moves this far along its orbit per shot.
    shot_spacing_m: float | None = None
    # With ``previews``: this share of the photos has no MPF preview (older drones, edited
    # files), each with its own scene and an EXIF thumbnail made from it, as cameras write;
    # ``no_thumbnail_share`` of those has no thumbnail either. The checks read such a photo's
    # top rows and thumbnail (domain/pixel_reader.py). Costs a full-size render each.
    no_preview_share: float = 0.0
    no_thumbnail_share: float = 0.1

    @property
    def total(self) -> int:
        return sum(count for _, count in self.folders)

    @property
    def with_gps(self) -> int:
        return self.total - self.without_gps


SEED_SITE = "10069746"
SEED_LAYOUT = SiteLayout(
    folders=tuple(
        zip(
            [
                "Tower-Scans",
                "Antenna-Sector-A",
                "Antenna-Sector-B",
                "Antenna-Sector-C",
                "Tower-Top",
                "Cable-Ladder",
                "Equipment-Cabinet",
                "Compound-Overview",
                "Foundation",
                "Access-Road",
                "Fence-Gate",
                "Site-Sign",
            ],
            [513, 180, 150, 120, 110, 90, 80, 50, 40, 20, 17, 5],
            strict=True,
        )
    ),
    without_gps=43,
)


def with_defects(
    layout: SiteLayout, rate: float = 0.02, kinds: tuple[DefectKind, ...] = DEFECT_KINDS
) -> SiteLayout:
    """The layout with photo defects, flown at a realistic spacing so only planted shots hover."""
    return replace(layout, defects=kinds, defect_rate=rate, shot_spacing_m=SHOT_SPACING_M)


SOUTH_WEST_SITE = "20031877"
SOUTH_WEST_LAYOUT = SiteLayout(
    folders=(("Tower-Scans", 40), ("Antenna-Sector-A", 20), ("Compound-Overview", 12)),
    without_gps=5,
    origin=(-33.4489, -70.6693),
)


@dataclass(frozen=True)
class ImageTruth:
    """What a correct scan reports for one file, plus how its header was laid out."""

    path: str  # "<folder>/<file>"
    size: int
    mtime: int
    lat: float | None = None
    lon: float | None = None
    alt: float | None = None
    taken: str | None = None  # "YYYY-MM-DDTHH:MM:SS"
    camera: str | None = None
    gps: GpsState = "ok"
    error: BrokenKind | None = None
    exif_end: int | None = None  # offset just past the EXIF APP1: bytes needed for the header
    byte_order: str | None = None
    makernote_size: int = 0
    jfif_icc: int = 0
    xmp: bool = False
    preview: bool = False
    defects: frozenset[DefectKind] = frozenset()  # what the photo checks must find (pairs: both)


@dataclass
class SiteTruth:
    """Every file of a generated site with its expected scan result."""

    site: str
    images: list[ImageTruth] = field(default_factory=list)

    @property
    def gps_points(self) -> int:
        return sum(1 for image in self.images if image.lat is not None)

    @property
    def total_bytes(self) -> int:
        return sum(image.size for image in self.images)

    def folders(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for image in self.images:
            folder = image.path.split("/", 1)[0]
            counts[folder] = counts.get(folder, 0) + 1
        return counts

    def by_path(self) -> dict[str, ImageTruth]:
        return {image.path: image for image in self.images}

    def to_json(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "images": [
                {**asdict(image), "defects": sorted(image.defects)} for image in self.images
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SiteTruth:
        return cls(
            site=data["site"],
            images=[
                ImageTruth(**{**image, "defects": frozenset(image.get("defects", ()))})
                for image in data["images"]
            ],
        )

    def with_defect(self, kind: DefectKind) -> set[str]:
        """Paths of the photos labelled with a defect kind."""
        return {image.path for image in self.images if kind in image.defects}

    @property
    def clean(self) -> set[str]:
        """Paths of the readable photos with no defect: no check should flag them."""
        return {i.path for i in self.images if not i.defects and i.error is None}

    def write_truth(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=1))

    @classmethod
    def read_truth(cls, path: Path) -> SiteTruth:
        return cls.from_json(json.loads(path.read_text()))


def make_body(layout: SiteLayout, seed: int = 0) -> bytes:
    """Encode the body a layout asks for; reuse it for every image of the site."""
    return encode_body(*layout.body_size, seed=seed, quality=BODY_QUALITY)


def _position(
    layout: SiteLayout, folder: int, index: int, count: int, rng: random.Random
) -> tuple[float, float, float]:
    """A point on an ascending orbit around the tower: radius per folder, altitude 30-80 m."""
    orbit = 12.0 + 7.0 * (folder % 5)
    radius = orbit + rng.uniform(-0.5, 0.5)
    if layout.shot_spacing_m is None:
        angle = 2 * math.pi * (index / max(count, 1)) * (1 + folder % 3) + folder * 0.7
    else:
        angle = index * layout.shot_spacing_m / orbit + folder * 0.7
    alt = 30.0 + 50.0 * index / max(count - 1, 1) + rng.uniform(-0.3, 0.3)
    lat0, lon0 = layout.origin
    lat = lat0 + radius * math.sin(angle) / 111_320.0
    lon = lon0 + radius * math.cos(angle) / (111_320.0 * math.cos(math.radians(lat0)))
    return quantise_gps(lat, lon, min(80.0, max(30.0, alt)))


def _xmp(alt: float, rng: random.Random, yaw: float) -> dict[str, str]:
    return {
        "AbsoluteAltitude": f"{alt + 12.4:+.2f}",
        "RelativeAltitude": f"{alt:+.2f}",
        "GimbalRollDegree": "+0.00",
        "GimbalYawDegree": f"{yaw:+.2f}",
        "GimbalPitchDegree": f"{rng.choice([-90.0, -90.0, -45.0, -30.0, 0.0]):.1f}",
        "FlightYawDegree": f"{yaw:+.2f}",
    }


def _spec(
    layout: SiteLayout,
    gps_state: GpsState,
    gps: tuple[float, float, float],
    taken: datetime,
    rng: random.Random,
) -> ImageSpec:
    icc = 0
    if rng.random() < 0.04:
        icc = 50_000 if rng.random() < 0.25 else 3_000
    # The camera looks at the tower: the bearing from the drone to it (north = 0, east = 90).
    north = layout.origin[0] - gps[0]
    east = (layout.origin[1] - gps[1]) * math.cos(math.radians(layout.origin[0]))
    yaw = math.degrees(math.atan2(east, north))
    return ImageSpec(
        taken=taken,
        gps=None if gps_state == "absent" else gps,
        gps_zero_denominator=gps_state == "zero_denominator",
        makernote_size=rng.randint(20_000, 40_000) if rng.random() < 1 / 3 else 0,
        byte_order="MM" if rng.random() < 0.05 else "II",
        jfif_icc=icc,
        xmp=_xmp(gps[2], rng, yaw) if rng.random() < 0.9 else None,
        preview=layout.preview_size if layout.previews else None,
        iso=rng.choice([100, 100, 100, 200]),
        exposure_time=(1, rng.choice([500, 640, 800, 1000])),
        image_size=None,
    )


def _write(path: Path, data: bytes, taken: datetime) -> int:
    path.write_bytes(data)
    # mtime = capture time (as UTC), so listings and cache keys are deterministic too.
    stamp = int((taken - datetime(1970, 1, 1)).total_seconds())
    os.utime(path, (stamp, stamp))
    return stamp


@dataclass(frozen=True)
class _Shot:
    """One photo as written: what the next photo may copy, re-encode or hover next to."""

    data: bytes
    body: bytes
    preview: bytes | None
    truth: ImageTruth


class _DefectPlan:
    """Which photos of a site get which defect, and the seeded choices each defect needs."""

    def __init__(self, layout: SiteLayout, site: str, seed: int, states: dict[int, GpsState]):
        self.rng = random.Random(f"{site}:{seed}:defects")  # the scan truth's RNG is untouched
        self.kinds: dict[int, DefectKind] = {}
        if layout.defects:
            eligible = [states.get(n, "ok") == "ok" for n in range(layout.total)]
            counts = [count for _, count in layout.folders]
            self.kinds = plan_defects(
                counts, eligible, layout.defects, layout.defect_rate, self.rng
            )
        self._seen: dict[DefectKind, int] = {}

    def take(self, number: int) -> tuple[DefectKind | None, int]:
        """The defect of photo ``number`` (or None) and how many of its kind came before."""
        kind = self.kinds.get(number)
        if kind is None:
            return None, 0
        occurrence = self._seen.get(kind, 0)
        self._seen[kind] = occurrence + 1
        return kind, occurrence


def _pixels(
    layout: SiteLayout,
    scene_seed: int,
    body: bytes,
    preview: bytes | None,
    kind: DefectKind | None,
    occurrence: int,
    previous: _Shot | None,
) -> tuple[bytes, bytes | None]:
    """The body and preview of one photo: shared, its own scene, or its own with a defect.

    With defects, the pixels the checks read are the photo's own: each preview, or each body
    when there are no previews. A shared 4000x3000 body behind its own preview keeps the
    benchmark site's generation to minutes (a 4000x3000 scene takes ~2.5 s to render).
    """
    if not layout.defects:
        if not layout.distinct_scenes:
            return body, preview
        kind = None
    # A truncated photo gets its own body too: the checks decode what is left of it, and
    # copies of one shared body would all be near-duplicates of each other.
    own_body = layout.distinct_scenes or not layout.previews or kind == "truncated"
    if kind == "near_duplicate":
        assert previous is not None
        if own_body:
            body = near_copy(b"\xff\xd8" + previous.body, occurrence)[2:]
        if previous.preview is not None:
            preview = near_copy(previous.preview, occurrence)
        return body, preview
    camera = camera_defects(kind, occurrence) if kind in PIXEL_KINDS else None

    def render(size: tuple[int, int], quality: int) -> bytes:
        if camera is None:
            return encode_body(*size, seed=scene_seed, quality=quality)
        return defective_body(render_scene(*size, seed=scene_seed), camera, scene_seed, quality)

    if own_body:
        body = render(layout.body_size, BODY_QUALITY)
    if layout.previews:
        preview = b"\xff\xd8" + render(layout.preview_size, PREVIEW_QUALITY)
    return body, preview


class _Bare:
    """Which photos go without a preview (and which without a thumbnail as well)."""

    def __init__(self, layout: SiteLayout, site: str, seed: int) -> None:
        self.share = layout.no_preview_share if layout.previews else 0.0
        self.bare_share = layout.no_thumbnail_share
        self.rng = random.Random(f"{site}:{seed}:previews")  # other RNGs are untouched
        self.last: Literal["thumbnail", "nothing"] | None = None  # of the photo written last

    def take(self, kind: DefectKind | None) -> Literal["thumbnail", "nothing"] | None:
        """None: a preview; else what the photo has instead ("thumbnail" or "nothing").

        A near-duplicate is taken as the photo before it was, and an identical copy is that
        photo: both keep what it had."""
        if not self.share:
            return None
        draw, bare = self.rng.random(), self.rng.random()  # two draws per photo, always
        if kind in ("near_duplicate", "identical"):
            return self.last
        self.last = None
        if draw < self.share:
            self.last = "nothing" if bare < self.bare_share else "thumbnail"
        return self.last


def _placed(
    kind: DefectKind | None,
    gps: tuple[float, float, float],
    previous: _Shot | None,
    rng: random.Random,
) -> tuple[float, float, float]:
    """Where a photo was taken: on the orbit, next to the one before (hovering), or far away."""
    if kind == "hovering":
        assert previous is not None
        before = previous.truth
        assert before.lat is not None and before.lon is not None and before.alt is not None
        lat, lon = moved(before.lat, before.lon, HOVER_OFFSET_M, rng.uniform(0, 360))
        return quantise_gps(lat, lon, before.alt)
    if kind == "outside":
        lat, lon = moved(gps[0], gps[1], rng.uniform(*OUTSIDE_M), rng.uniform(0, 360))
        return quantise_gps(lat, lon, gps[2])
    return gps


def _image_truth(
    name: str,
    data: bytes,
    mtime: int,
    spec: ImageSpec,
    state: GpsState,
    gps: tuple[float, float, float],
    taken: datetime,
    kind: DefectKind | None,
) -> ImageTruth:
    usable = state == "ok"
    return ImageTruth(
        path=name,
        size=len(data),
        mtime=mtime,
        lat=gps[0] if usable else None,
        lon=gps[1] if usable else None,
        alt=gps[2] if usable else None,
        taken=taken.strftime("%Y-%m-%dT%H:%M:%S"),
        camera=spec.camera,
        gps=state,
        error="truncated" if kind == "truncated" else None,  # the header, GPS included, is whole
        exif_end=exif_app1_end(data),
        byte_order=spec.byte_order,
        makernote_size=spec.makernote_size,
        jfif_icc=spec.jfif_icc,
        xmp=spec.xmp is not None,
        preview=spec.preview is not None,
        defects=frozenset({kind}) if kind else frozenset(),
    )


def generate_site(
    root: Path, site: str, layout: SiteLayout, *, body: bytes, seed: int = 0
) -> SiteTruth:
    """Write every image of ``layout`` under ``root/site`` and return what a scan must report."""
    if layout.without_gps > layout.total:
        raise ValueError("more images without GPS than images")
    rng = random.Random(f"{site}:{seed}")
    missing = sorted(rng.sample(range(layout.total), layout.without_gps))
    # One in four GPS-less files has a GPS IFD whose rationals are /0 instead of no IFD at all.
    states: dict[int, GpsState] = {
        n: "zero_denominator" if k % 4 == 3 else "absent" for k, n in enumerate(missing)
    }
    thumbnail = encode_jpeg(160, 120, seed=seed, quality=80)
    bare = _Bare(layout, site, seed)
    preview = (
        encode_jpeg(*layout.preview_size, seed=seed + 1, quality=PREVIEW_QUALITY)
        if layout.previews
        else None
    )
    plan = _DefectPlan(layout, site, seed, states)
    truth = SiteTruth(site=site)
    previous: _Shot | None = None
    number = 0
    for folder_no, (folder, count) in enumerate(layout.folders):
        (root / site / folder).mkdir(parents=True, exist_ok=True)
        taken = layout.start + timedelta(minutes=25 * folder_no)
        for index in range(count):
            taken += timedelta(seconds=rng.choice([2, 2, 2, 3]))
            state = states.get(number, "ok")
            gps = _position(layout, folder_no, index, count, rng)
            spec = _spec(layout, state, gps, taken, rng)
            kind, occurrence = plan.take(number)
            without = bare.take(kind)
            if without is not None:
                spec = replace(spec, preview=None, thumbnail=without == "thumbnail")
            name = f"{folder}/DJI_{index + 1:04d}.JPG"
            if kind is not None and kind in PAIR_KINDS:  # the photo before is the other half
                before = truth.images[-1]
                truth.images[-1] = replace(before, defects=before.defects | {kind})
            if kind == "identical":
                assert previous is not None
                path = root / site / name
                path.write_bytes(previous.data)
                os.utime(path, (previous.truth.mtime, previous.truth.mtime))
                shot = replace(
                    previous, truth=replace(previous.truth, path=name, defects=frozenset({kind}))
                )
            else:
                if kind in ("hovering", "outside"):
                    gps = _placed(kind, gps, previous, plan.rng)
                    spec = replace(spec, gps=gps)
                own_body, own_preview = _pixels(
                    replace(layout, previews=spec.preview is not None),
                    seed * 100_000 + number + 1,
                    body,
                    preview if spec.preview is not None else None,
                    kind,
                    occurrence,
                    previous,
                )
                thumb = thumbnail if spec.preview is not None else thumbnail_of(own_body)
                data = build_jpeg(spec, own_body, thumbnail_jpeg=thumb, preview_jpeg=own_preview)
                if kind == "truncated":
                    header = len(data) - len(own_body) - len(own_preview or b"")
                    if spec.preview is None:  # the cut falls in the main image's data
                        header += own_body.index(b"\xff\xda") + 64
                    data = truncate(data, occurrence, keep_at_least=header)
                mtime = _write(root / site / name, data, taken)
                image = _image_truth(name, data, mtime, spec, state, gps, taken, kind)
                shot = _Shot(data, own_body, own_preview, image)
            truth.images.append(shot.truth)
            previous = shot
            number += 1
    return truth


def add_broken_files(
    root: Path, site: str, folder: str, first_number: int, body: bytes
) -> list[ImageTruth]:
    """Write one empty, one truncated and one PNG-named-.JPG file; return their truth."""
    directory = root / site / folder
    directory.mkdir(parents=True, exist_ok=True)
    taken = datetime(2024, 5, 14, 12, 0, 0)
    whole = build_jpeg(ImageSpec(taken=taken, gps=quantise_gps(52.37, 4.89, 40.0)), body)
    png = io.BytesIO()
    Image.fromarray(render_scene(64, 48, seed=5)).save(png, "PNG")
    # The truncated file stops inside IFD0, before any EXIF or GPS value could be read.
    contents: list[tuple[BrokenKind, bytes]] = [
        ("empty", b""),
        ("truncated", whole[:160]),
        ("not_jpeg", png.getvalue()),
    ]
    broken = []
    for offset, (kind, data) in enumerate(contents):
        name = f"{folder}/DJI_{first_number + offset:04d}.JPG"
        mtime = _write(root / site / name, data, taken)
        broken.append(
            ImageTruth(path=name, size=len(data), mtime=mtime, gps="unreadable", error=kind)
        )
    return broken


DEMO_SITE = "demo-site"
# The demo sites show the checks a realistic mix of failures: one photo of most defect kinds
# (demo-site's truncated upload is among its broken files; demo-small has a body-cut one).
DEMO_LAYOUT = with_defects(
    SiteLayout(
        folders=(
            ("Tower-Scans", 14),
            ("Antenna-Sector-A", 10),
            ("Antenna-Sector-B", 8),
            ("Compound-Overview", 8),
        ),
        without_gps=4,
        body_size=DEMO_BODY,
        previews=True,
        preview_size=(480, 360),
        distinct_scenes=True,
    ),
    kinds=tuple(k for k in DEFECT_KINDS if k != "truncated"),
)
DEMO_SMALL_SITE = "demo-small"
DEMO_TOWER_SITE = "demo-tower"
DEMO_SMALL_LAYOUT = with_defects(
    replace(
        SOUTH_WEST_LAYOUT,
        folders=(("Tower-Scans", 8), ("Site-Sign", 4)),
        without_gps=1,
        body_size=DEMO_BODY,
        previews=True,
        preview_size=(480, 360),
        distinct_scenes=True,
    ),
    kinds=("motion_blur", "truncated", "near_duplicate"),
)


def generate_demo_sites(root: Path) -> list[SiteTruth]:
    """The demo server's sites: ``demo-site`` (40 images + 3 broken files), ``demo-small``,
    and ``demo-tower`` (demo/tower.py: orbits with a hole, two shots aimed away), whose truth
    is its flight plan rather than a SiteTruth."""
    body = make_body(DEMO_LAYOUT)
    demo = generate_site(root, DEMO_SITE, DEMO_LAYOUT, body=body)
    last_folder, last_count = DEMO_LAYOUT.folders[-1]
    demo.images += add_broken_files(root, DEMO_SITE, last_folder, last_count + 1, body)
    small = generate_site(root, DEMO_SMALL_SITE, DEMO_SMALL_LAYOUT, body=body, seed=1)
    write_tower_site(root, DEMO_TOWER_SITE, tower_flight(), body_size=(480, 360))
    return [demo, small]


def generate_demo_site(root: Path) -> SiteTruth:
    """Write both demo sites under ``root``; return the truth of the main one, ``demo-site``."""
    return generate_demo_sites(root)[0]
