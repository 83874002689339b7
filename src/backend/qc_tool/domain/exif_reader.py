"""The read program that fetches just the EXIF bytes GPS, time and camera need.

Instead of downloading the EXIF APP1 segment whole (up to 64 KB, most of it a
MakerNote and a thumbnail), it walks the JPEG segment headers, then the TIFF
IFDs, and fetches only IFD0, the EXIF IFD, the GPS IFD and the values of the few
tags it keeps. A typical DJI photo costs two reads of a few KB in total.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from qc_tool.domain.jpeg import END_OF_HEADER, MAX_SEGMENTS, next_segment
from qc_tool.domain.sparse import Range, ReadProgram, SparseBytes, fetch
from qc_tool.errors import UnreadableImage

# First read: SOI, APP0/APP1 headers and, for most cameras, IFD0 and the EXIF IFD.
FIRST_READ = 4096
# How much to read at a sub-IFD's offset before its entry count is known:
# enough for ~40 entries and their values, which is what cameras write.
IFD_WINDOW = 1024
MAX_IFD_ENTRIES = 1024  # more than any camera writes; guards against garbage counts
TAIL_READ = 16  # end-of-file bytes fetched to see whether the file was truncated

# TIFF tags the reader follows or keeps (IFD0 / EXIF IFD / GPS IFD).
TAG_MAKE, TAG_MODEL = 0x010F, 0x0110
TAG_EXIF_IFD, TAG_GPS_IFD = 0x8769, 0x8825
TAG_DATETIME_ORIGINAL = 0x9003
TAG_EXPOSURE_TIME, TAG_ISO = 0x829A, 0x8827  # for the capture rules of the photo checks
GPS_TAGS = frozenset(range(7))  # version, lat ref, lat, lon ref, lon, alt ref, alt
IFD0_TAGS = frozenset((TAG_MAKE, TAG_MODEL, TAG_EXIF_IFD, TAG_GPS_IFD))
EXIF_TAGS = frozenset((TAG_DATETIME_ORIGINAL, TAG_EXPOSURE_TIME, TAG_ISO))

TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8}
# How a sub-IFD pointer may be stored: one SHORT, LONG or IFD (type 13) value, inline.
# Anything else is refused: a pointer with a count of 1000 would name an unfetched offset.
POINTER_FORMATS = {3: "H", 4: "I", 13: "I"}
TYPE_LONG = 4


@dataclass(frozen=True, slots=True)
class ExifBlock:
    """The kept part of the EXIF segment, as a small self-contained TIFF for exifread."""

    tiff: bytes | None  # None when the JPEG has no EXIF segment
    truncated: bool  # the file does not end with an end-of-image marker
    bytes_read: int


@dataclass(frozen=True, slots=True)
class _Entry:
    tag: int
    type: int
    count: int
    value_at: int  # TIFF offset of the value: inline in the entry, or where it points
    raw: bytes  # the 12 bytes of the entry as stored

    @property
    def nbytes(self) -> int:
        return TYPE_SIZES.get(self.type, 1) * self.count


def read_exif_block(size: int) -> ReadProgram[ExifBlock]:
    """Read program: locate the EXIF segment of a JPEG of ``size`` bytes and fetch what GPS needs."""
    if size <= 0:
        raise UnreadableImage("empty file (0 bytes)")
    buf = SparseBytes(size)
    yield from fetch(buf, [(0, FIRST_READ), (max(0, size - TAIL_READ), TAIL_READ)])
    head = buf.get(0, min(buf.size, 12)) or b""
    if not head.startswith(b"\xff\xd8"):
        raise UnreadableImage(not_jpeg_reason(head))
    truncated = not _ends_with_eoi(buf)
    segment = yield from _find_exif_segment(buf)
    if segment is None:
        return ExifBlock(None, truncated, buf.bytes_read)
    base, length = segment
    tiff = yield from _fetch_tiff_parts(buf, base, length)
    # A file that stops right after its EXIF segment may end in the thumbnail's own EOI.
    truncated = truncated or buf.size <= base + length
    return ExifBlock(tiff, truncated, buf.bytes_read)


def not_jpeg_reason(head: bytes) -> str:
    """What a file that does not start with a JPEG marker is, from its first bytes."""
    kinds = {
        b"\x89PNG": "PNG",
        b"GIF8": "GIF",
        b"II*\x00": "TIFF",
        b"MM\x00*": "TIFF",
        b"RIFF": "RIFF/WebP",
        b"BM": "BMP",
    }
    for magic, kind in kinds.items():
        if head.startswith(magic):
            return f"not a JPEG: the file is a {kind} image"
    if head[4:8] == b"ftyp":
        return "not a JPEG: the file is a HEIC/ISO media file"
    if head and all(32 <= b < 127 or b in b"\r\n\t" for b in head):
        return "not a JPEG: the file is text"
    return "not a JPEG: no start-of-image marker"


def _ends_with_eoi(buf: SparseBytes) -> bool:
    start = max(0, buf.size - TAIL_READ)
    tail = buf.get(start, buf.size - start) or b""
    # Some writers pad after EOI; JPEG scan data can never contain FF D9, so this is exact.
    return tail.rstrip(b"\x00").endswith(b"\xff\xd9")


def _find_exif_segment(buf: SparseBytes) -> ReadProgram[tuple[int, int] | None]:
    """Walk segment headers from SOI; return (TIFF start, TIFF length) of the EXIF APP1."""
    pos = 2
    for _ in range(MAX_SEGMENTS):
        pos, marker, length = yield from next_segment(buf, pos, FIRST_READ)
        if marker in END_OF_HEADER:  # no EXIF before the pixels
            return None
        if marker == 0xE1:
            if not buf.has(pos + 4, 6):
                yield from fetch(buf, [(pos + 4, 6)])
            if buf.get(pos + 4, 6) == b"Exif\x00\x00":
                tiff_len = length - 8
                if pos + 2 + length > buf.size:
                    raise UnreadableImage(
                        f"truncated: the EXIF segment claims {length} bytes but the file "
                        f"ends {buf.size - pos - 2} bytes after its start"
                    )
                return pos + 10, tiff_len
        pos += 2 + length
    raise UnreadableImage(f"corrupt JPEG header: no image data after {MAX_SEGMENTS} segments")


def _fetch_tiff_parts(buf: SparseBytes, base: int, length: int) -> ReadProgram[bytes]:
    """Fetch IFD0, the EXIF and GPS IFDs and their kept values; return the sparse TIFF body."""
    yield from fetch(buf, [(base, 8)])
    header = buf.get(base, 8)
    if header is None or length < 8:
        raise UnreadableImage("truncated: the EXIF header is cut short")
    order = {b"II": "<", b"MM": ">"}.get(header[:2])
    if order is None or struct.unpack(order + "H", header[2:4])[0] != 42:
        raise UnreadableImage("corrupt EXIF: bad TIFF header")
    ifd0 = struct.unpack(order + "I", header[4:8])[0]
    tiff = _Tiff(buf, base, length, order)

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
    yield from tiff.fetch_values(ifd0_entries, extra=[(off, IFD_WINDOW) for off, _, _ in subs])
    sub_entries = yield from tiff.read_ifds(subs)
    yield from tiff.fetch_values([e for entries in sub_entries for e in entries])
    # exifread is handed only the entries kept (its per-tag cost dominates a scan's CPU).
    kept_subs = {off: entries for (off, _, _), entries in zip(subs, sub_entries, strict=True)}
    return tiff.compact(ifd0_entries, kept_subs)


class _Tiff:
    """Offsets inside one EXIF TIFF body, checked against its bounds."""

    def __init__(self, buf: SparseBytes, base: int, length: int, order: str) -> None:
        self.buf, self.base, self.length, self.order = buf, base, length, order

    def _check(self, offset: int, nbytes: int, what: str) -> None:
        if offset < 8 or offset + nbytes > self.length:
            raise UnreadableImage(f"corrupt EXIF: {what} lies outside the EXIF segment")

    def pointer(self, entry: _Entry) -> int:
        """The offset a sub-IFD pointer holds; UnreadableImage when it is not one inline value."""
        fmt = POINTER_FORMATS.get(entry.type)
        if fmt is None or entry.count != 1:
            raise UnreadableImage(
                f"corrupt EXIF: the pointer tag 0x{entry.tag:04X} has type {entry.type} "
                f"and count {entry.count}, not one offset"
            )
        # One inline value: it sits in the 12 bytes of the entry, which were fetched.
        raw = entry.raw[8 : 8 + struct.calcsize(fmt)]
        return int(struct.unpack(self.order + fmt, raw)[0])

    def read_ifds(
        self, ifds: list[tuple[int, str, frozenset[int]]]
    ) -> ReadProgram[list[list[_Entry]]]:
        """Fetch several IFDs at once; return, per IFD, its entries whose tags are wanted."""
        for off, name, _ in ifds:
            self._check(off, 2, name)
        yield from fetch(self.buf, [(self.base + off, 2) for off, _, _ in ifds])
        counts = []
        for off, name, _ in ifds:
            raw = self.buf.get(self.base + off, 2)
            if raw is None:
                raise UnreadableImage(f"truncated: {name} is cut short")
            count = struct.unpack(self.order + "H", raw)[0]
            if count > MAX_IFD_ENTRIES:
                raise UnreadableImage(f"corrupt EXIF: {name} claims {count} entries")
            self._check(off, 2 + 12 * count + 4, name)
            counts.append(count)
        yield from fetch(
            self.buf, [(self.base + off + 2, 12 * n + 4) for (off, _, _), n in zip(ifds, counts)]
        )
        return [
            self._decode(off, n, wanted) for (off, _, wanted), n in zip(ifds, counts, strict=True)
        ]

    def _decode(self, off: int, count: int, wanted: frozenset[int]) -> list[_Entry]:
        raw = self.buf.get(self.base + off + 2, 12 * count)
        if raw is None:
            raise UnreadableImage("truncated: an EXIF directory is cut short")
        entries = []
        unpack = struct.Struct(self.order + "HHII").unpack_from
        for i in range(count):
            tag, typ, n, pointer = unpack(raw, 12 * i)
            if tag not in wanted:
                continue
            inline = TYPE_SIZES.get(typ, 1) * n <= 4
            value_at = off + 2 + 12 * i + 8 if inline else pointer
            entries.append(_Entry(tag, typ, n, value_at, raw[12 * i : 12 * i + 12]))
        return entries

    def fetch_values(self, entries: list[_Entry], extra: Sequence[Range] = ()) -> ReadProgram[None]:
        ranges = list(extra)
        for e in entries:
            if e.nbytes > 4 and e.tag not in (TAG_EXIF_IFD, TAG_GPS_IFD):
                self._check(e.value_at, e.nbytes, f"the value of tag 0x{e.tag:04X}")
                ranges.append((e.value_at, e.nbytes))
        clamped = [
            (self.base + off, min(n, self.length - off)) for off, n in ranges if off < self.length
        ]
        yield from fetch(self.buf, clamped)

    def compact(self, ifd0: list[_Entry], subs: dict[int, list[_Entry]]) -> bytes:
        """A small TIFF holding only the kept entries and their values, offsets relocated.

        exifread parses it exactly as it would the camera's block (same tags, same
        bytes), but it is a few hundred bytes instead of up to 64 KB: cheap to parse,
        to keep, and to hand to another process. IFD0 gets no link to a next IFD.
        """
        order = self.order
        u16, u32 = struct.Struct(order + "H").pack, struct.Struct(order + "I").pack
        pointer_tags: dict[int, int | None] = {TAG_EXIF_IFD: None, TAG_GPS_IFD: None}
        blocks = [(ifd0, True)] + [(entries, False) for entries in subs.values()]
        sizes = [2 + 12 * len(entries) + 4 for entries, _ in blocks]
        starts = [8 + sum(sizes[:i]) for i in range(len(blocks))]
        sub_starts = dict(zip(subs, starts[1:], strict=True))
        for e in ifd0:
            if e.tag in pointer_tags:
                target = self.pointer(e)
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
                    raw = self.buf.get(self.base + e.value_at, e.nbytes) or bytes(e.nbytes)
                    out += e.raw[:8] + u32(values_at + len(values))
                    values += raw + (b"\x00" if len(raw) % 2 else b"")
                else:
                    out += e.raw
            out += u32(0)
        return bytes(out + values)
