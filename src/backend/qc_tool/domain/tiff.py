"""TIFF structures inside JPEG segments (EXIF's APP1, MPF's APP2): header, IFDs, entries, values.

One reader for all of them, in the read-program form (domain/sparse.py): it fetches the
directories and values it is asked for and checks every count and offset against the TIFF
body's bounds, raising UnreadableImage. ``Tiff.at_hand`` and ``ifd_at_hand`` run the same
checks and decoding over bytes already in memory, with nothing to fetch. Offsets count from the TIFF header, as in TIFF.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from qc_tool.domain.sparse import Range, ReadProgram, SparseBytes, fetch
from qc_tool.errors import UnreadableImage

HEADER_SIZE = 8  # byte order, 42, offset of IFD0
MAX_IFD_ENTRIES = 1024  # more than any camera writes; guards against garbage counts
TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8}
TYPE_SHORT, TYPE_LONG = 3, 4
# How a sub-IFD pointer may be stored: one SHORT, LONG or IFD (type 13) value, inline.
# Anything else is refused: a pointer with a count of 1000 would name an unfetched offset.
POINTER_FORMATS = {3: "H", 4: "I", 13: "I"}

# An IFD to read: (offset, name for messages, the tags to keep).
IfdRequest = tuple[int, str, frozenset[int]]


@dataclass(frozen=True, slots=True)
class Entry:
    """One IFD entry, and where its value is."""

    tag: int
    type: int
    count: int
    value_at: int  # TIFF offset of the value: inline in the entry, or where it points
    raw: bytes  # the 12 bytes of the entry as stored

    @property
    def nbytes(self) -> int:
        return TYPE_SIZES.get(self.type, 1) * self.count


class Tiff:
    """One TIFF body at file offset ``base`` in ``buf``, ``length`` bytes long.

    ``kind`` names it in messages ("EXIF", "MPF").
    """

    def __init__(self, buf: SparseBytes, base: int, length: int, order: str, kind: str) -> None:
        self.buf, self.base, self.length, self.order, self.kind = buf, base, length, order, kind
        self._entry = struct.Struct(order + "HHII")

    @classmethod
    def open(
        cls, buf: SparseBytes, base: int, length: int, kind: str = "EXIF"
    ) -> ReadProgram[tuple[Tiff, int]]:
        """Read program: the TIFF header at ``base``; the reader and the offset of IFD0."""
        yield from fetch(buf, [(base, HEADER_SIZE)])
        return cls._from_header(buf, base, length, kind)

    @classmethod
    def at_hand(cls, data: bytes, kind: str) -> tuple[Tiff, int]:
        """The reader over a TIFF body in memory, and the offset of IFD0; UnreadableImage if bad."""
        return cls._from_header(SparseBytes.at_hand(data), 0, len(data), kind)

    @classmethod
    def _from_header(cls, buf: SparseBytes, base: int, length: int, kind: str) -> tuple[Tiff, int]:
        header = buf.get(base, HEADER_SIZE)
        if header is None or length < HEADER_SIZE:
            raise UnreadableImage(f"truncated: the {kind} header is cut short")
        order = {b"II": "<", b"MM": ">"}.get(header[:2])
        if order is None or struct.unpack(order + "H", header[2:4])[0] != 42:
            raise UnreadableImage(f"corrupt {kind}: bad TIFF header")
        ifd0 = int(struct.unpack(order + "I", header[4:8])[0])
        return cls(buf, base, length, order, kind), ifd0

    def _check(self, offset: int, nbytes: int, what: str) -> None:
        if offset < HEADER_SIZE or offset + nbytes > self.length:
            raise UnreadableImage(
                f"corrupt {self.kind}: {what} lies outside the {self.kind} segment"
            )

    def pointer(self, entry: Entry) -> int:
        """The offset a sub-IFD pointer holds; UnreadableImage when it is not one inline value."""
        fmt = POINTER_FORMATS.get(entry.type)
        if fmt is None or entry.count != 1:
            raise UnreadableImage(
                f"corrupt {self.kind}: the pointer tag 0x{entry.tag:04X} has type {entry.type} "
                f"and count {entry.count}, not one offset"
            )
        # One inline value: it sits in the 12 bytes of the entry, which were fetched.
        raw = entry.raw[8 : 8 + struct.calcsize(fmt)]
        return int(struct.unpack(self.order + fmt, raw)[0])

    def read_ifds(self, ifds: Sequence[IfdRequest]) -> ReadProgram[list[list[Entry]]]:
        """Fetch several IFDs at once; return, per IFD, its entries whose tags are wanted."""
        for off, name, _ in ifds:
            self._check(off, 2, name)
        yield from fetch(self.buf, [(self.base + off, 2) for off, _, _ in ifds])
        counts = [self._count(off, name) for off, name, _ in ifds]
        yield from fetch(
            self.buf, [(self.base + off + 2, 12 * n + 4) for (off, _, _), n in zip(ifds, counts)]
        )
        return [
            self._decode(off, n, wanted) for (off, _, wanted), n in zip(ifds, counts, strict=True)
        ]

    def ifd_at_hand(self, offset: int, name: str, wanted: frozenset[int]) -> list[Entry]:
        """``read_ifds`` of one IFD, for a reader over bytes at hand (``Tiff.at_hand``)."""
        self._check(offset, 2, name)
        return self._decode(offset, self._count(offset, name), wanted)

    def _count(self, off: int, name: str) -> int:
        """The entry count of the IFD at ``off``, once the IFD is known to fit in the body."""
        raw = self.buf.get(self.base + off, 2)
        if raw is None:
            raise UnreadableImage(f"truncated: {name} is cut short")
        count = int(struct.unpack(self.order + "H", raw)[0])
        if count > MAX_IFD_ENTRIES:
            raise UnreadableImage(f"corrupt {self.kind}: {name} claims {count} entries")
        self._check(off, 2 + 12 * count + 4, name)
        return count

    def _decode(self, off: int, count: int, wanted: frozenset[int]) -> list[Entry]:
        raw = self.buf.get(self.base + off + 2, 12 * count)
        if raw is None:
            raise UnreadableImage(f"truncated: an {self.kind} directory is cut short")
        entries = []
        unpack = self._entry.unpack_from
        for i in range(count):
            tag, typ, n, pointer = unpack(raw, 12 * i)
            if tag not in wanted:
                continue
            inline = TYPE_SIZES.get(typ, 1) * n <= 4
            value_at = off + 2 + 12 * i + 8 if inline else pointer
            entries.append(Entry(tag, typ, n, value_at, raw[12 * i : 12 * i + 12]))
        return entries

    def fetch_values(
        self, entries: Sequence[Entry], extra: Sequence[Range] = ()
    ) -> ReadProgram[None]:
        """Fetch the out-of-line values of ``entries``, and ``extra`` ranges (TIFF offsets)."""
        ranges = list(extra)
        for e in entries:
            if e.nbytes > 4:
                self._check(e.value_at, e.nbytes, f"the value of tag 0x{e.tag:04X}")
                ranges.append((e.value_at, e.nbytes))
        clamped = [
            (self.base + off, min(n, self.length - off)) for off, n in ranges if off < self.length
        ]
        yield from fetch(self.buf, clamped)

    def value(self, entry: Entry) -> bytes:
        """The value bytes of an entry, from what was fetched; UnreadableImage if not there."""
        self._check(entry.value_at, entry.nbytes, f"the value of tag 0x{entry.tag:04X}")
        data = self.buf.get(self.base + entry.value_at, entry.nbytes)
        if data is None:
            raise UnreadableImage(f"truncated: the value of tag 0x{entry.tag:04X} is cut short")
        return data

    def stored(self, entry: Entry) -> bytes:
        """The value bytes of an entry if all were fetched, else as many zeros (never raises)."""
        return self.buf.get(self.base + entry.value_at, entry.nbytes) or bytes(entry.nbytes)
