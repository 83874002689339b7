"""Generated HEIF/HEIC and DNG-like files with known GPS, for the format readers' tests.

``pillow_heic`` is what a phone writes (libheif via pillow-heif: HEVC image, Exif item).
``build_heif`` lays the boxes out by hand, so a test controls what libheif would not write:
a JPEG thumbnail item, an Exif item stored in the ``idat`` box, a corrupt box.
``build_dng`` writes a TIFF with IFD0's GPS IFD, a raw IFD and (optionally) a JPEG preview
IFD, reached through IFD0's SubIFDs or through the IFD chain, as DNG writers do.
"""

from __future__ import annotations

import functools
import io
import struct
from datetime import datetime
from typing import Literal

import numpy as np
import pillow_heif
from PIL import Image
from qc_tool.demo.imagegen import ImageSpec, _gps_entries, build_exif, quantise_gps
from qc_tool.demo.scene import render_scene
from qc_tool.demo.tiffbuild import (
    BYTE,
    Entry,
    ascii_entry,
    build_tiff,
    ifd_size,
    long_entry,
    short_entry,
    write_ifd,
)

SPEC = ImageSpec(taken=datetime(2024, 5, 14, 9, 30), gps=quantise_gps(-33.86882, 151.2093, 45.5))


def spec_at(lat: float, lon: float, alt: float = 40.0) -> ImageSpec:
    return ImageSpec(taken=datetime(2024, 5, 14, 9, 30), gps=quantise_gps(lat, lon, alt))


def scene_jpeg(width: int, height: int, seed: int = 5) -> bytes:
    """A sharp, well-exposed JPEG the photo checks pass."""
    out = io.BytesIO()
    Image.fromarray(render_scene(width, height, seed=seed)).save(out, "JPEG", quality=90)
    return out.getvalue()


def exif_tiff(spec: ImageSpec, size: tuple[int, int] = (640, 480)) -> bytes:
    """The TIFF body of the EXIF a camera writes for ``spec`` (no thumbnail)."""
    return build_exif(spec, size, None).data


@functools.cache  # x265 takes a while; the bytes never change
def pillow_heic(spec: ImageSpec | None, size: tuple[int, int] = (640, 480), seed: int = 3) -> bytes:
    """A HEIC as libheif writes it: one HEVC image, and an Exif item unless ``spec`` is None."""
    pixels = render_scene(size[0], size[1], seed=seed)
    heif = pillow_heif.from_pillow(Image.fromarray(np.asarray(pixels)).convert("RGB"))
    out = io.BytesIO()
    exif = None if spec is None else b"Exif\x00\x00" + exif_tiff(spec, size)
    heif.save(out, format="HEIF", quality=85, exif=exif)
    return out.getvalue()


# -- HEIF boxes by hand --------------------------------------------------------------------


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def full_box(kind: bytes, version: int, payload: bytes, flags: int = 0) -> bytes:
    return box(kind, struct.pack(">I", version << 24 | flags) + payload)


def _infe(item_id: int, kind: bytes) -> bytes:
    return full_box(b"infe", 2, struct.pack(">HH4s", item_id, 0, kind) + b"\x00")


def build_heif(
    *,
    exif: bytes | None,
    thumbnail: bytes | None = None,
    exif_in_idat: bool = False,
    primary: bytes = b"\x00" * 64,
    primary_type: bytes = b"hvc1",
    brands: tuple[bytes, ...] = (b"heic", b"mif1", b"heic"),
) -> bytes:
    """ftyp, meta (hdlr, pitm, iinf, iloc v1, iref, [idat]), mdat; item 1 the (fake HEVC)
    primary image, 2 the Exif item (``b"\\0\\0\\0\\0Exif\\0\\0"`` + ``exif``), 3 a JPEG
    thumbnail. With ``exif_in_idat`` the Exif item is stored in ``idat`` (construction 1)."""
    exif_item = None if exif is None else b"\x00\x00\x00\x06Exif\x00\x00" + exif
    items: list[tuple[int, bytes, bytes]] = [(1, primary_type, primary)]
    if exif_item is not None:
        items.append((2, b"Exif", exif_item))
    if thumbnail is not None:
        items.append((3, b"jpeg", thumbnail))
    ftyp = box(b"ftyp", brands[0] + b"\x00\x00\x00\x00" + b"".join(brands[1:]))

    def meta(mdat_data_at: int) -> tuple[bytes, bytes]:
        in_mdat = [(i, k, d) for i, k, d in items if not (exif_in_idat and k == b"Exif")]
        places: dict[int, tuple[int, int, int]] = {}  # id -> (method, offset, length)
        at = mdat_data_at
        for item_id, _, data in in_mdat:
            places[item_id] = (0, at, len(data))
            at += len(data)
        idat = b""
        if exif_in_idat and exif_item is not None:
            places[2] = (1, 0, len(exif_item))
            idat = exif_item
        iloc = struct.pack(">BBH", 0x44, 0x00, len(items))
        for item_id, _, _ in items:
            method, offset, length = places[item_id]
            iloc += struct.pack(">HHHHII", item_id, method, 0, 1, offset, length)
        refs = b""
        if exif_item is not None:
            refs += box(b"cdsc", struct.pack(">HHH", 2, 1, 1))
        if thumbnail is not None:
            refs += box(b"thmb", struct.pack(">HHH", 3, 1, 1))
        children = [
            full_box(b"hdlr", 0, b"\x00" * 4 + b"pict" + b"\x00" * 13),
            full_box(b"pitm", 0, struct.pack(">H", 1)),
            full_box(
                b"iinf",
                0,
                struct.pack(">H", len(items)) + b"".join(_infe(i, k) for i, k, _ in items),
            ),
            full_box(b"iloc", 1, iloc),
        ]
        if refs:
            children.append(full_box(b"iref", 0, refs))
        if idat:
            children.append(box(b"idat", idat))
        mdat = box(b"mdat", b"".join(d for _, _, d in in_mdat))
        return full_box(b"meta", 0, b"".join(children)), mdat

    first, _ = meta(0)  # offsets do not change the sizes
    head = len(ftyp) + len(first) + 8
    meta_box, mdat = meta(head)
    return ftyp + meta_box + mdat


# -- DNG-like TIFF files -------------------------------------------------------------------

RAW_SIZE = (1200, 800)


def build_dng(
    spec: ImageSpec,
    preview: bytes | None,
    *,
    via: Literal["subifds", "chain"] = "subifds",
    preview_size: tuple[int, int] = (640, 480),
    raw_bytes: int = 256,
) -> bytes:
    """IFD0 (a DNG's: DNGVersion, make, model, EXIF and GPS IFDs), then a raw IFD
    (NewSubFileType 0, uncompressed, one strip) and, given ``preview``, a preview IFD
    (NewSubFileType 1, JPEG compression, one strip), reached as ``via`` says."""
    order = spec.byte_order
    raw_strip = bytes(raw_bytes)
    exif = [ascii_entry(0x9003, spec.taken.strftime("%Y:%m:%d %H:%M:%S")), short_entry(0x8827, 100)]
    gps = _gps_entries(spec)

    def ifd0(subs: tuple[int, ...]) -> list[Entry]:
        out = [
            long_entry(0x00FE, 1),
            ascii_entry(0x010F, spec.make),
            ascii_entry(0x0110, spec.model),
            Entry(0xC612, BYTE, bytes([1, 4, 0, 0])),
        ]
        return out + ([long_entry(0x014A, *subs)] if via == "subifds" else [])

    n_subs = 2 if preview is not None else 1
    block = build_tiff(order, ifd0((0,) * n_subs), exif, gps, None, None).data
    raw_at = len(block) + len(block) % 2

    def raw_ifd(strip_at: int) -> list[Entry]:
        return [
            long_entry(0x00FE, 0),
            long_entry(0x0100, RAW_SIZE[0]),
            long_entry(0x0101, RAW_SIZE[1]),
            short_entry(0x0103, 1),
            long_entry(0x0111, strip_at),
            long_entry(0x0117, len(raw_strip)),
        ]

    def preview_ifd(strip_at: int) -> list[Entry]:
        assert preview is not None
        return [
            long_entry(0x00FE, 1),
            long_entry(0x0100, preview_size[0]),
            long_entry(0x0101, preview_size[1]),
            short_entry(0x0103, 7),
            long_entry(0x0111, strip_at),
            long_entry(0x0117, len(preview)),
        ]

    preview_at = raw_at + ifd_size(order, raw_ifd(0))
    data_at = preview_at + (ifd_size(order, preview_ifd(0)) if preview is not None else 0)
    subs = (raw_at, preview_at) if preview is not None else (raw_at,)
    block = build_tiff(order, ifd0(subs), exif, gps, None, None).data
    chain = via == "chain"
    parts = [block, b"\x00" * (raw_at - len(block))]
    parts.append(write_ifd(order, raw_ifd(data_at), raw_at, preview_at if chain and preview else 0))
    if preview is not None:
        parts.append(write_ifd(order, preview_ifd(data_at + len(raw_strip)), preview_at, 0))
    parts += [raw_strip, preview or b""]
    out = bytearray(b"".join(parts))
    if chain:  # IFD0's link to the next IFD, after its entries
        end = "<" if order == "II" else ">"
        count = struct.unpack_from(end + "H", out, 8)[0]
        struct.pack_into(end + "I", out, 8 + 2 + 12 * count, raw_at)
    return bytes(out)
