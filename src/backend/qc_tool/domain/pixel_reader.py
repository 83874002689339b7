"""The read program that fetches the pixels the photo checks look at: the embedded preview.

DJI (and many cameras) append a 1-2 MP preview JPEG after the main image and
index it in an MPF (APP2) segment near the start of the file. Blur and exposure
judged on that preview need a quarter or less of the file. The program walks the
segment headers (skipping the EXIF and XMP payloads except the XMP it keeps for
the capture rules), reads the MP index, then reads only the preview's byte range.
Without a preview, or when asked for the whole file, it reads the whole file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from qc_tool.domain.formats import read_preview
from qc_tool.domain.jpeg import SOI, SegmentWalk, frame_size, is_sof
from qc_tool.domain.mpf import find_mpf_preview
from qc_tool.domain.sparse import ReadProgram, SparseBytes, fetch, fetch_exact
from qc_tool.errors import UnreadableImage

HEADER_READ = 4096
MB = 1024 * 1024
# What one photo may cost in memory: the bytes are held whole until decoded, and a
# connection has several in flight. A DJI preview is 0.3-1 MB and a whole 45 MP JPEG
# about 25 MB; a preview index or a listed size beyond these is not a drone photo.
MAX_PREVIEW_BYTES = 16 * MB
MAX_WHOLE_FILE_BYTES = 64 * MB
XMP_SIGNATURE = b"http://ns.adobe.com/xap/1.0/\x00"
MPF_SIGNATURE = b"MPF\x00"

Source = Literal["preview", "full"]


@dataclass(frozen=True, slots=True)
class PixelSource:
    """A complete JPEG to analyse, where it came from, and the file's header segments."""

    data: bytes
    source: Source
    header: bytes  # bytes 0..start of scan, unfetched payloads zero-filled (XMP and MPF are real)
    bytes_read: int
    dimensions: tuple[int, int] | None  # of the main image, from its SOF segment
    not_checked: str | None = None  # no pixels the checks can judge (data empty): why


def read_pixels(size: int, *, whole_file: bool = False) -> ReadProgram[PixelSource]:
    """Read program: the MPF preview of a JPEG of ``size`` bytes, else (or if asked) the whole file."""
    if size <= 0:
        raise UnreadableImage("empty file (0 bytes)")
    if whole_file:
        _check_whole_size(size)  # before a byte is read
    buf = SparseBytes(size)
    yield from fetch(buf, [(0, HEADER_READ)])
    if buf.get(0, 2) != SOI:  # HEIF, TIFF/DNG: their embedded JPEG (domain/formats.py)
        p = yield from read_preview(buf, MAX_PREVIEW_BYTES)
        return PixelSource(p.data, p.source, b"", p.bytes_read, p.dimensions, p.not_checked)
    header_end, dims = yield from _walk_header(buf)
    header = _sparse(buf, header_end)
    preview = None if whole_file else find_mpf_preview(header, size)
    if preview is not None and preview[1] <= MAX_PREVIEW_BYTES:
        offset, length = preview
        data = yield from fetch_exact(offset, length)
        return PixelSource(data, "preview", header, buf.bytes_read + len(data), dims)
    # No preview, or an index claiming an implausibly large one: judge the file itself.
    _check_whole_size(buf.size)
    data = yield from fetch_exact(0, buf.size)
    return PixelSource(data, "full", header, buf.bytes_read + len(data), dims)


def _check_whole_size(size: int) -> None:
    if size > MAX_WHOLE_FILE_BYTES:
        raise UnreadableImage(
            f"too large to check: {size / MB:.0f} MB (photos are read whole up to "
            f"{MAX_WHOLE_FILE_BYTES // MB} MB)"
        )


def _walk_header(buf: SparseBytes) -> ReadProgram[tuple[int, tuple[int, int] | None]]:
    """Walk segments up to the start of scan; fetch XMP and MPF payloads and the frame header.

    Returns where the image data starts, and the main image's size from its (first) SOFn.
    """
    walk = SegmentWalk(buf, HEADER_READ)
    size = None
    while True:
        segment = yield from walk.next()
        pos, marker, length = segment
        if segment.ends_header:
            return pos, size
        if is_sof(marker):
            yield from fetch(buf, [(pos, 2 + min(length, 64))])
            if size is None:
                size = frame_size(buf.get(segment.payload_start, 5) or b"")
        if marker in (0xE1, 0xE2):
            yield from fetch(buf, [(pos + 4, 32)])
            sig = buf.get(pos + 4, min(32, length - 2)) or b""
            if sig.startswith((XMP_SIGNATURE, MPF_SIGNATURE)):
                yield from fetch(buf, [(pos, 2 + length)])


def _sparse(buf: SparseBytes, end: int) -> bytes:
    out = bytearray(end)
    for start, data in buf.chunks():
        if start < end:
            piece = data[: end - start]
            out[start : start + len(piece)] = piece
    return bytes(out)
