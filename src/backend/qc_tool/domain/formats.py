"""Photos that are not JPEGs: HEIF/HEIC and TIFF/DNG, recognised by their first bytes.

The header and pixel read programs (exif_reader, pixel_reader) read JPEGs themselves and
hand any other file here, with the first bytes already fetched. The file's name plays no
part: a HEIC named .jpg is read as HEIC. Anything else is refused with what it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from qc_tool.domain import dng, heif
from qc_tool.domain.jpeg import SOI, not_jpeg_reason
from qc_tool.domain.sparse import ReadProgram, SparseBytes, fetch_exact
from qc_tool.errors import UnreadableImage

HEAD = 16  # bytes that identify the format (the first read always holds more)
# What libheif (in the pillow-heif wheel: libde265) decodes, when there is no JPEG to read.
HEVC_CODED = frozenset({"hvc1", "hev1"})


@dataclass(frozen=True, slots=True)
class EmbeddedPreview:
    """The JPEG the photo checks judge a non-JPEG photo by, or why there is none to judge."""

    data: bytes  # a complete JPEG file (a HEIF file when ``source`` is "full"); empty when
    # ``not_checked``
    bytes_read: int
    dimensions: tuple[int, int] | None  # of the main image, when the header states it
    not_checked: str | None = None  # "not checked: <why>"
    source: Literal["preview", "full"] = "preview"


def _head(buf: SparseBytes) -> bytes:
    return buf.get(0, min(buf.size, HEAD)) or b""


def refuse(head: bytes) -> UnreadableImage:
    """The error for a file no reader takes, naming what it is."""
    if heif.is_heif(head):
        return UnreadableImage(heif.not_image_reason(head) or "not a photo")
    return UnreadableImage(not_jpeg_reason(head))


def locate_exif(buf: SparseBytes) -> ReadProgram[tuple[SparseBytes, int, int] | None]:
    """Read program: where a HEIF or TIFF file's EXIF TIFF body is: (bytes, start, length).

    None when the file has no EXIF; UnreadableImage for a format no reader takes.
    """
    head = _head(buf)
    if heif.is_heif(head):
        return (yield from heif.locate_exif(buf))
    if dng.is_tiff(head):
        return buf, 0, buf.size  # the file is the TIFF body: IFD0 holds the GPS IFD pointer
    raise refuse(head)


def read_preview(buf: SparseBytes, max_bytes: int) -> ReadProgram[EmbeddedPreview]:
    """Read program: the embedded JPEG of a HEIF or TIFF/DNG file, up to ``max_bytes``."""
    head = _head(buf)
    if heif.is_heif(head):
        return (yield from _heif_preview(buf, max_bytes))
    if dng.is_tiff(head):
        return (yield from _tiff_preview(buf, max_bytes))
    raise refuse(head)


def _heif_preview(buf: SparseBytes, max_bytes: int) -> ReadProgram[EmbeddedPreview]:
    """A JPEG item (the primary image, or its ``thmb`` thumbnail) if there is one; else the
    whole file, for the checks to decode its HEVC image (up to ``max_bytes``)."""
    meta = yield from heif.read_meta(buf)
    primary = meta.items.get(meta.primary) if meta.primary is not None else None
    images = ([primary] if primary is not None else []) + meta.thumbnails()
    dims = meta.sizes.get(primary.id) if primary is not None else None  # of the main image
    jpegs = [i for i in images if i.type == "jpeg" and i.unsupported is None and i.length]
    usable = [i for i in jpegs if i.length <= max_bytes]
    if usable:
        item = max(usable, key=lambda i: i.length)
        data = yield from heif.read_item(buf, item, max_bytes)
        return _checked(data, buf.bytes_read, dims, "HEIF")
    coded = _coded_as(meta, primary)
    if coded not in HEVC_CODED:
        why = f"not checked: the HEIF's image is coded as '{coded}', which the checks do not decode"
        return EmbeddedPreview(b"", buf.bytes_read, dims, why)
    if buf.size > max_bytes:
        why = f"not checked: the HEIF file is over {max_bytes // 1024 // 1024} MB"
        return EmbeddedPreview(b"", buf.bytes_read, dims, why)
    chunks = buf.chunks()
    head = chunks[0][1] if chunks and chunks[0][0] == 0 else b""  # the boxes read so far
    rest = yield from fetch_exact(len(head), buf.size - len(head))
    return EmbeddedPreview(head + rest, buf.bytes_read + len(rest), dims, source="full")


def _coded_as(meta: heif.HeifMeta, primary: heif.Item | None) -> str:
    """The primary image's coding; for a grid, its tiles' (``dimg`` references)."""
    if primary is None:
        return "unknown"
    if primary.type != "grid":
        return primary.type
    tiles = [to for r, f, to in meta.refs if r == "dimg" and f == primary.id]
    tile = meta.items.get(tiles[0][0]) if tiles and tiles[0] else None
    return tile.type if tile is not None else "grid"


def _tiff_preview(buf: SparseBytes, max_bytes: int) -> ReadProgram[EmbeddedPreview]:
    layout = yield from dng.read_layout(buf)
    if layout.preview is None:
        why = "not checked: the TIFF/DNG holds no JPEG preview (raw data is not decoded)"
        return EmbeddedPreview(b"", buf.bytes_read, layout.dimensions, why)
    offset, length = layout.preview
    if length > max_bytes:
        why = f"not checked: the DNG's JPEG preview is over {max_bytes // 1024 // 1024} MB"
        return EmbeddedPreview(b"", buf.bytes_read, layout.dimensions, why)
    data = yield from fetch_exact(offset, length)
    return _checked(data, buf.bytes_read + len(data), layout.dimensions, "DNG")


def _checked(
    data: bytes, bytes_read: int, dims: tuple[int, int] | None, kind: str
) -> EmbeddedPreview:
    if not data.startswith(SOI):
        why = f"not checked: the {kind}'s preview is not a JPEG"
        return EmbeddedPreview(b"", bytes_read, dims, why)
    return EmbeddedPreview(data, bytes_read, dims)
