"""Write whole synthetic sites (``<root>/<site>/<folder>/DJI_0001.JPG``) and the truth a scan must find.

Everything is deterministic from (site, seed): positions on a drone orbit around a tower, capture
times about 2 s apart within a folder, and the header variety real DJI files show (big MakerNotes
before the GPS IFD, JFIF+ICC before EXIF, big-endian EXIF, XMP, MPF previews).
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

from qc_tool.demo.imagegen import (
    ImageSpec,
    build_jpeg,
    encode_body,
    encode_jpeg,
    exif_app1_end,
    quantise_gps,
)
from qc_tool.demo.scene import render_scene

SMALL_BODY = (320, 240)  # unit and integration tests: the full seed layout in seconds
DEMO_BODY = (800, 600)
FULL_BODY = (4000, 3000)  # benchmark: about 6.5 MB per image at quality 92
BODY_QUALITY = 92
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

    @property
    def total(self) -> int:
        return sum(count for _, count in self.folders)

    @property
    def with_gps(self) -> int:
        return self.total - self.without_gps


SEED_SITE = "10069746"
SEED_LAYOUT = SiteLayout(
    folders=tuple(zip(
        ["Tower-Scans", "Antenna-Sector-A", "Antenna-Sector-B", "Antenna-Sector-C", "Tower-Top",
         "Cable-Ladder", "Equipment-Cabinet", "Compound-Overview", "Foundation", "Access-Road",
         "Fence-Gate", "Site-Sign"],
        [513, 180, 150, 120, 110, 90, 80, 50, 40, 20, 17, 5], strict=True,
    )),
    without_gps=43,
)
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
        return {"site": self.site, "images": [asdict(image) for image in self.images]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SiteTruth:
        return cls(site=data["site"], images=[ImageTruth(**image) for image in data["images"]])

    def write_truth(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=1))

    @classmethod
    def read_truth(cls, path: Path) -> SiteTruth:
        return cls.from_json(json.loads(path.read_text()))


def make_body(layout: SiteLayout, seed: int = 0) -> bytes:
    """Encode the body a layout asks for; reuse it for every image of the site."""
    return encode_body(*layout.body_size, seed=seed, quality=BODY_QUALITY)


def _position(layout: SiteLayout, folder: int, index: int, count: int,
              rng: random.Random) -> tuple[float, float, float]:
    """A point on an ascending orbit around the tower: radius per folder, altitude 30-80 m."""
    radius = 12.0 + 7.0 * (folder % 5) + rng.uniform(-0.5, 0.5)
    angle = 2 * math.pi * (index / max(count, 1)) * (1 + folder % 3) + folder * 0.7
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


def _spec(layout: SiteLayout, gps_state: GpsState, gps: tuple[float, float, float],
          taken: datetime, rng: random.Random) -> ImageSpec:
    icc = 0
    if rng.random() < 0.04:
        icc = 50_000 if rng.random() < 0.25 else 3_000
    yaw = math.degrees(math.atan2(gps[1] - layout.origin[1], gps[0] - layout.origin[0]))
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


def generate_site(root: Path, site: str, layout: SiteLayout, *, body: bytes,
                  seed: int = 0) -> SiteTruth:
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
    preview = encode_jpeg(*layout.preview_size, seed=seed + 1, quality=85) if layout.previews else None
    truth = SiteTruth(site=site)
    number = 0
    for folder_no, (folder, count) in enumerate(layout.folders):
        (root / site / folder).mkdir(parents=True, exist_ok=True)
        taken = layout.start + timedelta(minutes=25 * folder_no)
        for index in range(count):
            taken += timedelta(seconds=rng.choice([2, 2, 2, 3]))
            state = states.get(number, "ok")
            gps = _position(layout, folder_no, index, count, rng)
            spec = _spec(layout, state, gps, taken, rng)
            own_body, own_preview = body, preview
            if layout.distinct_scenes:
                scene_seed = seed * 100_000 + number + 1
                own_body = encode_body(*layout.body_size, seed=scene_seed, quality=BODY_QUALITY)
                if layout.previews:
                    own_preview = encode_jpeg(*layout.preview_size, seed=scene_seed, quality=85)
            data = build_jpeg(spec, own_body, thumbnail_jpeg=thumbnail, preview_jpeg=own_preview)
            name = f"{folder}/DJI_{index + 1:04d}.JPG"
            mtime = _write(root / site / name, data, taken)
            usable = state == "ok"
            truth.images.append(ImageTruth(
                path=name, size=len(data), mtime=mtime,
                lat=gps[0] if usable else None, lon=gps[1] if usable else None,
                alt=gps[2] if usable else None,
                taken=taken.strftime("%Y-%m-%dT%H:%M:%S"), camera=spec.camera, gps=state,
                exif_end=exif_app1_end(data), byte_order=spec.byte_order,
                makernote_size=spec.makernote_size, jfif_icc=spec.jfif_icc,
                xmp=spec.xmp is not None, preview=spec.preview is not None,
            ))
            number += 1
    return truth


def add_broken_files(root: Path, site: str, folder: str, first_number: int,
                     body: bytes) -> list[ImageTruth]:
    """Write one empty, one truncated and one PNG-named-.JPG file; return their truth."""
    directory = root / site / folder
    directory.mkdir(parents=True, exist_ok=True)
    taken = datetime(2024, 5, 14, 12, 0, 0)
    whole = build_jpeg(ImageSpec(taken=taken, gps=quantise_gps(52.37, 4.89, 40.0)), body)
    png = io.BytesIO()
    Image.fromarray(render_scene(64, 48, seed=5)).save(png, "PNG")
    # The truncated file stops inside IFD0, before any EXIF or GPS value could be read.
    contents: list[tuple[BrokenKind, bytes]] = [
        ("empty", b""), ("truncated", whole[:160]), ("not_jpeg", png.getvalue()),
    ]
    broken = []
    for offset, (kind, data) in enumerate(contents):
        name = f"{folder}/DJI_{first_number + offset:04d}.JPG"
        mtime = _write(root / site / name, data, taken)
        broken.append(ImageTruth(path=name, size=len(data), mtime=mtime, gps="unreadable",
                                 error=kind))
    return broken


DEMO_SITE = "demo-site"
DEMO_LAYOUT = SiteLayout(
    folders=(("Tower-Scans", 14), ("Antenna-Sector-A", 10), ("Antenna-Sector-B", 8),
             ("Compound-Overview", 8)),
    without_gps=4, body_size=DEMO_BODY, previews=True, preview_size=(480, 360),
    distinct_scenes=True,
)
DEMO_SMALL_SITE = "demo-small"
DEMO_SMALL_LAYOUT = replace(
    SOUTH_WEST_LAYOUT, folders=(("Tower-Scans", 8), ("Site-Sign", 4)), without_gps=1,
    body_size=DEMO_BODY, previews=True, preview_size=(480, 360), distinct_scenes=True,
)


def generate_demo_sites(root: Path) -> list[SiteTruth]:
    """The demo server's sites: ``demo-site`` (40 images + 3 broken files) and ``demo-small``."""
    body = make_body(DEMO_LAYOUT)
    demo = generate_site(root, DEMO_SITE, DEMO_LAYOUT, body=body)
    last_folder, last_count = DEMO_LAYOUT.folders[-1]
    demo.images += add_broken_files(root, DEMO_SITE, last_folder, last_count + 1, body)
    small = generate_site(root, DEMO_SMALL_SITE, DEMO_SMALL_LAYOUT, body=body, seed=1)
    return [demo, small]


def generate_demo_site(root: Path) -> SiteTruth:
    """Write both demo sites under ``root``; return the truth of the main one, ``demo-site``."""
    return generate_demo_sites(root)[0]
