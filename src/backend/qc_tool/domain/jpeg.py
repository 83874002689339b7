"""JPEG segment headers: walked inside a read program (both header readers), or in bytes at hand."""

from __future__ import annotations

from collections.abc import Iterator

from qc_tool.domain.sparse import ReadProgram, SparseBytes, fetch
from qc_tool.errors import UnreadableImage

MAX_SEGMENTS = 64  # segment headers walked before giving up on bad input
END_OF_HEADER = (0xDA, 0xD9)  # start of scan, end of image: no header segments follow
_NOT_SOF = (0xC4, 0xC8, 0xCC)  # DHT, JPG, DAC share the SOFn marker range


def is_sof(marker: int) -> bool:
    """A frame header (SOFn): it holds the image's size."""
    return 0xC0 <= marker <= 0xCF and marker not in _NOT_SOF


def next_segment(buf: SparseBytes, pos: int, read_ahead: int) -> ReadProgram[tuple[int, int, int]]:
    """(position, marker, length) of the segment at ``pos``, after any fill bytes.

    A missing header is fetched with ``read_ahead`` bytes after it, so the small
    segments that follow cost no extra round trip. The length of an end-of-header
    marker is not meaningful.
    """
    while True:
        if not buf.has(pos, 4):
            yield from fetch(buf, [(pos, read_ahead)])
        head = buf.get(pos, 4)
        if head is None:
            raise UnreadableImage("truncated: the file ends inside the JPEG header")
        if head[0] != 0xFF:
            raise UnreadableImage(f"corrupt JPEG header: no segment marker at byte {pos}")
        marker, length = head[1], int.from_bytes(head[2:4], "big")
        if marker == 0xFF:  # a fill byte
            pos += 1
            continue
        if marker not in END_OF_HEADER and length < 2:
            raise UnreadableImage(f"corrupt JPEG header: segment at byte {pos} has length {length}")
        return pos, marker, length


# Markers that stand alone, without a length field.
_STANDALONE = {0x01, *range(0xD0, 0xD8)}
MAX_HEADER_SEGMENTS = 256  # far more than any camera writes before the image data


def header_segments(header: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(position, marker, payload) of each segment of a header already in memory, in order.

    For untrusted bytes: stops (never raises) at the image data, at anything that is not a
    segment, or after MAX_HEADER_SEGMENTS; a payload is cut where ``header`` ends.
    """
    if not header.startswith(b"\xff\xd8"):
        return
    pos = 2
    for _ in range(MAX_HEADER_SEGMENTS):
        if pos + 4 > len(header) or header[pos] != 0xFF:
            return
        marker = header[pos + 1]
        if marker == 0xFF:  # a fill byte before a marker
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        if marker in END_OF_HEADER:
            return
        length = int.from_bytes(header[pos + 2 : pos + 4], "big")
        if length < 2:
            return
        yield pos, marker, header[pos + 4 : pos + 2 + length]
        pos += 2 + length
