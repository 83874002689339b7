"""Find the embedded preview of a DJI-style JPEG from its header (CIPA DC-007, "MPF").

DJI cameras append a 1-2 MP preview JPEG after the main image and describe it in an APP2
segment that starts with ``MPF\\0``. After that signature comes a TIFF-style header (byte order,
magic, offset of the first IFD); the MP Index IFD holds tag 0xB002, MPEntry: 16 bytes per
image (attribute, size, offset, two dependent-image numbers). Offsets count from the start of
that TIFF-style header; the first entry is the primary image, with offset 0.

The parser is for untrusted bytes: it never raises, bounds every loop, and returns None on
anything it does not understand.
"""

from __future__ import annotations

import struct

from qc_tool.domain.jpeg import header_segments

_MAX_IFD_ENTRIES = 64
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


def _mp_entries(mp: bytes) -> list[tuple[int, int, int]] | None:
    """(attribute, size, offset) of every image listed in the MP Index IFD."""
    if mp[:4] == b"II*\x00":
        order = "<"
    elif mp[:4] == b"MM\x00*":
        order = ">"
    else:
        return None
    (ifd,) = struct.unpack_from(order + "I", mp, 4)
    if ifd + 2 > len(mp):
        return None
    (count,) = struct.unpack_from(order + "H", mp, ifd)
    for i in range(min(count, _MAX_IFD_ENTRIES)):
        at = ifd + 2 + 12 * i
        if at + 12 > len(mp):
            return None
        tag, _type, size, where = struct.unpack_from(order + "HHII", mp, at)
        if tag != _TAG_MP_ENTRY:
            continue
        n = min(size // _ENTRY_SIZE, _MAX_IMAGES)
        if where + n * _ENTRY_SIZE > len(mp):
            return None
        return [struct.unpack_from(order + "III", mp, where + _ENTRY_SIZE * k) for k in range(n)]
    return None


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
    except struct.error:  # a length or offset field pointing past the bytes we have
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
