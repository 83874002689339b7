"""Find the embedded preview of a DJI-style JPEG from its header (CIPA DC-007, "MPF").

DJI cameras append a 1-2 MP preview JPEG after the main image and describe it in an APP2
segment that starts with ``MPF\\0``. After that signature comes a TIFF-style header (byte order,
magic, offset of the first IFD); the MP Index IFD holds tag 0xB002, MPEntry: 16 bytes per
image (attribute, size, offset, two dependent-image numbers). Offsets count from the start of
that TIFF-style header; the first entry is the primary image, with offset 0.

The parser is for untrusted bytes: it never raises, and returns None on anything it does not
understand. It uses the JPEG walker and the TIFF reader of the header readers (domain/jpeg.py,
domain/tiff.py), over bytes at hand, and is bounded as they are.
"""

from __future__ import annotations

import struct

from qc_tool.domain.jpeg import header_segments
from qc_tool.domain.tiff import Tiff
from qc_tool.errors import UnreadableImage

_MAX_IMAGES = 32
_MPF_SIGNATURE = b"MPF\x00"
_TAG_MP_ENTRY = 0xB002
_ENTRY_SIZE = 16


def _mpf_segment(header: bytes) -> tuple[int, bytes] | None:
    """The file offset of the MP header and the segment bytes after the signature."""
    for pos, marker, payload in header_segments(header):
        if marker == 0xE2 and payload[:4] == _MPF_SIGNATURE:
            return pos + 8, payload[4:]
    return None


def _mp_entries(mp: bytes) -> list[tuple[int, int, int]]:
    """(attribute, size, offset) of every image listed in the MP Index IFD; UnreadableImage."""
    tiff, index_ifd = Tiff.at_hand(mp, "MPF")
    wanted = frozenset({_TAG_MP_ENTRY})
    entries = tiff.ifd_at_hand(index_ifd, "the MP Index IFD", wanted)
    if not entries:
        return []
    values = tiff.value(entries[0])
    n = min(len(values) // _ENTRY_SIZE, _MAX_IMAGES)
    unpack = struct.Struct(tiff.order + "III").unpack_from
    return [unpack(values, _ENTRY_SIZE * k) for k in range(n)]


def find_mpf_preview(header: bytes, file_size: int | None = None) -> tuple[int, int] | None:
    """(absolute file offset, length) of the largest non-primary image, or None.

    ``header`` is the start of the file, at least up to the start of scan. When ``file_size``
    is given, an entry pointing past the end of the file is ignored.
    """
    try:
        found = _mpf_segment(header)
        if found is None:
            return None
        mp_start, mp = found
        entries = _mp_entries(mp)
    except UnreadableImage:  # a count, length or offset pointing past the bytes at hand
        return None
    if not entries:
        return None
    best: tuple[int, int] | None = None
    for _attribute, size, offset in entries[1:]:  # entry 0 is the primary image
        start = mp_start + offset
        if offset == 0 or size == 0:
            continue
        if file_size is not None and start + size > file_size:
            continue
        if best is None or size > best[1]:
            best = (start, size)
    return best
