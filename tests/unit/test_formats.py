"""HEIF/HEIC and TIFF/DNG photos: positions through the meta box and the IFDs, by range reads,
and the embedded JPEG the photo checks judge them by (or why there is none)."""

from __future__ import annotations

import dataclasses
import io
import random
import struct
from collections import Counter
from pathlib import Path

import pytest
from formats_support import (
    RAW_SIZE,
    SPEC,
    build_dng,
    build_heif,
    exif_tiff,
    pillow_heic,
    scene_jpeg,
    spec_at,
)
from PIL import Image
from qc_tool.adapters.local import LocalConnector
from qc_tool.demo.imagegen import ImageSpec, expected_altitude, expected_lat_lon
from qc_tool.domain.checks import decode
from qc_tool.domain.checks.decode import ImageDecodeError, ImageTooLarge, decode_gray
from qc_tool.domain.exif import summarize
from qc_tool.domain.exif_reader import ExifBlock, read_exif_block
from qc_tool.domain.heif import MAX_TOP_BOXES
from qc_tool.domain.models import ExifSummary, RemoteFile
from qc_tool.domain.pixel_reader import PixelSource, read_pixels
from qc_tool.domain.sparse import ReadProgram, run_program
from qc_tool.errors import UnreadableImage
from qc_tool.services.previews import read_source, render_preview


def _reader(data: bytes, cap: int | None = None):  # type: ignore[no-untyped-def]
    def read_at(offset: int, length: int) -> bytes:
        return data[offset : offset + min(length, cap or length)]

    return read_at


def header(data: bytes, cap: int | None = None) -> ExifBlock:
    return run_program(read_exif_block(len(data)), _reader(data, cap))


def position(data: bytes) -> ExifSummary:
    return summarize(header(data))


def pixels(data: bytes) -> PixelSource:
    return run_program(read_pixels(len(data)), _reader(data))


def assert_exact(summary: ExifSummary, spec: ImageSpec) -> None:
    assert (summary.lat, summary.lon) == expected_lat_lon(spec)
    assert summary.alt == expected_altitude(spec)
    assert summary.taken == spec.taken.isoformat()
    assert summary.gps_note is None


# -- HEIF/HEIC positions ---------------------------------------------------------------------


def test_a_phone_heic_gives_the_position_written() -> None:
    assert_exact(position(pillow_heic(SPEC)), SPEC)
    assert position(pillow_heic(SPEC)).camera == "DJI FC6310"


@pytest.mark.parametrize("lat, lon", [(52.37, 4.89), (-0.0001, -179.9999), (89.9, 0.0)])
def test_heif_positions_north_south_east_west(lat: float, lon: float) -> None:
    spec = spec_at(lat, lon, 12.5)
    assert_exact(position(build_heif(exif=exif_tiff(spec))), spec)


def test_big_endian_exif_in_a_heif() -> None:
    spec = dataclasses.replace(spec_at(10.5, 20.25), byte_order="MM")
    assert_exact(position(build_heif(exif=exif_tiff(spec))), spec)


def test_an_exif_item_stored_in_the_meta_box_idat() -> None:
    spec = spec_at(48.85, 2.35)
    data = build_heif(exif=exif_tiff(spec), exif_in_idat=True)
    assert_exact(position(data), spec)


def test_a_heic_without_exif_is_read_and_says_so() -> None:
    for data in (pillow_heic(None), build_heif(exif=None)):
        summary = position(data)
        assert summary.lat is None and summary.gps_note == "no EXIF data in the file"


def test_a_heic_reads_only_its_boxes_and_exif_not_its_image_data() -> None:
    """2 MB of image data before the Exif item: read are the first 4 KB and the EXIF parts."""
    spec = spec_at(1.0, 2.0)
    data = build_heif(exif=exif_tiff(spec), primary=b"\x00" * 2_000_000)
    block = header(data)
    assert_exact(summarize(block), spec)
    assert block.bytes_read < 8192 < len(data)


def test_short_server_reads_give_the_same_heif_result() -> None:
    data = build_heif(exif=exif_tiff(SPEC), primary=b"\x00" * 50_000)
    assert header(data, cap=7) == header(data)


def test_a_heic_reads_as_the_same_facts_whatever_libheif_or_the_hand_layout() -> None:
    assert position(pillow_heic(SPEC)) == position(build_heif(exif=exif_tiff(SPEC, (640, 480))))


# -- broken HEIF files ------------------------------------------------------------------------


def _reason(data: bytes) -> str:
    with pytest.raises(UnreadableImage) as err:
        position(data)
    return err.value.message


def test_a_box_claiming_more_than_its_container_is_named() -> None:
    data = bytearray(build_heif(exif=exif_tiff(SPEC)))
    at = data.index(b"iloc") - 4
    struct.pack_into(">I", data, at, 60_000)
    assert _reason(bytes(data)) == (
        f"corrupt HEIF: the 'iloc' box at byte {at - data.index(b'meta') + 4:,} of the 'meta' "
        "box claims 60,000 bytes, more than its container holds"
    )


def test_a_meta_box_past_the_end_of_the_file_is_truncated() -> None:
    data = build_heif(exif=exif_tiff(SPEC))
    cut = data[: data.index(b"mdat") - 20]
    assert _reason(cut).startswith("truncated: the HEIF 'meta' box ends at byte")


def test_zero_and_tiny_box_sizes_are_refused() -> None:
    data = bytearray(build_heif(exif=exif_tiff(SPEC)))
    struct.pack_into(">I", data, data.index(b"iinf") - 4, 3)
    assert "'iinf' box" in _reason(bytes(data)) and "claims 3 bytes" in _reason(bytes(data))


def test_an_exif_item_pointing_past_the_file() -> None:
    data = bytearray(build_heif(exif=exif_tiff(SPEC)))
    iloc = data.index(b"iloc") + 4 + 4 + 4  # version/flags, sizes, count
    struct.pack_into(">I", data, iloc + 16 + 8, len(data) + 10)  # item 2: 16 bytes on, its offset
    assert _reason(bytes(data)).startswith("corrupt HEIF: an item extent starts at byte")


def test_a_file_of_endless_empty_boxes_stops_at_the_bound() -> None:
    heif = build_heif(exif=None)
    ftyp = heif[: int.from_bytes(heif[:4], "big")]
    data = ftyp + struct.pack(">I4s", 8, b"free") * 200
    assert _reason(data) == f"corrupt HEIF: no 'meta' box in the first {MAX_TOP_BOXES} boxes"


def test_a_video_is_not_a_photo() -> None:
    mp4 = build_heif(exif=None, brands=(b"isom", b"isom", b"mp41"))
    assert _reason(mp4) == "not a photo: an ISO media file (a video?) with brands 'isom', 'mp41'"


def test_every_cut_of_a_heif_header_gives_a_result_or_a_reason() -> None:
    data = build_heif(exif=exif_tiff(SPEC), thumbnail=scene_jpeg(64, 48))
    for cut in range(0, data.index(b"mdat") + 400, 7):
        try:
            position(data[:cut])
            pixels(data[:cut])
        except UnreadableImage as exc:
            assert exc.message


# -- DNG / TIFF ------------------------------------------------------------------------------


@pytest.mark.parametrize("via", ["subifds", "chain"])
@pytest.mark.parametrize("order", ["II", "MM"])
def test_a_dng_gives_the_position_written(via: str, order: str) -> None:
    spec = dataclasses.replace(spec_at(-12.5, 130.8, 88.0), byte_order=order)  # type: ignore[arg-type]
    data = build_dng(spec, scene_jpeg(640, 480), via=via)  # type: ignore[arg-type]
    summary = position(data)
    assert (summary.lat, summary.lon, summary.alt) == (
        *expected_lat_lon(spec),
        expected_altitude(spec),
    )  # type: ignore[misc]
    assert summary.camera == "DJI FC6310" and summary.taken == spec.taken.isoformat()


@pytest.mark.parametrize("via", ["subifds", "chain"])
def test_a_dng_preview_is_what_the_checks_judge(via: str) -> None:
    preview = scene_jpeg(640, 480)
    data = build_dng(SPEC, preview, via=via)  # type: ignore[arg-type]
    got = pixels(data)
    assert got.data == preview and got.source == "preview" and got.not_checked is None
    assert got.dimensions == RAW_SIZE
    assert got.bytes_read < len(data) + 4096


def test_a_dng_without_a_preview_is_not_checked_and_says_why() -> None:
    got = pixels(build_dng(SPEC, None))
    assert got.data == b"" and got.dimensions == RAW_SIZE
    assert got.not_checked == (
        "not checked: the TIFF/DNG holds no JPEG preview (raw data is not decoded)"
    )


def test_a_dng_reads_its_ifds_not_its_raw_data() -> None:
    data = build_dng(SPEC, None) + b"\x00" * 3_000_000  # the raw data a real DNG carries
    assert header(data).bytes_read < 8192
    assert pixels(data).bytes_read < 8192


def test_a_dng_sub_ifd_pointing_at_itself_ends() -> None:
    data = bytearray(build_dng(SPEC, None, via="chain"))
    raw_at = struct.unpack_from("<I", data, 8 + 2 + 12 * struct.unpack_from("<H", data, 8)[0])[0]
    count = struct.unpack_from("<H", data, raw_at)[0]
    struct.pack_into("<I", data, raw_at + 2 + 12 * count, 8)  # the raw IFD links back to IFD0
    assert pixels(bytes(data)).not_checked is not None


# -- previews of HEIF files ------------------------------------------------------------------


def test_a_heif_jpeg_thumbnail_is_what_the_checks_judge() -> None:
    thumb = scene_jpeg(320, 240)
    got = pixels(build_heif(exif=exif_tiff(SPEC), thumbnail=thumb, primary=b"\x00" * 500_000))
    assert got.data == thumb and got.not_checked is None and got.source == "preview"
    assert got.bytes_read < 4096 + len(thumb) + 4096


def test_a_hevc_heic_without_a_jpeg_is_read_whole_for_the_checks_to_decode() -> None:
    data = pillow_heic(SPEC)
    got = pixels(data)
    assert (got.data, got.source, got.not_checked, got.bytes_read) == (
        data,
        "full",
        None,
        len(data),
    )
    assert got.dimensions == (640, 480)  # the primary item's ispe property: for the resolution rule


def test_a_heif_in_a_coding_the_checks_cannot_decode_is_not_checked_and_says_why() -> None:
    got = pixels(build_heif(exif=exif_tiff(SPEC), primary_type=b"av01"))
    assert got.data == b""
    assert got.not_checked == (
        "not checked: the HEIF's image is coded as 'av01', which the checks do not decode"
    )


def test_a_heic_is_read_as_heic_whatever_its_name() -> None:
    """The readers never see a name: the bytes decide (the scan test names one .jpg)."""
    data = pillow_heic(SPEC)
    assert_exact(position(data), SPEC)


# -- decoding a HEVC HEIC for the checks ----------------------------------------------------


def test_a_heic_decodes_to_luma_at_the_analysis_size() -> None:
    gray = decode_gray(pillow_heic(SPEC, (640, 480)), long_side=320)
    assert (gray.width, gray.height, gray.pixels.shape) == (640, 480, (240, 320))


def test_a_cut_heic_is_a_decode_error_with_the_reason() -> None:
    data = pillow_heic(SPEC)
    with pytest.raises(ImageDecodeError, match="^Corrupt HEIF data"):
        decode_gray(data[: len(data) // 2], long_side=320)


def test_a_heic_over_the_pixel_bound_is_refused_before_decoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(decode, "MAX_HEIF_PIXELS", 640 * 480 - 1)
    with pytest.raises(ImageTooLarge, match="HEIF image too large to decode"):
        decode_gray(pillow_heic(SPEC), long_side=320)


# -- the page's previews of these photos ------------------------------------------------------


def _source(tmp_path: Path, name: str, data: bytes) -> PixelSource:
    (tmp_path / "S" / "F").mkdir(parents=True, exist_ok=True)
    (tmp_path / "S" / "F" / name).write_bytes(data)
    conn = LocalConnector(tmp_path).connect()
    return read_source(conn, "S", RemoteFile(f"F/{name}", len(data), 0), lambda: False)


def test_the_page_shows_a_heic_and_a_dng_preview(tmp_path: Path) -> None:
    for name, data in (
        ("a.HEIC", pillow_heic(SPEC)),
        ("b.DNG", build_dng(SPEC, scene_jpeg(640, 480))),
    ):
        shown = Image.open(io.BytesIO(render_preview(_source(tmp_path, name, data), 200)))
        assert (shown.format, max(shown.size)) == ("JPEG", 200)


def test_the_page_says_why_a_dng_without_a_preview_has_no_image(tmp_path: Path) -> None:
    with pytest.raises(UnreadableImage, match=r"^F/c.DNG: no image to show \(not checked: "):
        _source(tmp_path, "c.DNG", build_dng(SPEC, None))


def test_a_phone_heic_position_costs_two_round_trips() -> None:
    """The first 4 KB (ftyp, meta) and the Exif item's first 4 KB: as few as a JPEG needs."""
    data = pillow_heic(SPEC)
    batches = 0

    def count(program: ReadProgram[ExifBlock]) -> ExifBlock:
        nonlocal batches
        try:
            want = next(program)
            while True:
                batches += 1
                want = program.send([data[o : o + n] for o, n in want])
        except StopIteration as stop:
            block: ExifBlock = stop.value
            return block

    assert_exact(summarize(count(read_exif_block(len(data)))), SPEC)
    assert batches == 2


def test_a_dng_claiming_millions_of_sub_ifds_costs_a_few_values() -> None:
    """SubIFDs with a count of 700,000 (2.8 MB of offsets, all inside the file)."""
    data = bytearray(build_dng(SPEC, scene_jpeg(640, 480), raw_bytes=3_000_000))
    count = struct.unpack_from("<H", data, 8)[0]
    entries = [struct.unpack_from("<HHII", data, 10 + 12 * i) for i in range(count)]
    (at,) = [10 + 12 * i for i, e in enumerate(entries) if e[0] == 0x014A]
    struct.pack_into("<I", data, at + 4, 700_000)
    asked = 0

    def read_at(offset: int, length: int) -> bytes:
        nonlocal asked
        asked += length
        return bytes(data[offset : offset + length])

    try:
        run_program(read_pixels(len(data)), read_at)
    except UnreadableImage as exc:
        assert exc.message.startswith(("corrupt TIFF", "truncated"))
    assert asked < 64 * 1024


def test_a_dng_model_of_millions_of_characters_is_refused_not_fetched() -> None:
    data = bytearray(build_dng(SPEC, None, raw_bytes=3_000_000))
    count = struct.unpack_from("<H", data, 8)[0]
    (at,) = [
        10 + 12 * i
        for i in range(count)
        if struct.unpack_from("<H", data, 10 + 12 * i)[0] == 0x0110
    ]
    struct.pack_into("<I", data, at + 4, 2_000_000)  # Model: 2 MB of ASCII, inside the file
    with pytest.raises(
        UnreadableImage, match="corrupt EXIF: the value of tag 0x0110 claims 2,000,000"
    ):
        header(bytes(data))


def _both_passes(data: bytes) -> tuple[list[str], int]:
    """ "result" or "reason" from the header pass and the pixel pass; bytes they asked for."""
    asked = 0

    def read_at(offset: int, length: int) -> bytes:
        nonlocal asked
        asked += length
        return data[offset : offset + length]

    out = []
    programs: tuple[ReadProgram[object], ...] = (
        read_exif_block(len(data)),  # type: ignore[assignment]
        read_pixels(len(data)),  # type: ignore[assignment]
    )
    for program in programs:
        try:
            run_program(program, read_at)
            out.append("result")
        except UnreadableImage as exc:
            assert exc.message
            out.append("reason")
    return out, asked


@pytest.mark.parametrize("kind", ["heif", "libheif", "dng"])
def test_seeded_random_damage_gives_a_result_or_a_reason_and_stays_bounded(kind: str) -> None:
    """400 files with 1-8 random bytes changed in their boxes or IFDs, through both passes."""
    if kind == "heif":
        good = build_heif(exif=exif_tiff(SPEC), thumbnail=scene_jpeg(64, 48), primary=bytes(4000))
        span = good.index(b"mdat")
    elif kind == "libheif":  # ipma, ipco, ispe and the rest of what libheif writes
        good = pillow_heic(SPEC)
        span = good.index(b"mdat")
    else:
        good = build_dng(SPEC, scene_jpeg(64, 48), raw_bytes=4000)
        span = 600
    rng = random.Random(13)
    outcomes: Counter[str] = Counter()
    for _ in range(400):
        data = bytearray(good)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(span)] = rng.randrange(256)
        found, asked = _both_passes(bytes(data))
        outcomes.update(found)
        assert asked <= 4 * len(data) + 16_384  # a few times the file at most, never unbounded
    assert outcomes["result"] and outcomes["reason"]
