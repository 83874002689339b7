"""TIFF and DNG files: the JPEG preview a DNG embeds, found through its IFDs by range reads.

The position is read as in a JPEG's EXIF (IFD0's GPS IFD pointer): exif_reader's TIFF part
reader runs over the whole file as the TIFF body. For the photo checks, DNG writers store
reduced-resolution copies (NewSubFileType bit 0 set) in IFD0, in its SubIFDs or further
down the IFD chain; one that is JPEG-compressed in a single strip (or named by
JPEGInterchangeFormat) is a complete JPEG file, which the checks decode. The largest is used.
The raw image itself (lossless JPEG, or uncompressed) is not decoded.

Bounds: at most MAX_IFDS directories are visited, each once (pointer loops end there), and
at most MAX_SUB_IFDS of one SubIFDs tag are followed.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace

from qc_tool.domain.sparse import ReadProgram, SparseBytes
from qc_tool.domain.tiff import Entry, Tiff
from qc_tool.errors import UnreadableImage

TAG_SUBFILE_TYPE, TAG_WIDTH, TAG_HEIGHT, TAG_COMPRESSION = 0x00FE, 0x0100, 0x0101, 0x0103
TAG_STRIP_OFFSETS, TAG_STRIP_COUNTS, TAG_SUB_IFDS = 0x0111, 0x0117, 0x014A
TAG_JPEG_OFFSET, TAG_JPEG_LENGTH = 0x0201, 0x0202
WANTED = frozenset(
    (TAG_SUBFILE_TYPE, TAG_WIDTH, TAG_HEIGHT, TAG_COMPRESSION, TAG_STRIP_OFFSETS)
    + (TAG_STRIP_COUNTS, TAG_SUB_IFDS, TAG_JPEG_OFFSET, TAG_JPEG_LENGTH)
)
JPEG_COMPRESSIONS = (6, 7)  # old-style and new-style JPEG
MAX_IFDS = 16
MAX_SUB_IFDS = 8
# Values read of any one tag: a count of millions (a SubIFDs or strip array) costs 8 values.
# Eight keeps every out-of-line value out of line (at most 4 bytes are inline).
MAX_VALUES = 8
_INT_FORMATS = {3: "H", 4: "I", 13: "I"}  # SHORT, LONG, IFD


def is_tiff(head: bytes) -> bool:
    return head[:4] in (b"II*\x00", b"MM\x00*")


@dataclass(frozen=True, slots=True)
class Candidate:
    offset: int
    length: int
    pixels: int  # width x height as the IFD states it (0 when it does not)


@dataclass(frozen=True, slots=True)
class TiffLayout:
    """What the IFDs say: the best JPEG preview (offset, length), the main image's size."""

    preview: tuple[int, int] | None
    dimensions: tuple[int, int] | None
    ifds: int  # directories visited


def read_layout(buf: SparseBytes) -> ReadProgram[TiffLayout]:
    """Read program: visit IFD0, its SubIFDs and the IFD chain; find the JPEG previews."""
    tiff, ifd0 = yield from Tiff.open(buf, 0, buf.size, kind="TIFF")
    queue, seen = [(ifd0, "IFD0")], set[int]()
    found: list[Candidate] = []
    dimensions = None
    while queue and len(seen) < MAX_IFDS:
        batch = []
        for off, name in queue:
            if off not in seen and len(seen) < MAX_IFDS:
                seen.add(off)
                batch.append((off, name))
        queue = []
        found_entries = yield from tiff.read_ifds([(off, name, WANTED) for off, name in batch])
        per_ifd = [[replace(e, count=min(e.count, MAX_VALUES)) for e in es] for es in found_entries]
        yield from tiff.fetch_values([e for es in per_ifd for e in es])
        for (off, name), entries in zip(batch, per_ifd, strict=True):
            tags = {e.tag: e for e in entries}
            subs = _ints(tiff, tags[TAG_SUB_IFDS]) if TAG_SUB_IFDS in tags else []
            queue += [(s, f"SubIFD {i} of {name}") for i, s in enumerate(subs[:MAX_SUB_IFDS]) if s]
            following = _next_ifd(tiff, off)
            if following:
                queue.append((following, f"the IFD after {name}"))
            size = _size(tiff, tags)
            if dimensions is None and not _first(tiff, tags, TAG_SUBFILE_TYPE, 0) & 1:
                dimensions = size
            candidate = _jpeg_candidate(tiff, tags, size)
            if candidate is not None:
                found.append(candidate)
    best = max(found, key=lambda c: (c.pixels, c.length), default=None)
    preview = None if best is None else (best.offset, best.length)
    return TiffLayout(preview, dimensions, len(seen))


def _ints(tiff: Tiff, entry: Entry) -> list[int]:
    fmt = _INT_FORMATS.get(entry.type)
    if fmt is None:
        raise UnreadableImage(
            f"corrupt TIFF: tag 0x{entry.tag:04X} has type {entry.type}, not a whole number"
        )
    return list(struct.unpack(f"{tiff.order}{entry.count}{fmt}", tiff.value(entry)))


def _first(tiff: Tiff, tags: dict[int, Entry], tag: int, default: int) -> int:
    entry = tags.get(tag)
    if entry is None or entry.count < 1:
        return default
    return _ints(tiff, entry)[0]


def _size(tiff: Tiff, tags: dict[int, Entry]) -> tuple[int, int] | None:
    width, height = _first(tiff, tags, TAG_WIDTH, 0), _first(tiff, tags, TAG_HEIGHT, 0)
    return (width, height) if width and height else None


def _next_ifd(tiff: Tiff, off: int) -> int:
    """The link to the next IFD, stored after the entries (``read_ifds`` fetched it)."""
    raw = tiff.buf.get(tiff.base + off, 2)
    count = int(struct.unpack(tiff.order + "H", raw)[0]) if raw else 0
    link = tiff.buf.get(tiff.base + off + 2 + 12 * count, 4)
    return int(struct.unpack(tiff.order + "I", link)[0]) if link else 0


def _jpeg_candidate(
    tiff: Tiff, tags: dict[int, Entry], size: tuple[int, int] | None
) -> Candidate | None:
    """The IFD's image as one JPEG file, when it is a reduced-resolution JPEG in one piece."""
    pixels = size[0] * size[1] if size else 0
    if TAG_JPEG_OFFSET in tags and TAG_JPEG_LENGTH in tags:
        offset = _first(tiff, tags, TAG_JPEG_OFFSET, 0)
        length = _first(tiff, tags, TAG_JPEG_LENGTH, 0)
    elif (
        _first(tiff, tags, TAG_SUBFILE_TYPE, 0) & 1
        and _first(tiff, tags, TAG_COMPRESSION, 1) in JPEG_COMPRESSIONS
        and TAG_STRIP_OFFSETS in tags
        and TAG_STRIP_COUNTS in tags
        and tags[TAG_STRIP_OFFSETS].count == 1
        and tags[TAG_STRIP_COUNTS].count == 1
    ):
        offset = _first(tiff, tags, TAG_STRIP_OFFSETS, 0)
        length = _first(tiff, tags, TAG_STRIP_COUNTS, 0)
    else:
        return None
    if offset <= 0 or length <= 0 or offset + length > tiff.length:
        return None  # a preview that is not (all) in the file cannot be judged
    return Candidate(offset, length, pixels)
