"""The read program that fetches the pixels the photo checks look at, never the whole file.

DJI (and many cameras) append a 1-2 MP preview JPEG after the main image and
index it in an MPF (APP2) segment near the start of the file. Blur and exposure
judged on that preview need a quarter or less of the file. The program walks the
segment headers (skipping the EXIF and XMP payloads except the XMP it keeps for
the capture rules), reads the MP index, then reads only the preview's byte range.

Without a preview (a "band" source): the EXIF thumbnail (IFD1), the last bytes (the
end-of-image marker) and a prefix of the main image, decoded as it is read
(domain/checks/band.py). The prefix starts at ``BAND_STEPS[0]`` of the image data and
grows through the other steps only while its decoded rows have too little texture to
judge focus (sky at the top). A progressive JPEG is read whole: its first bytes hold
the whole frame at low quality, on which focus cannot be judged. So is every photo when
asked (``whole_file``). docs/checks.md says what each source can and cannot find.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from qc_tool.domain.checks.settings import CheckSettings
from qc_tool.domain.exif_thumbnail import read_thumbnail
from qc_tool.domain.formats import read_preview
from qc_tool.domain.jpeg import SOI, SegmentWalk, frame_size, is_sof
from qc_tool.domain.mpf import find_mpf_preview
from qc_tool.domain.sparse import ReadProgram, SparseBytes, fetch, fetch_exact
from qc_tool.errors import UnreadableImage

if TYPE_CHECKING:  # numpy and Pillow: imported only when a band is read (see _read_band)
    from qc_tool.domain.checks.band import Band
    from qc_tool.domain.checks.blur import BlurMeasure

HEADER_READ = 4096
MB = 1024 * 1024
# What one photo may cost in memory: the bytes are held whole until decoded, and a
# connection has several in flight. A DJI preview is 0.3-1 MB and a whole 45 MP JPEG
# about 25 MB; a preview index or a listed size beyond these is not a drone photo.
MAX_PREVIEW_BYTES = 16 * MB
MAX_WHOLE_FILE_BYTES = 64 * MB
XMP_SIGNATURE = b"http://ns.adobe.com/xap/1.0/\x00"
MPF_SIGNATURE = b"MPF\x00"
EXIF_SIGNATURE = b"Exif\x00\x00"
# Shares of the image data (file less header) the band's prefix reads, in turn: the next
# only while the decoded rows lack texture. Measured on the benchmark site: docs/checks.md.
BAND_STEPS = (0.10, 0.20, 0.35, 0.50)
# The rows first decoded from a prefix, per share of the image data it holds (decode_band
# decodes more while the data reaches past them): a tenth of the data held 15-16 % of the rows
# of the benchmark's photos, more where the top is plain sky, which compresses well.
BAND_ROWS_PER_DATA = 2.0
BAND_MIN_BYTES = 4096  # at least the scan header and the first rows, however small the file
TAIL_READ = 1024  # the end-of-image marker, and any zero padding a writer put after it
BASELINE = (0xC0, 0xC1)  # SOF0, SOF1: rows top to bottom in one scan
# The band is decoded as it is read, and judged with the default settings, at twice their
# analysis size: a band holds a tenth of a frame's rows, and at 1000 px a camera shake of a
# few pixels of a 4000 px photo is under a pixel (docs/checks.md, "the band").
BAND_SETTINGS = CheckSettings()
BAND_LONG_SIDE = 2 * BAND_SETTINGS.analysis_long_side
# A band's focus decides only when it is this factor clear of the absolute minimum (sharp
# above minimum x 1.25, blurred below minimum / 1.25); in between the file is read whole.
BAND_SURE = 1.25

Source = Literal["preview", "full", "band"]


@dataclass(frozen=True, slots=True)
class PixelSource:
    """The pixels to analyse, where they came from, and the file's header segments.

    ``data`` is a complete JPEG (the preview, or the whole file), or for a band: empty, the
    band decoded in ``band``, the thumbnail in ``thumbnail`` and the file's last bytes in
    ``tail``.
    """

    data: bytes
    source: Source
    header: bytes  # bytes 0..start of scan, unfetched payloads zero-filled (XMP and MPF are real)
    bytes_read: int
    dimensions: tuple[int, int] | None  # of the main image, from its SOF segment
    not_checked: str | None = None  # no pixels the checks can judge (data empty): why
    band: Band | None = None
    thumbnail: bytes | None = None  # the EXIF thumbnail (IFD1), read for a band only
    tail: bytes = b""
    band_error: str | None = None  # why the prefix could not be decoded
    prefix_bytes: int = 0  # bytes of the file's start the band was decoded from


@dataclass(frozen=True, slots=True)
class _Header:
    end: int  # where the image data starts
    dimensions: tuple[int, int] | None
    sof: int | None  # the first frame header's marker
    exif: tuple[int, int] | None  # (file offset, length) of the EXIF TIFF body


def read_pixels(size: int, *, whole_file: bool = False) -> ReadProgram[PixelSource]:
    """Read program: the MPF preview of a JPEG of ``size`` bytes, else a band of it (or, for a
    progressive JPEG or if asked, the whole file)."""
    if size <= 0:
        raise UnreadableImage("empty file (0 bytes)")
    if whole_file:
        _check_whole_size(size)  # before a byte is read
    buf = SparseBytes(size)
    yield from fetch(buf, [(0, HEADER_READ)])
    if buf.get(0, 2) != SOI:  # HEIF, TIFF/DNG: their embedded JPEG (domain/formats.py)
        p = yield from read_preview(buf, MAX_PREVIEW_BYTES)
        return PixelSource(
            p.data, p.source, b"", p.bytes_read, p.dimensions, not_checked=p.not_checked
        )
    found = yield from _walk_header(buf)
    header = _sparse(buf, found.end)
    dims = found.dimensions
    preview = None if whole_file else find_mpf_preview(header, size)
    if preview is not None and preview[1] <= MAX_PREVIEW_BYTES:
        offset, length = preview
        data = yield from fetch_exact(offset, length)
        return PixelSource(data, "preview", header, buf.bytes_read + len(data), dims)
    # A file listed beyond any photo's size is refused whatever would be read of it: its
    # band's prefix is a share of it, and an implausible preview index points into it.
    _check_whole_size(buf.size)
    if not whole_file and found.sof in BASELINE:
        return (yield from _read_band(buf, found, header))
    # Asked for, or progressive: judge the file itself.
    data = yield from fetch_exact(0, buf.size)
    return PixelSource(data, "full", header, buf.bytes_read + len(data), dims)


def _read_band(buf: SparseBytes, found: _Header, header: bytes) -> ReadProgram[PixelSource]:
    """The thumbnail, the tail and a prefix of the image data grown until it has texture."""
    thumbnail = None
    if found.exif is not None:
        thumbnail = yield from read_thumbnail(buf, *found.exif)
    # The tail, and the header's unread parts (a MakerNote, an ICC profile, the tables) to
    # complete what the walk fetched, in one batch; the image data is then read in one
    # growing range after the header.
    tail_at = max(found.end, buf.size - TAIL_READ)
    yield from fetch(buf, [(tail_at, buf.size - tail_at), (0, found.end)])
    tail = buf.get(tail_at, buf.size - tail_at) or b""
    prefix = buf.get(0, found.end) or b""
    head = len(prefix)
    # Here, not at the top: the GPS scan and the CLI import this module, and need no numpy.
    from qc_tool.domain.checks.band import decode_band, enough_texture
    from qc_tool.domain.checks.decode import ImageDecodeError
    from qc_tool.domain.checks.integrity import has_eoi

    band: Band | None = None
    error: str | None = None
    scan = max(0, buf.size - found.end)
    for share in BAND_STEPS:
        step = max(BAND_MIN_BYTES, round(scan * share))
        asked = min(buf.size, found.end + step) - len(prefix)
        more = yield from fetch_exact(len(prefix), asked)
        prefix += more
        at_end = len(more) < asked or len(prefix) >= buf.size
        try:
            # A whole file that ends as a JPEG should is decoded as it is; anything else
            # gets an end marker appended (decode_band).
            band = decode_band(
                prefix,
                BAND_LONG_SIDE,
                complete=at_end and has_eoi(prefix),
                rows_share=BAND_ROWS_PER_DATA * (len(prefix) - found.end) / max(1, scan),
            )
        except ImageDecodeError as exc:
            error, band = str(exc), None
            break
        if at_end or enough_texture(band.focus_rows(), BAND_SETTINGS):
            break
    if band is not None and not at_end:
        # Measured once here; the worker reuses it (Band.focus_with).
        band = replace(band, focus=(BAND_SETTINGS, band.focus_with(BAND_SETTINGS)))
    if band is not None and band.focus is not None and _unsure(band.focus[1]):
        # A band's rows (sky, the horizon, the tower's tip) are not the frame: near the
        # minimum, the band alone cannot tell a soft top from a soft photo (docs/checks.md).
        # Such a photo is read whole and judged on its whole frame, as before bands.
        rest = yield from fetch_exact(len(prefix), buf.size - len(prefix))
        data = prefix + rest
        return PixelSource(
            data, "full", header, buf.bytes_read + len(data) - head, found.dimensions
        )
    return PixelSource(
        b"",
        "band",
        header,
        buf.bytes_read + len(prefix) - head,
        found.dimensions,
        band=band,
        thumbnail=thumbnail,
        tail=tail,
        band_error=error,
        prefix_bytes=len(prefix),
    )


def _unsure(focus: BlurMeasure) -> bool:
    """Whether a band's focus is too near the absolute minimum (the default settings') for
    the band to decide: within a factor ``BAND_SURE`` of it, on either side."""
    minimum = BAND_SETTINGS.blur_min_focus
    return focus.score is not None and minimum / BAND_SURE <= focus.score < minimum * BAND_SURE


def _check_whole_size(size: int) -> None:
    if size > MAX_WHOLE_FILE_BYTES:
        raise UnreadableImage(
            f"too large to check: {size / MB:.0f} MB (photos are read whole up to "
            f"{MAX_WHOLE_FILE_BYTES // MB} MB)"
        )


def _walk_header(buf: SparseBytes) -> ReadProgram[_Header]:
    """Walk segments up to the start of scan; fetch XMP and MPF payloads and the frame header.

    Returns where the image data starts, the main image's size and kind from its (first)
    SOFn, and where the EXIF TIFF body is.
    """
    walk = SegmentWalk(buf, HEADER_READ)
    size = sof = exif = None
    while True:
        segment = yield from walk.next()
        pos, marker, length = segment
        if segment.ends_header:
            return _Header(pos, size, sof, exif)
        if is_sof(marker):
            yield from fetch(buf, [(pos, 2 + min(length, 64))])
            if sof is None:
                size, sof = frame_size(buf.get(segment.payload_start, 5) or b""), marker
        if marker in (0xE1, 0xE2):
            yield from fetch(buf, [(pos + 4, 32)])
            sig = buf.get(pos + 4, min(32, length - 2)) or b""
            if sig.startswith((XMP_SIGNATURE, MPF_SIGNATURE)):
                yield from fetch(buf, [(pos, 2 + length)])
            elif marker == 0xE1 and exif is None and sig.startswith(EXIF_SIGNATURE):
                exif = (pos + 10, length - 8)


def _sparse(buf: SparseBytes, end: int) -> bytes:
    out = bytearray(end)
    for start, data in buf.chunks():
        if start < end:
            piece = data[: end - start]
            out[start : start + len(piece)] = piece
    return bytes(out)
