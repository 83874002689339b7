"""The synthetic DJI files are what every reader test and benchmark trusts, so check them with
independent parsers (exifread, Pillow, lcms) rather than with the generator's own code."""

from __future__ import annotations

import io
import itertools
import random
import struct
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path
from typing import Any

import exifread
import pytest
from PIL import Image, ImageCms
from qc_tool.demo.imagegen import (
    ImageSpec,
    build_jpeg,
    encode_body,
    exif_app1_end,
    expected_altitude,
    expected_lat_lon,
    quantise_gps,
)
from qc_tool.demo.segments import iter_segments
from qc_tool.demo.sites import (
    SEED_LAYOUT,
    SEED_SITE,
    SOUTH_WEST_LAYOUT,
    SiteLayout,
    SiteTruth,
    generate_demo_sites,
    generate_site,
    make_body,
    with_defects,
)

TAKEN = datetime(2024, 5, 14, 9, 31, 7)


@pytest.fixture(scope="module")
def body() -> bytes:
    return encode_body(320, 240, seed=3, quality=92)


def exif_tags(data: bytes) -> dict[str, Any]:
    """exifread on SOI + the EXIF APP1 alone: exifread 3.5 only looks ~4 KB past JFIF for APP1."""
    start = next(
        s.offset
        for s in iter_segments(data)
        if s.marker == 0xE1 and data[s.offset + 4 : s.offset + 10] == b"Exif\0\0"
    )
    stream = io.BytesIO(b"\xff\xd8" + data[start : exif_app1_end(data)])
    return exifread.process_file(stream, details=False)


def decode_gps(tags: dict[str, Any]) -> tuple[float, float, float]:
    """What a correct reader computes: d + m/60 + s/3600 in floats, sign from the refs."""

    def dms(tag: str) -> float:
        d, m, s = tags[tag].values
        return float(d) + float(m) / 60 + float(s) / 3600

    lat = dms("GPS GPSLatitude") * (-1 if str(tags["GPS GPSLatitudeRef"]) == "S" else 1)
    lon = dms("GPS GPSLongitude") * (-1 if str(tags["GPS GPSLongitudeRef"]) == "W" else 1)
    alt = float(tags["GPS GPSAltitude"].values[0])
    return lat, lon, -alt if tags["GPS GPSAltitudeRef"].values[0] == 1 else alt


def markers(data: bytes) -> list[tuple[int, bytes]]:
    return [(s.marker, data[s.payload_start : s.payload_start + 4]) for s in iter_segments(data)]


def test_body_is_the_image_segments_without_soi_or_app_markers(body: bytes) -> None:
    assert body[:2] == b"\xff\xdb" and body.endswith(b"\xff\xd9")
    image = Image.open(io.BytesIO(b"\xff\xd8" + body))
    image.load()
    assert image.size == (320, 240)


@pytest.mark.parametrize("order", ["II", "MM"])
@pytest.mark.parametrize(
    "gps", [(52.3712345678, 4.8923456789, 47.25), (-33.4489123, -70.6693456, 61.5)]
)
def test_exifread_reads_back_camera_time_and_exact_gps(
    body: bytes, order: str, gps: tuple[float, float, float]
) -> None:
    spec = ImageSpec(taken=TAKEN, gps=gps, byte_order=order)  # type: ignore[arg-type]
    data = build_jpeg(spec, body)
    Image.open(io.BytesIO(data)).load()
    tags = exifread.process_file(io.BytesIO(data), details=False)
    assert str(tags["Image Make"]) == "DJI" and str(tags["Image Model"]) == "FC6310"
    assert str(tags["EXIF DateTimeOriginal"]) == "2024:05:14 09:31:07"
    assert tags["EXIF ExifImageWidth"].values == [320]
    lat, lon, alt = decode_gps(tags)
    assert (lat, lon) == expected_lat_lon(spec)
    assert alt == expected_altitude(spec) == gps[2]
    step = 1 / 36_000_000  # 1/10000 arc-second in degrees; rounding errs by half a step
    assert abs(lat - gps[0]) <= step / 2 and abs(lon - gps[1]) <= step / 2
    assert data[12:14] == order.encode()  # SOI, APP1 header, "Exif\0\0", then byte order


def test_quantised_gps_decodes_back_to_itself() -> None:
    rng = random.Random(1)
    for _ in range(2000):
        raw = (rng.uniform(-90, 90), rng.uniform(-180, 180), rng.uniform(-50, 500))
        q = quantise_gps(*raw)
        assert quantise_gps(*q) == q
        spec = ImageSpec(taken=TAKEN, gps=q)
        assert expected_lat_lon(spec) == q[:2] and expected_altitude(spec) == q[2]


def test_makernote_puts_gps_ifd_30kb_into_app1_after_the_exif_ifd(body: bytes) -> None:
    spec = ImageSpec(taken=TAKEN, gps=(52.37, 4.89, 40.0), makernote_size=30_000)
    data = build_jpeg(spec, body)
    tags = exifread.process_file(io.BytesIO(data), details=False)
    exif_ifd, gps_ifd = tags["Image ExifOffset"].values[0], tags["Image GPSInfo"].values[0]
    thumb = tags["Thumbnail JPEGInterchangeFormat"].values[0]
    assert exif_ifd < gps_ifd < thumb
    assert gps_ifd + 10 > 30_000  # TIFF offsets count from 10 bytes into the APP1 segment
    assert decode_gps(tags)[:2] == expected_lat_lon(spec)
    makernote = Image.open(io.BytesIO(data)).getexif().get_ifd(0x8769)[0x927C]
    assert len(makernote) == 30_000 and makernote.startswith(b"\x0a\x00\x01\x00")
    assert exif_app1_end(data) == 2 + 2 + struct.unpack(">H", data[4:6])[0]


def test_thumbnail_is_a_160x120_jpeg_in_ifd1(body: bytes) -> None:
    tags = exifread.process_file(io.BytesIO(build_jpeg(ImageSpec(taken=TAKEN), body)))
    thumbnail = Image.open(io.BytesIO(tags["JPEGThumbnail"]))
    thumbnail.load()
    assert thumbnail.size == (160, 120)
    assert "GPS GPSLatitude" not in tags


@pytest.mark.parametrize("icc_size", [3_000, 60_000])
def test_jfif_and_icc_come_before_exif(body: bytes, icc_size: int) -> None:
    spec = ImageSpec(taken=TAKEN, gps=(52.37, 4.89, 40.0), jfif_icc=icc_size)
    data = build_jpeg(spec, body)
    assert markers(data)[:3] == [(0xE0, b"JFIF"), (0xE2, b"ICC_"), (0xE1, b"Exif")]
    image = Image.open(io.BytesIO(data))
    profile = image.info["icc_profile"]
    assert abs(len(profile) - icc_size) < 100
    parsed = ImageCms.ImageCmsProfile(io.BytesIO(profile))
    assert ImageCms.getProfileDescription(parsed).strip() == "sRGB IEC61966-2.1"
    assert exif_app1_end(data) > icc_size
    assert decode_gps(exif_tags(data))[:2] == expected_lat_lon(spec)
    image.load()


def test_xmp_packet_carries_dji_gimbal_fields(body: bytes) -> None:
    spec = ImageSpec(taken=TAKEN, xmp={"GimbalPitchDegree": "-90.0", "RelativeAltitude": "+41.20"})
    data = build_jpeg(spec, body)
    (xmp,) = [
        s for s in iter_segments(data) if data[s.payload_start :].startswith(b"http://ns.adobe")
    ]
    assert xmp.offset >= exif_app1_end(data)
    packet = data[xmp.payload_start + 29 : xmp.end].decode()
    rdf = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
    description = ET.fromstring(packet[packet.index("<x:xmpmeta") : packet.index("<?xpacket end")])
    attrs = description.find(f"{rdf}RDF/{rdf}Description").attrib  # type: ignore[union-attr]
    assert attrs["{http://www.dji.com/drone-dji/1.0/}GimbalPitchDegree"] == "-90.0"
    assert attrs["{http://www.dji.com/drone-dji/1.0/}RelativeAltitude"] == "+41.20"


@pytest.mark.parametrize("order", ["II", "MM"])
def test_mpf_index_points_at_a_decodable_preview(body: bytes, order: str) -> None:
    spec = ImageSpec(taken=TAKEN, gps=(52.37, 4.89, 40.0), preview=(640, 480), byte_order=order)  # type: ignore[arg-type]
    data = build_jpeg(spec, body)
    (mpf,) = [s for s in iter_segments(data) if data[s.payload_start :].startswith(b"MPF\0")]
    mp_header = mpf.payload_start + 4
    primary, preview = Image.open(io.BytesIO(data)).mpinfo[0xB002]  # type: ignore[attr-defined]
    assert primary["DataOffset"] == 0 and primary["Attribute"]["RepresentativeImageFlag"]
    assert data[primary["Size"] - 2 : primary["Size"]] == b"\xff\xd9"
    start = mp_header + preview["DataOffset"]
    assert start == primary["Size"] and start + preview["Size"] == len(data)
    image = Image.open(io.BytesIO(data[start : start + preview["Size"]]))
    image.load()
    assert image.size == (640, 480)
    main = Image.open(io.BytesIO(data))
    main.load()
    assert main.size == (320, 240)


def test_zero_denominator_gps_is_present_but_unusable(body: bytes) -> None:
    spec = ImageSpec(taken=TAKEN, gps=(52.37, 4.89, 40.0), gps_zero_denominator=True)
    tags = exif_tags(build_jpeg(spec, body))
    for tag in ("GPS GPSLatitude", "GPS GPSLongitude", "GPS GPSAltitude"):
        assert [v.den for v in tags[tag].values] == [0] * len(tags[tag].values)
    assert tags["GPS GPSLatitude"].values[0].num == 52
    assert expected_lat_lon(spec) is None and expected_altitude(spec) is None


def test_exif_app1_over_64kb_is_refused(body: bytes) -> None:
    with pytest.raises(ValueError, match="65,533"):
        build_jpeg(ImageSpec(taken=TAKEN, makernote_size=64_000), body)


def test_seed_layout_is_the_seed_site_shape() -> None:
    assert SEED_LAYOUT.total == 1375 and SEED_LAYOUT.with_gps == 1332
    assert [count for _, count in SEED_LAYOUT.folders] == [
        513,
        180,
        150,
        120,
        110,
        90,
        80,
        50,
        40,
        20,
        17,
        5,
    ]
    assert len({name for name, _ in SEED_LAYOUT.folders}) == 12


def test_seed_site_has_the_promised_variety(tmp_path: Path) -> None:
    truth = generate_site(tmp_path, SEED_SITE, SEED_LAYOUT, body=make_body(SEED_LAYOUT))
    assert len(truth.images) == 1375 and truth.gps_points == 1332
    assert truth.folders() == dict(SEED_LAYOUT.folders)
    assert {i.gps for i in truth.images} == {"ok", "absent", "zero_denominator"}
    assert 300 < sum(i.makernote_size > 0 for i in truth.images) < 620
    assert any(i.jfif_icc == 50_000 for i in truth.images)
    assert any(i.byte_order == "MM" for i in truth.images)
    for image in random.Random(0).sample(truth.images, 60):
        data = (tmp_path / SEED_SITE / image.path).read_bytes()
        assert len(data) == image.size and exif_app1_end(data) == image.exif_end
        tags = exif_tags(data)
        assert (
            str(tags["EXIF DateTimeOriginal"]).replace(":", "-", 2).replace(" ", "T") == image.taken
        )
        if image.gps == "ok":
            assert decode_gps(tags) == (image.lat, image.lon, image.alt)


def test_site_truth_matches_files_and_round_trips_json(tmp_path: Path) -> None:
    layout = SiteLayout(
        folders=SOUTH_WEST_LAYOUT.folders[:2],
        without_gps=3,
        origin=SOUTH_WEST_LAYOUT.origin,
        previews=True,
        preview_size=(320, 240),
    )
    truth = generate_site(tmp_path, "20031877", layout, body=make_body(layout), seed=4)
    assert len(truth.images) == 60 and truth.gps_points == 57
    times = [str(i.taken) for i in truth.images if i.path.startswith("Tower-Scans/")]
    assert times == sorted(times) and len(set(times)) == len(times)
    for image in truth.images:
        path = tmp_path / "20031877" / image.path
        assert path.stat().st_size == image.size and int(path.stat().st_mtime) == image.mtime
        if image.gps == "ok":
            lat, lon, alt = decode_gps(exif_tags(path.read_bytes()))
            assert (lat, lon, alt) == (image.lat, image.lon, image.alt)
            assert lat < 0 and lon < 0 and 30 <= alt <= 80
    truth.write_truth(tmp_path / "truth.json")
    assert SiteTruth.read_truth(tmp_path / "truth.json") == truth
    again = generate_site(tmp_path / "again", "20031877", layout, body=make_body(layout), seed=4)
    assert again == truth


def test_demo_sites_include_broken_files(tmp_path: Path) -> None:
    demo, small = generate_demo_sites(tmp_path)
    assert (demo.site, small.site) == ("demo-site", "demo-small")
    broken = {i.error: i for i in demo.images if i.error}
    assert set(broken) == {"empty", "truncated", "not_jpeg"}
    assert (tmp_path / "demo-site" / broken["empty"].path).stat().st_size == 0
    truncated = (tmp_path / "demo-site" / broken["truncated"].path).read_bytes()
    assert truncated[:2] == b"\xff\xd8" and len(truncated) < 200
    assert Image.open(tmp_path / "demo-site" / broken["not_jpeg"].path).format == "PNG"
    good = [i for i in demo.images if i.error is None]
    assert len(good) == 40 and demo.gps_points == 36
    Image.open(tmp_path / "demo-site" / good[0].path).load()
    located = [(i.lat, i.lon) for i in small.images if i.lat is not None and i.lon is not None]
    assert located and all(lat < 0 and lon < 0 for lat, lon in located)


def test_generated_defects_are_labelled_in_the_truth_and_keep_its_counts(tmp_path: Path) -> None:
    from qc_tool.demo.defects import DEFECT_KINDS, PAIR_KINDS
    from qc_tool.domain.checks.geo import haversine_m

    plain = SiteLayout(
        folders=(("Tower-Scans", 30), ("Antenna-Sector-A", 20)),
        without_gps=3,
        previews=True,
        preview_size=(160, 120),
    )
    layout = with_defects(plain, rate=0.04)
    truth = generate_site(tmp_path, "S", layout, body=make_body(layout))
    assert len(truth.images) == 50 and truth.gps_points == 47  # as without defects
    for kind in DEFECT_KINDS:
        assert len(truth.with_defect(kind)) == (4 if kind in PAIR_KINDS else 2), kind
    assert SiteTruth.from_json(truth.to_json()) == truth
    images = truth.images
    for before, image in itertools.pairwise(images):
        files = [(tmp_path / "S" / i.path).read_bytes() for i in (before, image)]
        if "identical" in image.defects and "identical" in before.defects:
            assert files[0] == files[1] and before.mtime == image.mtime
        if "near_duplicate" in image.defects and "near_duplicate" in before.defects:
            assert files[0] != files[1]
        if "hovering" in image.defects and "hovering" in before.defects:
            assert before.lat is not None and before.lon is not None
            assert image.lat is not None and image.lon is not None
            assert haversine_m(before.lat, before.lon, image.lat, image.lon) < 1.0
    for image in images:
        data = (tmp_path / "S" / image.path).read_bytes()
        assert len(data) == image.size
        if "truncated" in image.defects:
            assert image.error == "truncated" and not data.endswith(b"\xff\xd9")
            assert exif_app1_end(data) == image.exif_end  # the header (and GPS) is whole
        elif "outside" in image.defects:
            assert image.lat is not None and image.lon is not None
            assert haversine_m(image.lat, image.lon, *plain.origin) > 1_000
    # The shots are 5 m apart, so no two photos a few seconds apart hover unless planted.
    clean = [i for i in images if i.lat is not None and not i.defects]
    for a, b in itertools.pairwise(clean):
        assert a.lat is not None and a.lon is not None and b.lat is not None and b.lon is not None
        if a.path.split("/")[0] == b.path.split("/")[0]:
            assert haversine_m(a.lat, a.lon, b.lat, b.lon) > 2.0
