"""A tower flight whose coverage is known: orbits at three heights, sector climbs, a stray.

The plan (``tower_flight``) is pure data, so unit tests judge it directly; ``write_tower_site``
writes it as DJI-style JPEGs (GPS in EXIF; height, gimbal and RTK in the XMP) for the demo
server and the end-to-end tests. What coverage must find is planted and returned with it:
the one orbit hole (``HOLE``) and the photos aimed away (``AIMED_AWAY``).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from qc_tool.demo.defects import moved
from qc_tool.demo.imagegen import ImageSpec, build_jpeg, quantise_gps
from qc_tool.demo.scene import encode_body

TOWER = (-33.86882, 151.20930)
ORBIT_FOLDER = "Tower-Scans"
ORBIT_HEIGHTS = (30.0, 45.0, 60.0)
ORBIT_RADIUS_M = 25.0
STEP_DEG = 10.0
TAKE_OFF_ALT = 12.0  # GPS altitude of the take-off point: GPS altitude = this + height
# The 45 m orbit misses the shots at 200-230 degrees: a hole from 190 to 240 (50 degrees).
HOLE = (45.0, 190.0, 240.0)
AIMED_AWAY = {
    f"{ORBIT_FOLDER}/DJI_0005.JPG": 180.0,  # 30 m orbit, looking out
    "Antenna-Sector-B/DJI_0003.JPG": 90.0,  # a sector climb shot looking sideways
}
STRAY = f"{ORBIT_FOLDER}/DJI_0105.JPG"  # after the orbits, the compound from 80 m out, low
SECTORS = (("Antenna-Sector-A", 30.0), ("Antenna-Sector-B", 150.0), ("Antenna-Sector-C", 270.0))


@dataclass(frozen=True, slots=True)
class FlightShot:
    path: str
    lat: float
    lon: float
    height_m: float  # above take-off
    yaw: float  # gimbal yaw, degrees, -180..180
    rtk_flag: int = 50


def _toward(azimuth_from_tower: float, off: float = 0.0) -> float:
    """The yaw that looks from a drone at this azimuth back at the tower, turned by ``off``."""
    return (azimuth_from_tower + 180.0 + off + 180.0) % 360.0 - 180.0


def tower_flight(seed: int = 0, tower: tuple[float, float] = TOWER) -> list[FlightShot]:
    """The planned shots, positions with GPS-like noise (up to 0.5 m), deterministic per seed."""
    rng = random.Random(seed)
    shots: list[FlightShot] = []
    number = 0
    for height in ORBIT_HEIGHTS:
        azimuth = 0.0
        while azimuth < 360.0:
            in_hole = height == HOLE[0] and HOLE[1] < azimuth < HOLE[2]
            if not in_hole:
                number += 1
                path = f"{ORBIT_FOLDER}/DJI_{number:04d}.JPG"
                lat, lon = moved(*tower, ORBIT_RADIUS_M + rng.uniform(-0.5, 0.5), azimuth)
                off = AIMED_AWAY.get(path, rng.uniform(-5, 5))
                shots.append(FlightShot(path, lat, lon, height, _toward(azimuth, off)))
            azimuth += STEP_DEG
    lat, lon = moved(*tower, 80.0, 100.0)
    shots.append(FlightShot(STRAY, lat, lon, 15.0, _toward(100.0), rtk_flag=34))
    for folder, azimuth in SECTORS:
        for k in range(8):  # a climb from 20 to 55 m, 12 m out, looking at the antennas
            path = f"{folder}/DJI_{k + 1:04d}.JPG"
            lat, lon = moved(*tower, 12.0 + rng.uniform(-0.3, 0.3), azimuth)
            off = AIMED_AWAY.get(path, rng.uniform(-5, 5))
            shots.append(FlightShot(path, lat, lon, 20.0 + 5.0 * k, _toward(azimuth, off)))
    return shots


def flight_xmp(shot: FlightShot) -> dict[str, str]:
    return {
        "AbsoluteAltitude": f"{TAKE_OFF_ALT + shot.height_m:+.2f}",
        "RelativeAltitude": f"{shot.height_m:+.2f}",
        "GimbalRollDegree": "+0.00",
        "GimbalYawDegree": f"{shot.yaw:+.2f}",
        "GimbalPitchDegree": "-10.00",
        "FlightRollDegree": "+0.00",
        "FlightYawDegree": f"{shot.yaw:+.2f}",
        "FlightPitchDegree": "+0.00",
        "RtkFlag": str(shot.rtk_flag),
        "RtkStdLon": "0.01234",
        "RtkStdLat": "0.01456",
        "RtkStdHgt": "0.02345",
    }


def write_tower_site(
    root: Path, site: str, shots: list[FlightShot], body_size: tuple[int, int] = (320, 240)
) -> None:
    """Write each shot as a JPEG with GPS, DJI XMP and a distinct body (no duplicates)."""
    start = datetime(2024, 6, 3, 10, 0, 0)
    for n, shot in enumerate(shots):
        taken = start + timedelta(seconds=3 * n)
        spec = ImageSpec(
            taken=taken,
            gps=quantise_gps(shot.lat, shot.lon, TAKE_OFF_ALT + shot.height_m),
            xmp=flight_xmp(shot),
            model="FC3411",
        )
        body = encode_body(*body_size, seed=1000 + n, quality=90)
        path = root / site / shot.path
        path.parent.mkdir(parents=True, exist_ok=True)
        # Each photo's EXIF thumbnail is made from its own body, as a camera makes it: these
        # files have no preview, so the checks hash the thumbnail (one shared thumbnail made
        # every photo a near-duplicate of every other).
        path.write_bytes(build_jpeg(spec, body))
        stamp = taken.timestamp()
        os.utime(path, (stamp, stamp))
