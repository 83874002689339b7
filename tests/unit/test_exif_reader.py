"""The EXIF read program on generated files: exact values, awkward layouts, and bad input."""

from __future__ import annotations

import io
import struct
from datetime import datetime

import pytest
from PIL import Image
from qc_tool.demo.imagegen import ImageSpec, build_jpeg, encode_body, exif_app1_end, quantise_gps
from qc_tool.domain.exif import summarize
from qc_tool.domain.exif_reader import ExifBlock, read_exif_block
from qc_tool.domain.sparse import run_program
from qc_tool.errors import UnreadableImage

BODY = encode_body(160, 120, seed=3)
TAKEN = datetime(2024, 5, 14, 9, 30, 0)


def _read(data: bytes, cap: int | None = None) -> ExifBlock:
    def read_at(offset: int, length: int) -> bytes:
        return data[offset : offset + min(length, cap or length)]

    return run_program(read_exif_block(len(data)), read_at)


def _jpeg(**kw: object) -> bytes:
    return build_jpeg(ImageSpec(taken=TAKEN, **kw), BODY)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "layout",
    [
        {},
        {"makernote_size": 30_000},
        {"jfif_icc": 3_000},
        {"jfif_icc": 60_000},
        {"byte_order": "MM", "makernote_size": 20_000},
        {"preview": (320, 240)},
    ],
    ids=["plain", "gps-behind-makernote", "jfif-icc", "large-icc", "big-endian", "mpf-preview"],
)
def test_gps_time_and_camera_are_exact(layout: dict[str, object]) -> None:
    lat, lon, alt = quantise_gps(-33.4489123, -70.6693456, 61.25)
    data = _jpeg(gps=(lat, lon, alt), **layout)
    block = _read(data)
    facts = summarize(block)
    assert (facts.lat, facts.lon, facts.alt) == (lat, lon, alt)
    assert facts.taken == "2024-05-14T09:30:00"
    assert facts.camera == "DJI FC6310"
    assert not block.truncated
    assert block.bytes_read <= 1.2 * exif_app1_end(data)


def test_gps_behind_a_makernote_costs_far_less_than_the_exif_segment() -> None:
    data = _jpeg(gps=quantise_gps(52.37, 4.89, 40.0), makernote_size=30_000)
    block = _read(data)
    assert block.bytes_read < 10_000 < exif_app1_end(data)


def test_short_reads_give_the_same_result() -> None:
    data = _jpeg(gps=quantise_gps(52.37, 4.89, 40.0), jfif_icc=60_000, makernote_size=25_000)
    assert summarize(_read(data, cap=1000)) == summarize(_read(data))


def test_zero_denominators_mean_missing_never_zero() -> None:
    facts = summarize(_read(_jpeg(gps=quantise_gps(52.37, 4.89, 40.0), gps_zero_denominator=True)))
    assert facts.lat is None and facts.lon is None and facts.alt is None
    assert facts.gps_note is not None and "unknown" in facts.gps_note


def test_an_image_without_gps_says_why() -> None:
    facts = summarize(_read(_jpeg()))
    assert facts.lat is None and facts.gps_note == "no GPS tags"


def _pillow_jpeg(lat: tuple[float, ...], lon: tuple[float, ...], lat_ref: str = "N") -> bytes:
    exif = Image.Exif()
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = lat_ref, lat, "E", lon
    out = io.BytesIO()
    Image.new("RGB", (16, 16)).save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


@pytest.mark.parametrize(
    ("lat", "lon"), [((91.0, 0.0, 0.0), (4.0, 0.0, 0.0)), ((52.0, 0.0, 0.0), (200.0, 0.0, 0.0))]
)
def test_out_of_range_positions_are_rejected_with_a_reason(
    lat: tuple[float, ...], lon: tuple[float, ...]
) -> None:
    facts = summarize(_read(_pillow_jpeg(lat, lon)))
    assert facts.lat is None and facts.gps_note is not None and "outside" in facts.gps_note


def test_every_truncation_of_a_header_gives_a_result_or_a_reason() -> None:
    data = _jpeg(gps=quantise_gps(52.37, 4.89, 40.0), makernote_size=2_000)
    end = exif_app1_end(data)
    outcomes = set()
    for cut in range(end + 64):
        try:
            block = _read(data[:cut])
            facts = summarize(block)
            outcomes.add("truncated" if block.truncated else "ok")
            assert facts.lat is None or facts.lat == pytest.approx(52.37, abs=1e-3)
        except UnreadableImage as exc:
            assert exc.message  # a clear reason, and nothing else escapes
            outcomes.add("reason")
    assert outcomes == {"reason", "truncated"}


@pytest.mark.parametrize(
    ("head", "reason"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "PNG"),
        (b"\0\0\0\x18ftypisom\0\0\0\0isommp41" + b"\0" * 64, "ISO media file"),  # a video
        (b"just some text, named .jpg\n" * 4, "text"),
        (b"", "empty"),
    ],
)
def test_files_that_are_not_jpegs_are_named(head: bytes, reason: str) -> None:
    with pytest.raises(UnreadableImage, match=reason):
        _read(head)


def _with_tiff_patch(data: bytes, patch: dict[int, bytes]) -> bytes:
    """Overwrite bytes at offsets relative to the TIFF header inside the EXIF segment."""
    base = data.index(b"Exif\x00\x00") + 6
    out = bytearray(data)
    for offset, raw in patch.items():
        out[base + offset : base + offset + len(raw)] = raw
    return bytes(out)


def test_huge_entry_counts_and_pointers_outside_the_segment_are_reported() -> None:
    data = _jpeg(gps=quantise_gps(52.37, 4.89, 40.0))
    ifd0 = struct.unpack(
        "<I", data[data.index(b"Exif\x00\x00") + 10 : data.index(b"Exif\x00\x00") + 14]
    )[0]
    with pytest.raises(UnreadableImage, match="entries|outside"):
        _read(_with_tiff_patch(data, {ifd0: struct.pack("<H", 0xFFFF)}))
    with pytest.raises(UnreadableImage, match="outside"):
        _read(_with_tiff_patch(data, {4: struct.pack("<I", 0x7FFFFFF0)}))


def test_an_app1_claiming_more_bytes_than_the_file_has() -> None:
    data = _jpeg(gps=quantise_gps(52.37, 4.89, 40.0))
    start = data.index(b"Exif\x00\x00") - 4
    cut = data[: start + 200]
    with pytest.raises(UnreadableImage, match="claims"):
        _read(cut)


def test_a_directory_pointing_at_itself_does_not_hang() -> None:
    data = _jpeg(gps=quantise_gps(52.37, 4.89, 40.0))
    base = data.index(b"Exif\x00\x00") + 6
    ifd0 = struct.unpack("<I", data[base + 4 : base + 8])[0]
    count = struct.unpack("<H", data[base + ifd0 : base + ifd0 + 2])[0]
    # IFD0's next-IFD link pointing back at IFD0 (a loop); the reader cuts that link.
    looped = _with_tiff_patch(data, {ifd0 + 2 + 12 * count: struct.pack("<I", ifd0)})
    assert summarize(_read(looped)).lat == pytest.approx(52.37, abs=1e-3)
