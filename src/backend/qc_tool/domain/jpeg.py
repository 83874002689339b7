"""JPEG segment headers, walked inside a read program (both header readers share this)."""

from __future__ import annotations

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
