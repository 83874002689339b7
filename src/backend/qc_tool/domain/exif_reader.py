"""The read program that fetches just the EXIF bytes GPS, time and camera need.

Instead of downloading the EXIF APP1 segment whole (up to 64 KB, most of it a
MakerNote and a thumbnail), it walks the JPEG segment headers, then the TIFF
IFDs, and fetches only IFD0, the EXIF IFD, the GPS IFD and the values of the few
tags it keeps. A typical DJI photo costs two reads of a few KB in total.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from qc_tool.domain.formats import locate_exif
from qc_tool.domain.jpeg import SOI, SegmentWalk
from qc_tool.domain.sparse import ReadProgram, SparseBytes, fetch
from qc_tool.domain.tiff import TYPE_LONG, Entry, Tiff
from qc_tool.errors import UnreadableImage

# First read: SOI, APP0/APP1 headers and, for most cameras, IFD0 and the EXIF IFD.
FIRST_READ = 4096
# How much to read at a sub-IFD's offset before its entry count is known:
# enough for ~40 entries and their values, which is what cameras write.
IFD_WINDOW = 1024
TAIL_READ = 16  # end-of-file bytes fetched to see whether the file was truncated
# The largest value kept: a JPEG's EXIF segment holds 64 KB in all; a TIFF/DNG file is its
# own TIFF body, so without this a Make of 20 million characters would be fetched whole.
MAX_VALUE_BYTES = 64 * 1024

# TIFF tags the reader follows or keeps (IFD0 / EXIF IFD / GPS IFD).
TAG_MAKE, TAG_MODEL = 0x010F, 0x0110
TAG_EXIF_IFD, TAG_GPS_IFD = 0x8769, 0x8825
TAG_DATETIME_ORIGINAL = 0x9003
TAG_EXPOSURE_TIME, TAG_ISO = 0x829A, 0x8827  # for the capture rules of the photo checks
GPS_TAGS = frozenset(range(7))  # version, lat ref, lat, lon ref, lon, alt ref, alt
IFD0_TAGS = frozenset((TAG_MAKE, TAG_MODEL, TAG_EXIF_IFD, TAG_GPS_IFD))
EXIF_TAGS = frozenset((TAG_DATETIME_ORIGINAL, TAG_EXPOSURE_TIME, TAG_ISO))


@dataclass(frozen=True, slots=True)
class ExifBlock:
    """The kept part of the EXIF segment, as a small self-contained TIFF for exifread."""

    tiff: bytes | None  # None when the JPEG has no EXIF segment
    truncated: bool  # the file does not end with an end-of-image marker
    bytes_read: int


def read_exif_block(size: int) -> ReadProgram[ExifBlock]:
    """Read program: locate the EXIF segment of a JPEG of ``size`` bytes and fetch what GPS needs."""
    if size <= 0:
        raise UnreadableImage("empty file (0 bytes)")
    buf = SparseBytes(size)
    yield from fetch(buf, [(0, FIRST_READ), (max(0, size - TAIL_READ), TAIL_READ)])
    head = buf.get(0, min(buf.size, 12)) or b""
    if not head.startswith(SOI):  # HEIF, TIFF/DNG: their EXIF is the same TIFF body
        found = yield from locate_exif(buf)
        tiff = None if found is None else (yield from fetch_tiff_parts(*found))
        return ExifBlock(tiff, False, buf.bytes_read)
    truncated = not _ends_with_eoi(buf)
    segment = yield from _find_exif_segment(buf)
    if segment is None:
        return ExifBlock(None, truncated, buf.bytes_read)
    base, length = segment
    tiff = yield from fetch_tiff_parts(buf, base, length)
    # A file that stops right after its EXIF segment may end in the thumbnail's own EOI.
    truncated = truncated or buf.size <= base + length
    return ExifBlock(tiff, truncated, buf.bytes_read)


def _ends_with_eoi(buf: SparseBytes) -> bool:
    start = max(0, buf.size - TAIL_READ)
    tail = buf.get(start, buf.size - start) or b""
    # Some writers pad after EOI; JPEG scan data can never contain FF D9, so this is exact.
    return tail.rstrip(b"\x00").endswith(b"\xff\xd9")


def _find_exif_segment(buf: SparseBytes) -> ReadProgram[tuple[int, int] | None]:
    """Walk segment headers from SOI; return (TIFF start, TIFF length) of the EXIF APP1."""
    walk = SegmentWalk(buf, FIRST_READ)
    while True:
        segment = yield from walk.next()
        if segment.ends_header:  # no EXIF before the pixels
            return None
        if segment.marker == 0xE1:
            pos, length = segment.offset, segment.length
            if not buf.has(pos + 4, 6):
                yield from fetch(buf, [(pos + 4, 6)])
            if buf.get(pos + 4, 6) == b"Exif\x00\x00":
                if segment.end > buf.size:
                    raise UnreadableImage(
                        f"truncated: the EXIF segment claims {length} bytes but the file "
                        f"ends {buf.size - pos - 2} bytes after its start"
                    )
                return pos + 10, length - 8


def fetch_tiff_parts(buf: SparseBytes, base: int, length: int) -> ReadProgram[bytes]:
    """Fetch IFD0, the EXIF and GPS IFDs and their kept values; return the sparse TIFF body."""
    tiff, ifd0 = yield from Tiff.open(buf, base, length)
    (ifd0_entries,) = yield from tiff.read_ifds([(ifd0, "IFD0", IFD0_TAGS)])
    pointers = {
        e.tag: tiff.pointer(e) for e in ifd0_entries if e.tag in (TAG_EXIF_IFD, TAG_GPS_IFD)
    }
    subs = [
        (pointers[tag], name, wanted)
        for tag, name, wanted in (
            (TAG_EXIF_IFD, "EXIF IFD", EXIF_TAGS),
            (TAG_GPS_IFD, "GPS IFD", GPS_TAGS),
        )
        if tag in pointers
    ]
    # The sub-IFD windows and IFD0's values go out in one batch: one round trip.
    _refuse_huge(tiff, ifd0_entries)
    yield from tiff.fetch_values(ifd0_entries, extra=[(off, IFD_WINDOW) for off, _, _ in subs])
    sub_entries = yield from tiff.read_ifds(subs)
    _refuse_huge(tiff, [e for entries in sub_entries for e in entries])
    yield from tiff.fetch_values([e for entries in sub_entries for e in entries])
    # exifread is handed only the entries kept (its per-tag cost dominates a scan's CPU).
    kept_subs = {off: entries for (off, _, _), entries in zip(subs, sub_entries, strict=True)}
    return _compact(tiff, ifd0_entries, kept_subs)


def _refuse_huge(tiff: Tiff, entries: list[Entry]) -> None:
    """UnreadableImage for a kept value over MAX_VALUE_BYTES that lies inside the body (one
    outside it is refused by the reader, with that reason)."""
    for e in entries:
        if e.nbytes > MAX_VALUE_BYTES and e.value_at + e.nbytes <= tiff.length:
            raise UnreadableImage(
                f"corrupt {tiff.kind}: the value of tag 0x{e.tag:04X} claims {e.nbytes:,} bytes"
            )


def _compact(tiff: Tiff, ifd0: list[Entry], subs: dict[int, list[Entry]]) -> bytes:
    """A small TIFF holding only the kept entries and their values, offsets relocated.

    exifread parses it exactly as it would the camera's block (same tags, same
    bytes), but it is a few hundred bytes instead of up to 64 KB: cheap to parse,
    to keep, and to hand to another process. IFD0 gets no link to a next IFD.
    """
    order = tiff.order
    u16, u32 = struct.Struct(order + "H").pack, struct.Struct(order + "I").pack
    pointer_tags: dict[int, int | None] = {TAG_EXIF_IFD: None, TAG_GPS_IFD: None}
    blocks = [(ifd0, True)] + [(entries, False) for entries in subs.values()]
    sizes = [2 + 12 * len(entries) + 4 for entries, _ in blocks]
    starts = [8 + sum(sizes[:i]) for i in range(len(blocks))]
    sub_starts = dict(zip(subs, starts[1:], strict=True))
    for e in ifd0:
        if e.tag in pointer_tags:
            target = tiff.pointer(e)
            pointer_tags[e.tag] = sub_starts.get(target)
    values = bytearray()
    values_at = 8 + sum(sizes)
    out = bytearray((b"II*\x00" if order == "<" else b"MM\x00*") + u32(8))
    for entries, is_ifd0 in blocks:
        out += u16(len(entries))
        for e in sorted(entries, key=lambda e: e.tag):
            if is_ifd0 and e.tag in pointer_tags:
                # Written as one LONG whatever the camera used, so exifread reads it as such.
                new = pointer_tags[e.tag]
                out += u16(e.tag) + u16(TYPE_LONG) + u32(1) + u32(new if new is not None else 0)
            elif e.nbytes > 4:
                raw = tiff.stored(e)
                out += e.raw[:8] + u32(values_at + len(values))
                values += raw + (b"\x00" if len(raw) % 2 else b"")
            else:
                out += e.raw
        out += u32(0)
    return bytes(out + values)
