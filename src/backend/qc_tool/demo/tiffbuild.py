"""A small TIFF writer for EXIF blocks, so tests control every offset instead of trusting a library.

The layout mirrors what camera firmware writes: header, IFD0 and its values, the EXIF IFD and its
values, the GPS IFD and its values, IFD1 and its values, then the thumbnail bytes. Each IFD's
out-of-line values follow it, in tag order, each padded to an even offset (TIFF word alignment).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal, cast

ByteOrder = Literal["II", "MM"]

BYTE, ASCII, SHORT, LONG, RATIONAL, UNDEFINED, SLONG, SRATIONAL = 1, 2, 3, 4, 5, 7, 9, 10
_UNIT = {BYTE: 1, ASCII: 1, SHORT: 2, LONG: 4, RATIONAL: 8, UNDEFINED: 1, SLONG: 4, SRATIONAL: 8}

EXIF_POINTER = 0x8769
GPS_POINTER = 0x8825
THUMB_OFFSET = 0x0201
THUMB_LENGTH = 0x0202

Value = str | bytes | tuple[int, ...] | tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class Entry:
    """One IFD entry: ASCII takes str, BYTE/UNDEFINED bytes, SHORT/LONG ints, RATIONAL pairs."""

    tag: int
    type: int
    value: Value


@dataclass(frozen=True, slots=True)
class TiffBlock:
    """The TIFF bytes plus where each IFD landed (offsets from the TIFF header)."""

    data: bytes
    exif_ifd: int
    gps_ifd: int | None
    ifd1: int | None
    thumbnail: int | None


def ascii_entry(tag: int, text: str) -> Entry:
    return Entry(tag, ASCII, text)


def short_entry(tag: int, *values: int) -> Entry:
    return Entry(tag, SHORT, tuple(values))


def long_entry(tag: int, *values: int) -> Entry:
    return Entry(tag, LONG, tuple(values))


def rational_entry(tag: int, *pairs: tuple[int, int]) -> Entry:
    return Entry(tag, RATIONAL, tuple(pairs))


def encode_value(order: ByteOrder, entry: Entry) -> tuple[int, bytes]:
    """Return (count, encoded bytes) of an entry's value in the given byte order."""
    end = "<" if order == "II" else ">"
    value = entry.value
    if entry.type == ASCII:
        assert isinstance(value, str)
        raw = value.encode("ascii") + b"\0"
        return len(raw), raw
    if entry.type in (BYTE, UNDEFINED):
        assert isinstance(value, bytes)
        return len(value), value
    assert isinstance(value, tuple)
    if entry.type in (RATIONAL, SRATIONAL):
        code = "I" if entry.type == RATIONAL else "i"
        pairs = cast(tuple[tuple[int, int], ...], value)
        flat = [part for pair in pairs for part in pair]
        return len(value), struct.pack(f"{end}{len(flat)}{code}", *flat)
    code = {SHORT: "H", LONG: "I", SLONG: "i"}[entry.type]
    numbers = cast(tuple[int, ...], value)
    return len(numbers), struct.pack(f"{end}{len(numbers)}{code}", *numbers)


def _pad(raw: bytes) -> bytes:
    return raw + b"\0" if len(raw) % 2 else raw


def ifd_size(order: ByteOrder, entries: list[Entry]) -> int:
    """Bytes taken by an IFD and its out-of-line values; pointer values do not change it."""
    size = 2 + 12 * len(entries) + 4
    for entry in entries:
        raw = encode_value(order, entry)[1]
        if len(raw) > 4:
            size += len(_pad(raw))
    return size


def write_ifd(order: ByteOrder, entries: list[Entry], offset: int, next_ifd: int) -> bytes:
    """Serialise an IFD placed at ``offset``, its values right after the entry table."""
    end = "<" if order == "II" else ">"
    ordered = sorted(entries, key=lambda e: e.tag)  # TIFF requires ascending tags
    table = [struct.pack(f"{end}H", len(ordered))]
    values: list[bytes] = []
    value_at = offset + 2 + 12 * len(ordered) + 4
    for entry in ordered:
        count, raw = encode_value(order, entry)
        if len(raw) <= 4:
            field = raw.ljust(4, b"\0")  # inline values are left-justified in the 4-byte field
        else:
            field = struct.pack(f"{end}I", value_at)
            values.append(_pad(raw))
            value_at += len(values[-1])
        table.append(struct.pack(f"{end}HHI", entry.tag, entry.type, count) + field)
    table.append(struct.pack(f"{end}I", next_ifd))
    return b"".join(table + values)


def _with_pointer(entries: list[Entry], tag: int, value: int) -> list[Entry]:
    return [e for e in entries if e.tag != tag] + [long_entry(tag, value)]


def build_tiff(
    order: ByteOrder,
    ifd0: list[Entry],
    exif: list[Entry],
    gps: list[Entry] | None,
    ifd1: list[Entry] | None,
    thumbnail: bytes | None,
) -> TiffBlock:
    """Lay out header, IFD0, EXIF IFD, GPS IFD, IFD1 and thumbnail; fill in every pointer."""
    # Pointers are LONGs stored inline, so sizes can be measured with placeholder values first.
    ifd0 = _with_pointer(ifd0, EXIF_POINTER, 0)
    if gps is not None:
        ifd0 = _with_pointer(ifd0, GPS_POINTER, 0)
    if ifd1 is not None and thumbnail is not None:
        ifd1 = _with_pointer(_with_pointer(ifd1, THUMB_OFFSET, 0), THUMB_LENGTH, len(thumbnail))
    exif_at = 8 + ifd_size(order, ifd0)
    gps_at = exif_at + ifd_size(order, exif)
    ifd1_at = gps_at + (ifd_size(order, gps) if gps is not None else 0)
    thumb_at = ifd1_at + (ifd_size(order, ifd1) if ifd1 is not None else 0)

    ifd0 = _with_pointer(ifd0, EXIF_POINTER, exif_at)
    if gps is not None:
        ifd0 = _with_pointer(ifd0, GPS_POINTER, gps_at)
    header = (
        (b"II*\0" + struct.pack("<I", 8)) if order == "II" else (b"MM\0*" + struct.pack(">I", 8))
    )
    parts = [header, write_ifd(order, ifd0, 8, ifd1_at if ifd1 is not None else 0)]
    parts.append(write_ifd(order, exif, exif_at, 0))
    if gps is not None:
        parts.append(write_ifd(order, gps, gps_at, 0))
    if ifd1 is not None:
        if thumbnail is not None:
            ifd1 = _with_pointer(ifd1, THUMB_OFFSET, thumb_at)
        parts.append(write_ifd(order, ifd1, ifd1_at, 0))
        if thumbnail is not None:
            parts.append(thumbnail)
    data = b"".join(parts)
    return TiffBlock(
        data=data,
        exif_ifd=exif_at,
        gps_ifd=gps_at if gps is not None else None,
        ifd1=ifd1_at if ifd1 is not None else None,
        thumbnail=thumb_at if ifd1 is not None and thumbnail is not None else None,
    )
