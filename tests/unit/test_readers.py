"""The one JPEG segment walker and the one TIFF IFD reader, in both forms: asking for byte
ranges (read programs), and over bytes already at hand. Their callers' tests are
test_exif_reader.py, test_bad_input.py, checks/test_mpf.py and test_previews.py."""

from __future__ import annotations

import struct
from datetime import datetime

import pytest
from qc_tool.demo.imagegen import ImageSpec, build_jpeg, encode_body, quantise_gps
from qc_tool.demo.tiffbuild import ByteOrder, ascii_entry, long_entry, short_entry, write_ifd
from qc_tool.domain.jpeg import (
    MAX_SEGMENTS,
    MAX_SKIPPED,
    Segment,
    SegmentWalk,
    frame_size,
    header_segments,
    segments,
)
from qc_tool.domain.pixel_reader import PixelSource, read_pixels
from qc_tool.domain.sparse import ReadProgram, SparseBytes, run_program
from qc_tool.domain.tiff import MAX_IFD_ENTRIES, Entry, IfdRequest, Tiff
from qc_tool.errors import UnreadableImage

BODY = encode_body(160, 120, seed=3)
REAL = build_jpeg(
    ImageSpec(
        taken=datetime(2024, 5, 14, 9, 30),
        gps=quantise_gps(52.37, 4.89, 40.0),
        jfif_icc=3_000,
        makernote_size=2_000,
        preview=(320, 240),
    ),
    BODY,
)
SOS = REAL.index(BODY) + BODY.index(b"\xff\xda")  # the main image's start of scan


class Driver:
    """A sequential driver over ``data`` that counts batches and bytes asked for."""

    def __init__(self, data: bytes, cap: int | None = None) -> None:
        self.data, self.cap = data, cap
        self.batches = self.asked = 0

    def run(self, program: ReadProgram[object]) -> object:
        try:
            want = next(program)
            while True:
                self.batches += 1
                self.asked += sum(length for _, length in want)
                cap = self.cap
                want = program.send([self.data[off : off + min(n, cap or n)] for off, n in want])
        except StopIteration as stop:
            return stop.value


def pixels(data: bytes) -> PixelSource:
    return run_program(read_pixels(len(data)), lambda off, n: data[off : off + n])


def walk_remote(data: bytes, read_ahead: int = 4096, cap: int | None = None) -> list[Segment]:
    """Every segment through the end of the header, read as the header readers read it."""

    def program() -> ReadProgram[list[Segment]]:
        walk = SegmentWalk(SparseBytes(len(data)), read_ahead)
        found = [(yield from walk.next())]
        while not found[-1].ends_header:
            found.append((yield from walk.next()))
        return found

    out = Driver(data, cap).run(program())
    assert isinstance(out, list)
    return out


# -- the JPEG segment walker ----------------------------------------------------------------


def test_both_forms_of_the_walk_find_the_same_segments_whatever_the_read_size() -> None:
    at_hand = list(segments(REAL))
    assert at_hand[-1].marker == 0xDA and at_hand[-1].offset == SOS
    assert [s.marker for s in at_hand[:3]] == [0xE0, 0xE2, 0xE1]  # JFIF, ICC, EXIF
    for cap in (None, 1000, 7):
        assert walk_remote(REAL, cap=cap) == at_hand
    assert [(p, m) for p, m, _ in header_segments(REAL)] == [
        (s.offset, s.marker) for s in at_hand[:-1]
    ]


def test_small_segments_after_a_header_cost_no_extra_round_trip() -> None:
    driver = Driver(REAL)
    walk = SegmentWalk(SparseBytes(len(REAL)), 4096)
    first = driver.run(walk.next())
    assert isinstance(first, Segment) and first.marker == 0xE0
    driver.run(walk.next())  # the ICC segment's header lies inside the first read-ahead
    assert driver.batches == 1


def test_a_file_cut_inside_a_segment_header_is_truncated() -> None:
    app1 = next(s for s in segments(REAL) if s.marker == 0xE1)
    cut = REAL[: app1.offset + 3]
    with pytest.raises(UnreadableImage, match="^truncated: the file ends inside the JPEG header"):
        walk_remote(cut)
    with pytest.raises(UnreadableImage, match="^truncated"):
        list(segments(cut))
    # The untrusted-bytes form stops instead, after the segments it could read.
    assert [m for _, m, _ in header_segments(cut)] == [0xE0, 0xE2]


def test_a_payload_cut_by_the_end_of_the_bytes_is_cut_short() -> None:
    app1 = next(s for s in segments(REAL) if s.marker == 0xE1)
    cut = REAL[: app1.offset + 100]
    *_, (offset, marker, payload) = header_segments(cut)
    assert (offset, marker) == (app1.offset, 0xE1) and payload == cut[app1.payload_start :]


def test_a_byte_that_is_not_a_marker_is_named_with_its_offset() -> None:
    app1 = next(s for s in segments(REAL) if s.marker == 0xE1)
    bad = REAL[: app1.offset] + b"\x00" + REAL[app1.offset + 1 :]
    message = f"corrupt JPEG header: no segment marker at byte {app1.offset}"
    with pytest.raises(UnreadableImage, match=message):
        walk_remote(bad)
    with pytest.raises(UnreadableImage, match=message):
        list(segments(bad))
    assert len(list(header_segments(bad))) == 2


def test_a_segment_length_below_two_is_corrupt() -> None:
    bad = b"\xff\xd8\xff\xe1\x00\x01" + bytes(100)
    with pytest.raises(UnreadableImage, match="at byte 2 has length 1"):
        walk_remote(bad)
    assert list(header_segments(bad)) == []


def test_data_that_does_not_start_with_soi_is_named() -> None:
    with pytest.raises(UnreadableImage, match="not a JPEG: the file is a PNG image"):
        list(segments(b"\x89PNG\r\n\x1a\n" + bytes(100)))
    assert list(header_segments(b"")) == []


def test_fill_bytes_and_standalone_markers_are_skipped_by_both_forms() -> None:
    # T.81 B.1.1.2-3: any marker may follow fill bytes; TEM and RSTn have no length field.
    padded = REAL[:2] + b"\xff\xff\xff\x01\xff\xd3" + REAL[2:]
    expected = [(s.marker, s.length) for s in segments(REAL)]
    assert [(s.marker, s.length) for s in segments(padded)] == expected
    assert [(s.marker, s.length) for s in walk_remote(padded)] == expected
    assert pixels(padded).dimensions == pixels(REAL).dimensions == (160, 120)


def test_endless_fill_bytes_cost_one_read_ahead_more_not_a_batch_per_window() -> None:
    data = b"\xff\xd8" + b"\xff" * 1_000_000
    driver = Driver(data)
    with pytest.raises(UnreadableImage, match=f"more than {MAX_SKIPPED} fill bytes"):
        driver.run(SegmentWalk(SparseBytes(len(data)), 4096).next())
    assert driver.batches <= 2 and driver.asked <= 2 * 4096


def test_a_walk_stops_after_the_segment_limit_in_both_forms() -> None:
    app15 = b"\xff\xef\x00\x04\x00\x00"
    data = b"\xff\xd8" + app15 * (MAX_SEGMENTS + 1) + b"\xff\xda\x00\x02"
    with pytest.raises(UnreadableImage, match=f"no image data after {MAX_SEGMENTS} segments"):
        walk_remote(data)
    assert len(list(header_segments(data))) == MAX_SEGMENTS
    last = b"\xff\xd8" + app15 * (MAX_SEGMENTS - 1) + b"\xff\xda\x00\x02"
    assert len(list(segments(last))) == MAX_SEGMENTS  # the start of scan counts as one


def test_the_frame_size_comes_from_the_sof_payload() -> None:
    assert frame_size(struct.pack(">BHH", 8, 120, 160)) == (160, 120)
    assert frame_size(struct.pack(">BH", 8, 120)) is None  # cut before its width
    assert frame_size(struct.pack(">BHH", 8, 0, 160)) is None
    sof = REAL.index(BODY) + BODY.index(b"\xff\xc0")
    zero = bytearray(REAL)
    zero[sof + 5 : sof + 9] = bytes(4)
    assert pixels(bytes(zero)).dimensions is None


# -- the TIFF IFD reader --------------------------------------------------------------------

MAKE, ORIENTATION, POINTER = 0x010F, 0x0112, 0x8769
KEEP = frozenset({MAKE, ORIENTATION, POINTER})


def tiff_of(order: ByteOrder = "II", *, next_ifd: int = 0) -> bytes:
    """A TIFF body: header, then IFD0 (Make, Orientation, a pointer at IFD0 itself)."""
    entries = [ascii_entry(MAKE, "DJI"), short_entry(ORIENTATION, 6), long_entry(POINTER, 8)]
    end = "<" if order == "II" else ">"
    magic = b"II*\x00" if order == "II" else b"MM\x00*"
    return magic + struct.pack(end + "I", 8) + write_ifd(order, entries, 8, next_ifd)


def ifd0(data: bytes, wanted: frozenset[int] = KEEP) -> tuple[Tiff, list[Entry]]:
    tiff, at = Tiff.at_hand(data, "EXIF")
    entries = tiff.ifd_at_hand(at, "IFD0", wanted)
    assert both_forms(tiff, [(at, "IFD0", wanted)]) == [entries]
    return tiff, entries


def ifd0_program(data: bytes) -> object:
    tiff, at = Tiff.at_hand(data, "EXIF")
    return run_program(tiff.read_ifds([(at, "IFD0", KEEP)]), lambda _off, _n: b"")


def both_forms(tiff: Tiff, ifds: list[IfdRequest]) -> list[list[Entry]]:
    """``read_ifds`` as a read program with nothing to fetch, checked against ``ifd_at_hand``."""
    entries = run_program(tiff.read_ifds(ifds), lambda _off, _n: b"")
    assert entries == [tiff.ifd_at_hand(*ifd) for ifd in ifds]
    return entries


@pytest.mark.parametrize("order", ["II", "MM"])
def test_entries_and_values_are_read_in_either_byte_order(order: ByteOrder) -> None:
    tiff, entries = ifd0(tiff_of(order))
    by_tag = {e.tag: e for e in entries}
    assert sorted(by_tag) == [MAKE, ORIENTATION, POINTER]
    assert tiff.value(by_tag[MAKE]) == b"DJI\x00"  # inline: 4 bytes
    end = "<" if order == "II" else ">"
    assert struct.unpack(end + "H", tiff.value(by_tag[ORIENTATION])) == (6,)
    assert tiff.pointer(by_tag[POINTER]) == 8


def test_an_ifd_loop_is_read_once_and_ends() -> None:
    # IFD0's pointer and its link to the next IFD both lead back to IFD0 itself.
    data = tiff_of(next_ifd=8)
    tiff, entries = ifd0(data)
    pointer = next(e for e in entries if e.tag == POINTER)
    again = both_forms(tiff, [(tiff.pointer(pointer), "the EXIF IFD", KEEP)])
    assert again == [entries]


def test_an_ifd_past_the_end_is_outside_the_segment() -> None:
    data = tiff_of()
    tiff, _ = Tiff.at_hand(data, "MPF")
    for offset in (len(data) - 1, len(data) + 100, 0xFFFFFFF0, 4):
        with pytest.raises(UnreadableImage, match="the IFD lies outside the MPF segment"):
            tiff.ifd_at_hand(offset, "the IFD", KEEP)
        with pytest.raises(UnreadableImage, match="the IFD lies outside the MPF segment"):
            run_program(tiff.read_ifds([(offset, "the IFD", KEEP)]), lambda _off, _n: b"")


def test_an_ifd_whose_entries_run_past_the_end_is_refused() -> None:
    data = tiff_of()
    for read in (ifd0, ifd0_program):
        with pytest.raises(UnreadableImage, match="IFD0 lies outside the EXIF segment"):
            read(data[:30])  # the count fits, the entries do not


def test_a_value_offset_past_the_end_is_refused() -> None:
    make = b"DJI FC6310 with a long name\x00"
    table = struct.pack("<H", 1) + struct.pack("<HHII", MAKE, 2, len(make), 0xFFFFFFF0)
    data = b"II*\x00" + struct.pack("<I", 8) + table + bytes(4) + make
    tiff, (entry,) = ifd0(data)
    with pytest.raises(UnreadableImage, match="the value of tag 0x010F lies outside"):
        tiff.value(entry)
    with pytest.raises(UnreadableImage, match="the value of tag 0x010F lies outside"):
        run_program(tiff.fetch_values([entry]), lambda _off, _n: b"")


def test_a_huge_entry_count_is_refused() -> None:
    data = b"MM\x00*" + struct.pack(">IH", 8, MAX_IFD_ENTRIES + 1) + bytes(64)
    for read in (ifd0, ifd0_program):
        with pytest.raises(UnreadableImage, match=f"IFD0 claims {MAX_IFD_ENTRIES + 1} entries"):
            read(data)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"II*\x00\x08\x00", "truncated: the EXIF header is cut short"),
        (b"XX*\x00" + struct.pack("<I", 8) + bytes(8), "corrupt EXIF: bad TIFF header"),
        (b"II\x00*" + struct.pack("<I", 8) + bytes(8), "corrupt EXIF: bad TIFF header"),
    ],
)
def test_a_bad_tiff_header_is_named(data: bytes, reason: str) -> None:
    with pytest.raises(UnreadableImage, match=reason):
        Tiff.at_hand(data, "EXIF")


def test_a_pointer_must_be_one_inline_offset() -> None:
    data = bytearray(tiff_of())
    at = data.index(struct.pack("<HH", POINTER, 4))
    data[at + 4 : at + 8] = struct.pack("<I", 2)  # two LONGs: the field is an offset now
    tiff, entries = ifd0(bytes(data))
    with pytest.raises(UnreadableImage, match="pointer tag 0x8769 has type 4 and count 2"):
        tiff.pointer(next(e for e in entries if e.tag == POINTER))


def test_the_read_program_asks_only_for_the_header_the_ifd_and_the_values() -> None:
    make = ascii_entry(MAKE, "DJI FC6310")  # 11 bytes: out of line
    table = write_ifd("II", [make, short_entry(ORIENTATION, 6)], 1000, 0)
    data = b"II*\x00" + struct.pack("<I", 1000) + bytes(992) + table + bytes(50_000)
    base = 100  # the TIFF body's place in the file
    driver = Driver(bytes(base) + data)

    def program() -> ReadProgram[bytes]:
        buf = SparseBytes(base + len(data))
        tiff, at = yield from Tiff.open(buf, base, len(data))
        (entries,) = yield from tiff.read_ifds([(at, "IFD0", KEEP)])
        yield from tiff.fetch_values(entries)
        return tiff.value(next(e for e in entries if e.tag == MAKE))

    assert driver.run(program()) == b"DJI FC6310\x00"
    assert driver.batches == 4  # header, entry count, entries, Make's value
    assert driver.asked == 8 + 2 + (12 * 2 + 4) + 11


def test_orientation_and_gps_see_the_same_ifd0_inside_the_exif_segment() -> None:
    from qc_tool.domain.exif_reader import read_exif_block
    from qc_tool.services.previews import header_orientation

    assert header_orientation(REAL) == 1
    app1 = next(s for s in segments(REAL) if s.marker == 0xE1)
    # The segment now ends inside IFD0, after its Orientation entry (the fourth, by tag).
    short = 2 + 6 + 8 + 2 + 12 * 4
    cut = bytearray(REAL)
    cut[app1.offset + 2 : app1.offset + 4] = struct.pack(">H", short)
    assert header_orientation(bytes(cut)) is None
    with pytest.raises(UnreadableImage, match="IFD0 lies outside the EXIF segment"):
        run_program(read_exif_block(len(cut)), lambda off, n: bytes(cut[off : off + n]))
