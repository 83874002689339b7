"""Build DJI-like JPEGs around a reusable encoded body, with a hand-built EXIF whose truth is exact.

GPS truth: coordinates are stored as degrees/1, minutes/1, seconds/10000 (1/10000 arc-second,
about 3 mm), altitude as metres/1000. ``expected_lat_lon(spec)`` returns exactly what a correct
decoder computes, in float arithmetic, as ``d/dd + (m/md)/60 + (s/sd)/3600``, negated for S/W.
``quantise_gps`` returns the fixed point of that round trip, so a spec built from quantised values
decodes back to exactly its own ``gps`` (the site generator does this; its truth is ``spec.gps``).
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field
from datetime import datetime

from PIL import Image

from qc_tool.demo.scene import encode_body, encode_jpeg
from qc_tool.demo.segments import (
    APP1,
    FULL_HD_THUMBNAIL,
    MPF_SEGMENT_LEN,
    VGA_THUMBNAIL,
    icc_app2,
    icc_profile,
    iter_segments,
    jfif_app0,
    mpf_app2,
    segment,
    sof_dimensions,
    xmp_app1,
)
from qc_tool.demo.tiffbuild import (
    BYTE,
    SRATIONAL,
    UNDEFINED,
    ByteOrder,
    Entry,
    TiffBlock,
    ascii_entry,
    build_tiff,
    long_entry,
    rational_entry,
    short_entry,
)

__all__ = [
    "ALT_DEN",
    "SEC_DEN",
    "ImageSpec",
    "build_exif",
    "build_jpeg",
    "encode_body",
    "encode_jpeg",
    "exif_app1_end",
    "expected_altitude",
    "expected_lat_lon",
    "quantise_gps",
]

SEC_DEN = 10_000  # GPS seconds are stored in units of 1/10000 arc-second
ALT_DEN = 1_000  # GPS altitude in millimetres
_UNITS_PER_DEG = 3600 * SEC_DEN
THUMBNAIL_SIZE = (160, 120)

Rational = tuple[int, int]


@dataclass(frozen=True, kw_only=True)
class ImageSpec:
    """What one generated file contains; see the module docstring for the GPS truth contract."""

    taken: datetime
    gps: tuple[float, float, float] | None = None  # lat, lon, alt (m); None: no GPS IFD at all
    gps_zero_denominator: bool = False  # GPS IFD present, every rational /0: must read as missing
    make: str = "DJI"
    model: str = "FC6310"
    software: str = "v01.08.1719"
    makernote_size: int = 0  # MakerNote blob written before the GPS IFD
    byte_order: ByteOrder = "II"
    jfif_icc: int = 0  # > 0: APP0 JFIF + APP2 ICC of about this many bytes before the EXIF APP1
    thumbnail: bool = True  # IFD1 with a 160x120 JPEG thumbnail
    xmp: dict[str, str] | None = field(default=None, hash=False)
    preview: tuple[int, int] | None = None  # MPF second image of this size after the main EOI
    iso: int | None = 100
    exposure_time: Rational | None = (1, 640)
    f_number: Rational | None = (28, 10)
    focal_length: Rational | None = (88, 10)
    image_size: tuple[int, int] | None = None  # PixelX/YDimension; None: read from the body's SOF

    @property
    def camera(self) -> str:
        return f"{self.make} {self.model}"


def _dms(value: float) -> tuple[Rational, Rational, Rational]:
    units = round(abs(value) * _UNITS_PER_DEG)
    degrees, rest = divmod(units, _UNITS_PER_DEG)
    minutes, seconds = divmod(rest, 60 * SEC_DEN)
    return (degrees, 1), (minutes, 1), (seconds, SEC_DEN)


def _decode_dms(dms: tuple[Rational, Rational, Rational]) -> float:
    (d, dd), (m, md), (s, sd) = dms
    return d / dd + (m / md) / 60 + (s / sd) / 3600


def _negative(value: float) -> bool:
    """Whether the ref is S/W: a value that quantises to zero is written as N/E."""
    return value < 0 and round(abs(value) * _UNITS_PER_DEG) > 0


def _alt_units(alt: float) -> int:
    return round(abs(alt) * ALT_DEN)


def expected_lat_lon(spec: ImageSpec) -> tuple[float, float] | None:
    """Exactly what a correct decoder reads back for lat/lon; None when the file has no usable GPS."""
    if spec.gps is None or spec.gps_zero_denominator:
        return None
    lat, lon, _ = spec.gps
    lat_abs, lon_abs = _decode_dms(_dms(lat)), _decode_dms(_dms(lon))
    return (-lat_abs if _negative(lat) else lat_abs, -lon_abs if _negative(lon) else lon_abs)


def expected_altitude(spec: ImageSpec) -> float | None:
    """Altitude a decoder reads back (negated when GPSAltitudeRef is 1); None without usable GPS."""
    if spec.gps is None or spec.gps_zero_denominator:
        return None
    alt = spec.gps[2]
    metres = _alt_units(alt) / ALT_DEN
    return -metres if alt < 0 and _alt_units(alt) > 0 else metres


def quantise_gps(lat: float, lon: float, alt: float) -> tuple[float, float, float]:
    """The values a file written from (lat, lon, alt) decodes to; idempotent."""
    spec = ImageSpec(taken=datetime(2000, 1, 1), gps=(lat, lon, alt))
    lat_lon = expected_lat_lon(spec)
    altitude = expected_altitude(spec)
    assert lat_lon is not None and altitude is not None
    return lat_lon[0], lat_lon[1], altitude


def _exif_time(moment: datetime) -> str:
    return moment.strftime("%Y:%m:%d %H:%M:%S")


def _makernote(size: int) -> bytes:
    """A DJI-style MakerNote: an IFD of inline values (position independent), then padding.

    DJI writes it little-endian whatever the TIFF byte order, and readers (exifread) assume so.
    """
    end = "<"
    floats = [0.0, 0.0, 0.0, 1.4, -98.6, 0.3, -90.0, -98.6, 0.0]  # speeds, attitude, gimbal
    ifd = struct.pack(f"{end}H", 1 + len(floats))
    ifd += struct.pack(f"{end}HHI", 0x0001, 2, 4) + b"DJI\0"
    for tag, value in enumerate(floats, start=3):
        ifd += struct.pack(f"{end}HHIf", tag, 11, 1, value)
    ifd += struct.pack(f"{end}I", 0)
    pattern = bytes((i * 131 + 7) & 0xFF for i in range(256))
    padding = pattern * (size // 256 + 1)
    return (ifd + padding)[:size] if size >= len(ifd) else padding[:size]


def _gps_entries(spec: ImageSpec) -> list[Entry]:
    lat, lon, alt = spec.gps if spec.gps is not None else (0.0, 0.0, 0.0)
    lat_dms, lon_dms = _dms(lat), _dms(lon)
    alt_value: Rational = (_alt_units(alt), ALT_DEN)
    if spec.gps_zero_denominator:
        lat_dms = ((lat_dms[0][0], 0), (lat_dms[1][0], 0), (lat_dms[2][0], 0))
        lon_dms = ((lon_dms[0][0], 0), (lon_dms[1][0], 0), (lon_dms[2][0], 0))
        alt_value = (alt_value[0], 0)
    return [
        Entry(0x0000, BYTE, bytes([2, 3, 0, 0])),
        ascii_entry(0x0001, "S" if _negative(lat) else "N"),
        rational_entry(0x0002, *lat_dms),
        ascii_entry(0x0003, "W" if _negative(lon) else "E"),
        rational_entry(0x0004, *lon_dms),
        Entry(0x0005, BYTE, bytes([1 if alt < 0 and _alt_units(alt) else 0])),
        rational_entry(0x0006, alt_value),
    ]


def build_exif(spec: ImageSpec, image_size: tuple[int, int], thumbnail: bytes | None) -> TiffBlock:
    """The TIFF block of the EXIF APP1: IFD0, EXIF IFD (MakerNote last), GPS IFD, IFD1 + thumbnail."""
    stamp = _exif_time(spec.taken)
    ifd0 = [
        ascii_entry(0x010E, "default"),
        ascii_entry(0x010F, spec.make),
        ascii_entry(0x0110, spec.model),
        short_entry(0x0112, 1),
        rational_entry(0x011A, (72, 1)),
        rational_entry(0x011B, (72, 1)),
        short_entry(0x0128, 2),
        ascii_entry(0x0131, spec.software),
        ascii_entry(0x0132, stamp),
        short_entry(0x0213, 1),
    ]
    exif = [
        short_entry(0x8822, 2),
        Entry(0x9000, UNDEFINED, b"0230"),
        ascii_entry(0x9003, stamp),
        ascii_entry(0x9004, stamp),
        Entry(0x9101, UNDEFINED, b"\x01\x02\x03\x00"),
        Entry(0x9204, SRATIONAL, ((0, 1),)),
        short_entry(0x9207, 2),
        short_entry(0x9209, 32),
        Entry(0xA000, UNDEFINED, b"0010"),
        short_entry(0xA001, 1),
        long_entry(0xA002, image_size[0]),
        long_entry(0xA003, image_size[1]),
    ]
    if spec.exposure_time is not None:
        exif.append(rational_entry(0x829A, spec.exposure_time))
    if spec.f_number is not None:
        exif.append(rational_entry(0x829D, spec.f_number))
    if spec.iso is not None:
        exif.append(short_entry(0x8827, spec.iso))
    if spec.focal_length is not None:
        exif.append(rational_entry(0x920A, spec.focal_length))
    if spec.makernote_size > 0:
        # 0x927C is the highest out-of-line tag here, so its blob is the last value before GPS.
        exif.append(Entry(0x927C, UNDEFINED, _makernote(spec.makernote_size)))
    has_gps = spec.gps is not None or spec.gps_zero_denominator
    gps = _gps_entries(spec) if has_gps else None
    ifd1 = None
    if thumbnail is not None:
        ifd1 = [
            short_entry(0x0103, 6),
            rational_entry(0x011A, (72, 1)),
            rational_entry(0x011B, (72, 1)),
            short_entry(0x0128, 2),
        ]
    return build_tiff(spec.byte_order, ifd0, exif, gps, ifd1, thumbnail)


def build_jpeg(
    spec: ImageSpec,
    body: bytes,
    *,
    thumbnail_jpeg: bytes | None = None,
    preview_jpeg: bytes | None = None,
) -> bytes:
    """SOI, [APP0 JFIF, APP2 ICC], APP1 EXIF, [APP1 XMP], [APP2 MPF], body, [preview JPEG].

    ``body`` comes from ``encode_body``. Thumbnail and preview JPEGs are rendered when not given
    (the thumbnail from the body, as a camera makes it); pass prebuilt ones (``encode_jpeg``) to
    build many files quickly. Raises ValueError when the
    EXIF APP1 would exceed 65,533 payload bytes or a given preview does not match ``spec.preview``.
    """
    if not body.startswith(b"\xff") or not body.endswith(b"\xff\xd9"):
        raise ValueError("body must be an encode_body() result: segments after SOI through EOI")
    size = spec.image_size or sof_dimensions(b"\xff\xd8" + body[:4096])
    thumbnail = None
    if spec.thumbnail:
        thumbnail = thumbnail_jpeg or thumbnail_of(body)
    tiff = build_exif(spec, size, thumbnail)
    head = [b"\xff\xd8"]
    if spec.jfif_icc > 0:
        head += [jfif_app0(), icc_app2(icc_profile(max(200, spec.jfif_icc - 18)))]
    head.append(segment(APP1, b"Exif\0\0" + tiff.data))  # raises ValueError past 65,533 bytes
    if spec.xmp is not None:
        head.append(xmp_app1(spec.xmp))
    header = b"".join(head)
    if spec.preview is None:
        return header + body

    preview = preview_jpeg or encode_jpeg(*spec.preview, seed=1, quality=85)
    if sof_dimensions(preview[:4096]) != spec.preview:
        raise ValueError(f"preview JPEG is not {spec.preview[0]}x{spec.preview[1]}")
    primary_size = len(header) + MPF_SEGMENT_LEN + len(body)
    mp_header_at = len(header) + 8  # FF E2, length, "MPF\0"
    kind = FULL_HD_THUMBNAIL if max(spec.preview) >= 1920 else VGA_THUMBNAIL
    mpf = mpf_app2(spec.byte_order, primary_size, primary_size - mp_header_at, len(preview), kind)
    return header + mpf + body + preview


def thumbnail_of(body: bytes) -> bytes:
    """The 160x120 EXIF thumbnail of a body (an ``encode_body`` result), as a camera makes it
    from the picture."""
    with Image.open(io.BytesIO(b"\xff\xd8" + body)) as img:
        img.draft("RGB", THUMBNAIL_SIZE)
        small = img.convert("RGB").resize(THUMBNAIL_SIZE, Image.Resampling.BOX)
    out = io.BytesIO()
    small.save(out, "JPEG", quality=80)
    return out.getvalue()


def exif_app1_end(data: bytes) -> int:
    """Offset just past the EXIF APP1 segment: the bytes a header reader must fetch for GPS."""
    for seg in iter_segments(data):
        if seg.marker == APP1 and data[seg.payload_start : seg.payload_start + 6] == b"Exif\0\0":
            return seg.end
    raise ValueError("no EXIF APP1 segment")
