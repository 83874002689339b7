"""JPEG segment headers: the one walker, as a read program and over bytes already at hand.

A walk starts after SOI and ends at the segment that ends the header: SOS (image data
follows) or EOI. ``SegmentWalk`` asks for the byte ranges it needs, so the header readers
(GPS, pixels) drive it over SFTP; ``segments`` runs the same walk over bytes in memory, and
``header_segments`` is that for untrusted bytes (it stops where the walk would fail).

Bounds per walk: MAX_SEGMENTS segments, and MAX_SKIPPED bytes of fill bytes and
standalone markers between them.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import NamedTuple

from qc_tool.domain.sparse import ReadProgram, SparseBytes, fetch
from qc_tool.errors import UnreadableImage

SOI = b"\xff\xd8"
MAX_SEGMENTS = 64  # segment headers walked before giving up on bad input
# Fill bytes (FF) may precede any marker; writers use a few. Counted with standalone markers,
# so a file of endless FF bytes costs at most one read-ahead more, not a batch per 4 KB.
MAX_SKIPPED = 4096
END_OF_HEADER = (0xDA, 0xD9)  # start of scan, end of image: no header segments follow
_NOT_SOF = (0xC4, 0xC8, 0xCC)  # DHT, JPG, DAC share the SOFn marker range
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RSTn: markers without a length
_TRUNCATED = "truncated: the file ends inside the JPEG header"
_HEAD = struct.Struct(">BBH")  # 0xFF, marker, length


def is_sof(marker: int) -> bool:
    """A frame header (SOFn): it holds the image's size."""
    return 0xC0 <= marker <= 0xCF and marker not in _NOT_SOF


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


class Segment(NamedTuple):
    """One marker segment: where its 0xFF is, its marker, and its length field."""

    offset: int
    marker: int
    length: int  # payload + 2, as stored; not meaningful for EOI

    @property
    def end(self) -> int:
        return self.offset + 2 + self.length

    @property
    def payload_start(self) -> int:
        return self.offset + 4

    @property
    def ends_header(self) -> bool:
        return self.marker in END_OF_HEADER


class SegmentWalk:
    """The header segments of the JPEG in ``buf``, one at a time, from after SOI.

    ``next()`` is the read-program form: a segment header not fetched yet is fetched with
    ``read_ahead`` bytes after it, so the small segments that follow cost no extra round
    trip. ``next_at_hand()`` is the same step over bytes all at hand.
    """

    def __init__(self, buf: SparseBytes, read_ahead: int = 0) -> None:
        self.buf = buf
        self.read_ahead = read_ahead
        self._pos = len(SOI)
        self._fetched_at = -1
        self._segments = 0
        self._skipped = 0

    def next(self) -> ReadProgram[Segment]:
        """Read program: the next segment; UnreadableImage where there is none to be had."""
        segment = self._step()
        while segment is None:
            self._fetched_at = self._pos
            yield from fetch(self.buf, [(self._pos, self.read_ahead)])
            segment = self._step()
        return segment

    def next_at_hand(self) -> Segment:
        """The next segment of bytes all in ``buf`` (``SparseBytes.at_hand``)."""
        self._fetched_at = self._pos  # nothing more can be fetched
        segment = self._step()
        if segment is None:
            raise UnreadableImage(_TRUNCATED)
        return segment

    def _step(self) -> Segment | None:
        """The segment at the walk's position, after any fill bytes; None when its header
        has to be fetched first."""
        if self._segments >= MAX_SEGMENTS:
            raise UnreadableImage(
                f"corrupt JPEG header: no image data after {MAX_SEGMENTS} segments"
            )
        pos = self._pos
        while True:
            head = self.buf.get(pos, 4)
            if head is None:
                if pos == self._fetched_at:
                    raise UnreadableImage(_TRUNCATED)
                self._pos = pos
                return None
            ff, marker, length = _HEAD.unpack(head)
            if ff != 0xFF:
                raise UnreadableImage(f"corrupt JPEG header: no segment marker at byte {pos}")
            if marker == 0xFF or marker in _STANDALONE:
                step = 1 if marker == 0xFF else 2
                self._skipped += step
                if self._skipped > MAX_SKIPPED:
                    raise UnreadableImage(
                        f"corrupt JPEG header: more than {MAX_SKIPPED} fill bytes at byte {pos}"
                    )
                pos += step
                continue
            if length < 2 and marker not in END_OF_HEADER:
                raise UnreadableImage(
                    f"corrupt JPEG header: segment at byte {pos} has length {length}"
                )
            self._segments += 1
            self._pos = pos + 2 + length
            return Segment(pos, marker, length)


def segments(data: bytes) -> Iterator[Segment]:
    """The header segments of a JPEG in memory, through the one that ends the header.

    The header readers' walk, with nothing to fetch: it raises UnreadableImage as they do.
    """
    if not data.startswith(SOI):
        raise UnreadableImage(not_jpeg_reason(data[:12]))
    walk = SegmentWalk(SparseBytes.at_hand(data))
    while True:
        segment = walk.next_at_hand()
        yield segment
        if segment.ends_header:
            return


def header_segments(header: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(offset, marker, payload) of each segment of a header in memory, before the image data.

    For untrusted bytes: stops (never raises) where ``segments`` would fail; a payload is
    cut where ``header`` ends.
    """
    if not header.startswith(SOI):
        return
    walk = SegmentWalk(SparseBytes.at_hand(header))
    try:
        while (segment := walk.next_at_hand()).marker not in END_OF_HEADER:
            offset, marker, length = segment
            yield offset, marker, header[offset + 4 : offset + 2 + length]
    except UnreadableImage:
        return


def frame_size(sof_payload: bytes) -> tuple[int, int] | None:
    """(width, height) from the start of an SOFn payload (precision, height, width); None if 0."""
    if len(sof_payload) < 5:
        return None
    height, width = struct.unpack_from(">HH", sof_payload, 1)
    return (width, height) if width and height else None
