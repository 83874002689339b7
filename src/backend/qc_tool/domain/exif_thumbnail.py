"""The read program that fetches the EXIF thumbnail: IFD1's JPEG, ~5-15 KB of the whole frame.

IFD1 follows IFD0 (its offset is IFD0's "next IFD" link); its JPEGInterchangeFormat (0x0201)
and JPEGInterchangeFormatLength (0x0202) say where the thumbnail lies inside the EXIF
segment. Cameras write it for every JPEG; edited files and a few writers do not.
"""

from __future__ import annotations

import struct

from qc_tool.domain.sparse import ReadProgram, SparseBytes, fetch
from qc_tool.domain.tiff import Tiff
from qc_tool.errors import UnreadableImage

TAG_THUMB_OFFSET, TAG_THUMB_LENGTH = 0x0201, 0x0202
THUMB_TAGS = frozenset((TAG_THUMB_OFFSET, TAG_THUMB_LENGTH))
MAX_THUMBNAIL_BYTES = 64 * 1024  # an EXIF segment holds 64 KB in all


def read_thumbnail(buf: SparseBytes, base: int, length: int) -> ReadProgram[bytes | None]:
    """Read program: the thumbnail JPEG of the EXIF TIFF body at file offset ``base``, or None
    when there is none or the EXIF is damaged (the thumbnail is a help, never a verdict)."""
    try:
        tiff, ifd0 = yield from Tiff.open(buf, base, length)
        yield from tiff.read_ifds([(ifd0, "IFD0", frozenset())])
        count = _u16(buf, base + ifd0, tiff.order)
        link = buf.get(base + ifd0 + 2 + 12 * count, 4)
        if link is None:
            return None
        ifd1 = int(struct.unpack(tiff.order + "I", link)[0])
        if ifd1 == 0:
            return None
        (entries,) = yield from tiff.read_ifds([(ifd1, "IFD1", THUMB_TAGS)])
        values = {e.tag: _number(tiff, e.raw) for e in entries if e.count == 1 and e.nbytes <= 4}
        offset, size = values.get(TAG_THUMB_OFFSET), values.get(TAG_THUMB_LENGTH)
        if not offset or not size or size > MAX_THUMBNAIL_BYTES or offset + size > length:
            return None
        yield from fetch(buf, [(base + offset, size)])
        data = buf.get(base + offset, size)
    except UnreadableImage:
        return None
    return data if data is not None and data.startswith(b"\xff\xd8") else None


def _u16(buf: SparseBytes, at: int, order: str) -> int:
    raw = buf.get(at, 2)
    return 0 if raw is None else int(struct.unpack(order + "H", raw)[0])


def _number(tiff: Tiff, raw: bytes) -> int:
    """A SHORT or LONG value stored inline in a 12-byte IFD entry."""
    typ = struct.unpack(tiff.order + "H", raw[2:4])[0]
    fmt = "H" if typ == 3 else "I"
    return int(struct.unpack(tiff.order + fmt, raw[8 : 8 + struct.calcsize(fmt)])[0])
