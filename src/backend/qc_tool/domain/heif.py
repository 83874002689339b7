"""HEIF/HEIC headers (ISO-BMFF): where the Exif item and a JPEG thumbnail are, by range reads.

A HEIF file is a list of boxes (size, type, payload). ``ftyp`` names the brands; ``meta``
lists the items (``iinf``), where each item's bytes are (``iloc``: extents in the file, or
in the ``meta`` box's own ``idat``), and the references between items (``iref``: ``thmb``
from a thumbnail to its image, ``cdsc`` from the Exif item to the image it describes). The
Exif item is a 4-byte offset followed by a TIFF body: the JPEG path's TIFF reader reads it.

Bounds: at most MAX_TOP_BOXES top-level boxes are walked to find ``meta``; ``meta`` is
fetched whole, up to MAX_META_BYTES, and at most MAX_BOXES boxes, MAX_ITEMS items and
MAX_EXTENTS extents in all are parsed from it; every size and offset is checked against its
parent box or the file. A bad one is an UnreadableImage that says which box.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from qc_tool.domain.sparse import ReadProgram, SparseBytes, fetch
from qc_tool.errors import UnreadableImage

READ_AHEAD = 4096  # a top-level box header not fetched yet is fetched with this much after it
MAX_TOP_BOXES = 64
MAX_META_BYTES = 1024 * 1024  # phones write 1-20 KB (a grid of 48 tiles is ~5 KB)
MAX_BOXES = 20_000  # boxes parsed inside ``meta``, at every depth
MAX_ITEMS = 10_000
MAX_EXTENTS = 20_000  # over all items
MAX_EXIF_BYTES = 1024 * 1024  # an Exif item in several pieces is gathered whole, up to this
EXIF_READ = 4096  # first read of an Exif item
FTYP_MAX = 4096
# The brands of still-image HEIF files (ISO/IEC 23008-12, MIAF, AVIF, Apple's and Canon's).
IMAGE_BRANDS = frozenset(
    {"mif1", "mif2", "msf1", "miaf", "heic", "heix", "heim", "heis", "hevc", "hevx", "heif"}
    | {"avif", "avis", "avci", "jpeg", "MiHA", "MiHB", "MiHE", "MiPr", "crx "}
)
_HEADER = struct.Struct(">I4s")


def is_heif(head: bytes) -> bool:
    """Whether the first bytes are an ISO-BMFF ``ftyp`` box (HEIF, or a video: see brands)."""
    return head[4:8] == b"ftyp"


def _name(raw: bytes) -> str:
    """A box type as shown in messages: its four letters, or hex when they are not printable."""
    if all(32 <= b < 127 for b in raw):
        return f"'{raw.decode('ascii')}'"
    return f"0x{raw.hex()}"


@dataclass(frozen=True, slots=True)
class Box:
    type: bytes
    start: int  # offset of the box's first byte (file offset, or within ``meta``)
    header: int  # 8, or 16 with a 64-bit size
    end: int

    @property
    def payload(self) -> int:
        return self.start + self.header


@dataclass(frozen=True, slots=True)
class Item:
    id: int
    type: str  # "Exif", "jpeg", "hvc1", "grid", ... ("" when the infe box is too old to say)
    extents: tuple[tuple[int, int], ...] = ()  # file offsets and lengths, in order
    unsupported: str | None = None  # why the item's bytes cannot be located

    @property
    def length(self) -> int:
        return sum(n for _, n in self.extents)


@dataclass(frozen=True, slots=True)
class HeifMeta:
    """What the ``meta`` box says: the primary item, every item, and the references."""

    primary: int | None
    items: dict[int, Item] = field(default_factory=dict)
    refs: tuple[tuple[str, int, tuple[int, ...]], ...] = ()  # (type, from item, to items)
    sizes: dict[int, tuple[int, int]] = field(default_factory=dict)  # item -> ispe width, height

    def exif_item(self) -> Item | None:
        """The Exif item of the primary image (the one ``cdsc`` ties to it), else the first."""
        exif = [i for i in self.items.values() if i.type == "Exif"]
        for item in exif:
            if any(r == "cdsc" and f == item.id and self.primary in to for r, f, to in self.refs):
                return item
        return exif[0] if exif else None

    def thumbnails(self) -> list[Item]:
        """The items that are thumbnails (``thmb``) of the primary image."""
        ids = [f for r, f, to in self.refs if r == "thmb" and self.primary in to]
        return [self.items[i] for i in ids if i in self.items]


def read_meta(buf: SparseBytes) -> ReadProgram[HeifMeta]:
    """Read program: walk the top-level boxes to ``meta``, fetch it whole, parse its items."""
    pos = 0
    for index in range(MAX_TOP_BOXES):
        if pos + 8 > buf.size:
            raise UnreadableImage("corrupt HEIF: the file ends before a 'meta' box")
        box = yield from _top_box(buf, pos)
        if index == 0:
            yield from _check_ftyp(buf, box)
        elif box.type == b"meta":
            if box.end - box.start > MAX_META_BYTES:
                raise UnreadableImage(
                    f"corrupt HEIF: the 'meta' box claims {box.end - box.start:,} bytes "
                    f"(at most {MAX_META_BYTES:,} are read)"
                )
            yield from fetch(buf, [(box.start, box.end - box.start)])
            data = buf.get(box.start, box.end - box.start)
            if data is None:
                raise UnreadableImage("truncated: the file ends inside the HEIF 'meta' box")
            return _parse_meta(data, box.start, buf.size)
        pos = box.end
    raise UnreadableImage(f"corrupt HEIF: no 'meta' box in the first {MAX_TOP_BOXES} boxes")


def not_image_reason(head: bytes) -> str | None:
    """Why an ISO-BMFF file is not a HEIF image (a video), from its ``ftyp``; None if it is."""
    brands = _brands(head[8 : min(len(head), _box_size(head))])
    if brands & IMAGE_BRANDS:
        return None
    shown = ", ".join(sorted(_name(b.encode("latin-1")) for b in brands)) or "none"
    return f"not a photo: an ISO media file (a video?) with brands {shown}"


def _box_size(head: bytes) -> int:
    return int(struct.unpack(">I", head[:4])[0]) if len(head) >= 4 else 0


def _brands(payload: bytes) -> set[str]:
    """Major brand and compatible brands of an ``ftyp`` payload (minor version skipped)."""
    names = [payload[:4]] + [payload[i : i + 4] for i in range(8, len(payload) - 3, 4)]
    return {n.decode("latin-1") for n in names if len(n) == 4}


def _top_box(buf: SparseBytes, pos: int) -> ReadProgram[Box]:
    if not buf.has(pos, 16):
        yield from fetch(buf, [(pos, READ_AHEAD)])
    head = buf.get(pos, min(16, buf.size - pos))
    if head is None or len(head) < 8:
        raise UnreadableImage(f"truncated: the file ends inside a HEIF box header at byte {pos}")
    kind, header, size = _header(head, 0, f"at byte {pos:,}")
    size = buf.size - pos if size is None else size
    if size < header:
        raise UnreadableImage(
            f"corrupt HEIF: the {_name(kind)} box at byte {pos:,} claims {size} bytes"
        )
    box = Box(kind, pos, header, pos + size)  # only ftyp and meta must end inside the file
    if box.end > buf.size and box.type in (b"ftyp", b"meta"):
        raise UnreadableImage(
            f"truncated: the HEIF {_name(box.type)} box ends at byte {box.end:,}, "
            f"past the end of the file ({buf.size:,} bytes)"
        )
    return box


def _check_ftyp(buf: SparseBytes, box: Box) -> ReadProgram[None]:
    if box.type != b"ftyp" or box.end - box.start > FTYP_MAX:
        raise UnreadableImage("corrupt HEIF: the file does not start with a 'ftyp' box")
    yield from fetch(buf, [(box.start, box.end - box.start)])
    head = buf.get(box.start, box.end - box.start) or b""
    reason = not_image_reason(head)
    if reason is not None:
        raise UnreadableImage(reason)


def _header(data: bytes, at: int, where: str) -> tuple[bytes, int, int | None]:
    """(type, header length, size) of the box header at ``data[at:]``; size None means "to
    the end of its container". ``where`` places it in messages."""
    if len(data) - at < 8:
        raise UnreadableImage(f"corrupt HEIF: a box header {where} is cut short")
    size, kind = _HEADER.unpack_from(data, at)
    if size == 1:
        if len(data) - at < 16:
            raise UnreadableImage(f"corrupt HEIF: the {_name(kind)} box {where} is cut short")
        return kind, 16, int(struct.unpack_from(">Q", data, at + 8)[0])
    return kind, 8, None if size == 0 else int(size)


def _box(data: bytes, pos: int, limit: int, where: str) -> Box:
    """The box at ``data[pos:]``, which must end by ``limit``."""
    kind, header, size = _header(data, pos, where)
    size = limit - pos if size is None else size
    if size < header or pos + size > limit:
        raise UnreadableImage(
            f"corrupt HEIF: the {_name(kind)} box {where} claims {size:,} bytes"
            + (", more than its container holds" if size >= header else "")
        )
    return Box(kind, pos, header, pos + size)


class _Cursor:
    """Big-endian fields of one box's payload; running past its end is an UnreadableImage."""

    def __init__(self, data: bytes, pos: int, end: int, what: bytes) -> None:
        self.data, self.pos, self.end, self.what = data, pos, end, what

    def uint(self, size: int) -> int:
        if size == 0:
            return 0
        if self.pos + size > self.end:
            raise UnreadableImage(f"corrupt HEIF: the {_name(self.what)} box is cut short")
        value = int.from_bytes(self.data[self.pos : self.pos + size], "big")
        self.pos += size
        return value

    def four_cc(self) -> bytes:
        return self.uint(4).to_bytes(4, "big")


class _Budget:
    """Counts what one ``meta`` box costs to parse, against the module's bounds."""

    def __init__(self) -> None:
        self.boxes = self.items = self.extents = 0

    def spend(self, what: str, n: int = 1) -> None:
        setattr(self, what, getattr(self, what) + n)
        limit = {"boxes": MAX_BOXES, "items": MAX_ITEMS, "extents": MAX_EXTENTS}[what]
        if getattr(self, what) > limit:
            raise UnreadableImage(f"corrupt HEIF: the 'meta' box holds more than {limit} {what}")


def _children(data: bytes, start: int, end: int, budget: _Budget) -> list[Box]:
    """The boxes laid end to end in ``data[start:end]`` (indexes of ``data``)."""
    out, pos = [], start
    while pos < end:
        budget.spend("boxes")
        box = _box(data, pos, end, f"at byte {pos:,} of the 'meta' box")
        out.append(box)
        pos = box.end
    return out


def _parse_meta(data: bytes, offset: int, file_size: int) -> HeifMeta:
    """The ``meta`` box at file ``offset``, all of it in ``data``."""
    budget = _Budget()
    meta = _box(data, 0, len(data), f"at byte {offset:,}")
    children = {b.type: b for b in reversed(_children(data, meta.payload + 4, meta.end, budget))}
    primary = None
    if (pitm := children.get(b"pitm")) is not None:
        cur = _Cursor(data, pitm.payload, pitm.end, b"pitm")
        primary = cur.uint(2 if cur.uint(4) >> 24 == 0 else 4)
    types = _item_types(data, children.get(b"iinf"), budget)
    idat = children.get(b"idat")
    idat_range = None if idat is None else (offset + idat.payload, idat.end - idat.payload)
    locations = _locations(data, children.get(b"iloc"), idat_range, file_size, budget)
    items = {
        item_id: Item(item_id, kind, *locations.get(item_id, ((), "not in the 'iloc' box")))
        for item_id, kind in types.items()
    }
    refs = _references(data, children.get(b"iref"), budget)
    return HeifMeta(primary, items, refs, _sizes(data, children.get(b"iprp"), budget))


def _sizes(data: bytes, iprp: Box | None, budget: _Budget) -> dict[int, tuple[int, int]]:
    """Each item's image size: its ``ispe`` property (``ipco`` lists them, ``ipma`` assigns)."""
    if iprp is None:
        return {}
    boxes = {b.type: b for b in reversed(_children(data, iprp.payload, iprp.end, budget))}
    ipco, ipma = boxes.get(b"ipco"), boxes.get(b"ipma")
    if ipco is None or ipma is None:
        return {}
    properties = _children(data, ipco.payload, ipco.end, budget)  # numbered from 1
    cur = _Cursor(data, ipma.payload, ipma.end, b"ipma")
    head = cur.uint(4)
    version, flags = head >> 24, head & 0xFFFFFF
    count = cur.uint(4)
    budget.spend("items", count)
    out = {}
    for _ in range(count):
        item_id = cur.uint(2 if version < 1 else 4)
        associations = cur.uint(1)
        budget.spend("extents", associations)
        for _ in range(associations):
            index = cur.uint(2) & 0x7FFF if flags & 1 else cur.uint(1) & 0x7F
            if 0 < index <= len(properties) and properties[index - 1].type == b"ispe":
                box = properties[index - 1]
                c = _Cursor(data, box.payload + 4, box.end, b"ispe")
                out[item_id] = (c.uint(4), c.uint(4))
    return out


def _item_types(data: bytes, iinf: Box | None, budget: _Budget) -> dict[int, str]:
    if iinf is None:
        return {}
    cur = _Cursor(data, iinf.payload, iinf.end, b"iinf")
    version = cur.uint(4) >> 24
    count = cur.uint(2 if version == 0 else 4)
    budget.spend("items", count)
    out: dict[int, str] = {}
    for infe in _children(data, cur.pos, iinf.end, budget):
        if infe.type != b"infe":
            continue
        c = _Cursor(data, infe.payload, infe.end, b"infe")
        v = c.uint(4) >> 24
        if v < 2:  # ISO 14496-12 before 2012: no item type, only a name and a MIME type
            out[c.uint(2)] = ""
            continue
        item_id = c.uint(2 if v == 2 else 4)
        c.uint(2)  # protection index
        out[item_id] = c.four_cc().decode("latin-1")
    return out


def _locations(
    data: bytes,
    iloc: Box | None,
    idat: tuple[int, int] | None,
    file_size: int,
    budget: _Budget,
) -> dict[int, tuple[tuple[tuple[int, int], ...], str | None]]:
    """Each item's extents as (file offset, length); or why they cannot be located."""
    if iloc is None:
        return {}
    cur = _Cursor(data, iloc.payload, iloc.end, b"iloc")
    version = cur.uint(4) >> 24
    if version > 2:
        raise UnreadableImage(f"corrupt HEIF: the 'iloc' box has version {version}")
    sizes, more = cur.uint(1), cur.uint(1)
    offset_size, length_size, base_size = sizes >> 4, sizes & 15, more >> 4
    index_size = more & 15 if version in (1, 2) else 0
    if not {offset_size, length_size, base_size, index_size} <= {0, 4, 8}:
        raise UnreadableImage("corrupt HEIF: the 'iloc' box has field sizes other than 0, 4, 8")
    count = cur.uint(2 if version < 2 else 4)
    budget.spend("items", count)
    out: dict[int, tuple[tuple[tuple[int, int], ...], str | None]] = {}
    for _ in range(count):
        item_id = cur.uint(2 if version < 2 else 4)
        method = cur.uint(2) & 15 if version in (1, 2) else 0
        reference = cur.uint(2)
        base = cur.uint(base_size)
        n = cur.uint(2)
        budget.spend("extents", n)
        raw = []
        for _ in range(n):
            cur.uint(index_size)
            raw.append((cur.uint(offset_size), cur.uint(length_size)))
        if reference != 0:
            out[item_id] = ((), "its data is in another file")
        elif method == 0:
            out[item_id] = (_extents(raw, base, (0, file_size)), None)
        elif method == 1 and idat is not None:
            out[item_id] = (_extents(raw, base, idat), None)
        else:
            out[item_id] = ((), f"construction method {method} is not supported")
    return out


def _extents(
    raw: list[tuple[int, int]], base: int, within: tuple[int, int]
) -> tuple[tuple[int, int], ...]:
    """Extents (offset from ``base``, length; 0: to the end) as file ranges inside ``within``."""
    start, length = within
    out = []
    for off, n in raw:
        at = start + base + off
        if at > start + length:
            raise UnreadableImage(
                f"corrupt HEIF: an item extent starts at byte {at:,}, past the end of its data"
            )
        out.append((at, n if n else start + length - at))
    return tuple(out)


def _references(
    data: bytes, iref: Box | None, budget: _Budget
) -> tuple[tuple[str, int, tuple[int, ...]], ...]:
    if iref is None:
        return ()
    cur = _Cursor(data, iref.payload, iref.end, b"iref")
    size = 2 if cur.uint(4) >> 24 == 0 else 4
    out = []
    for ref in _children(data, cur.pos, iref.end, budget):
        c = _Cursor(data, ref.payload, ref.end, ref.type)
        source, count = c.uint(size), c.uint(2)
        budget.spend("extents", count)
        out.append((ref.type.decode("latin-1"), source, tuple(c.uint(size) for _ in range(count))))
    return tuple(out)


def read_item(buf: SparseBytes, item: Item, limit: int) -> ReadProgram[bytes]:
    """Read program: an item's bytes, its extents joined; UnreadableImage past ``limit`` bytes."""
    if item.unsupported is not None:
        raise UnreadableImage(f"unsupported HEIF: the {item.type} item's {item.unsupported}")
    if item.length > limit:
        raise UnreadableImage(
            f"corrupt HEIF: the {item.type} item claims {item.length:,} bytes "
            f"(at most {limit:,} are read)"
        )
    yield from fetch(buf, list(item.extents))
    parts = [buf.get(off, n) for off, n in item.extents]
    if any(p is None for p in parts):
        raise UnreadableImage(f"truncated: the file ends inside the HEIF {item.type} item")
    return b"".join(p for p in parts if p is not None)


def locate_exif(buf: SparseBytes) -> ReadProgram[tuple[SparseBytes, int, int] | None]:
    """Read program: where the Exif item's TIFF body is, as (bytes, start, length); None if none.

    An item in one extent is read in place (only the parts of the TIFF the reader asks for);
    one in several pieces is gathered first, up to MAX_EXIF_BYTES.
    """
    meta = yield from read_meta(buf)
    item = meta.exif_item()
    if item is None:
        return None
    if item.unsupported is None and len(item.extents) == 1:
        (start, length), where = item.extents[0], buf
    else:
        data = yield from read_item(buf, item, MAX_EXIF_BYTES)
        start, length, where = 0, len(data), SparseBytes.at_hand(data)
    # The item's start in one read: phones write 1-3 KB of Exif, so its TIFF header, IFD0
    # and usually the GPS IFD come with it, one round trip instead of four.
    yield from fetch(where, [(start, min(length, EXIF_READ))])
    raw = where.get(start, 4)
    if raw is None or length < 4:
        raise UnreadableImage("truncated: the HEIF Exif item is cut short")
    skip = 4 + int.from_bytes(raw, "big")  # the offset of the TIFF header, after these 4 bytes
    if skip + 8 > length:
        raise UnreadableImage("corrupt HEIF: the Exif item's TIFF header lies outside it")
    return where, start + skip, length - skip
