"""Helpers of the upload tests: small generated photos, ZIPs built from them, hostile ZIPs."""

from __future__ import annotations

import io
import struct
import warnings
import zipfile
from collections.abc import Mapping
from datetime import datetime, timedelta

import numpy as np
from PIL import Image, ImageFilter
from qc_tool.demo.imagegen import ImageSpec, build_jpeg, quantise_gps
from qc_tool.demo.scene import render_scene

SIZE = (320, 240)

# Field offsets in a central directory header ("PK\1\2").
CD_FLAGS, CD_COMPRESSED, CD_SIZE, CD_EXTERNAL_ATTR, CD_OFFSET = 8, 20, 24, 38, 42
CD_FIELD_FORMAT = {
    CD_FLAGS: "<H",
    CD_COMPRESSED: "<L",
    CD_SIZE: "<L",
    CD_EXTERNAL_ATTR: "<L",
    CD_OFFSET: "<L",
}


def photo(
    i: int,
    *,
    defect: str | None = None,
    preview: bool = False,
    gps: bool = True,
    lat: float | None = None,
    lon: float | None = None,
) -> bytes:
    """A small drone-like JPEG with GPS and capture time; ``defect`` is "dark" or "blurred".

    With ``preview`` the pixels are an MPF preview after a tiny main image, as DJI stores them;
    without ``gps`` it has no GPS tags; ``lat`` and ``lon`` place it elsewhere than the default.
    """
    pixels = render_scene(*SIZE, seed=500 + i)
    if defect == "dark":
        pixels = (pixels * 0.08).astype(np.uint8)
    elif defect == "blurred":
        pixels = np.asarray(Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(4)))
    spec = ImageSpec(
        taken=datetime(2024, 5, 14, 9, 0) + timedelta(seconds=30 * i),
        gps=quantise_gps(
            52.37 + i * 1e-4 if lat is None else lat, 4.89 + i * 1e-4 if lon is None else lon, 40.0
        )
        if gps
        else None,
        preview=SIZE if preview else None,
    )
    if preview:
        main = _jpeg(render_scene(64, 48, seed=900 + i))
        return build_jpeg(spec, main[2:], preview_jpeg=_jpeg(pixels))
    return build_jpeg(spec, _jpeg(pixels)[2:])


def _jpeg(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=90)
    return out.getvalue()


def make_zip(
    entries: Mapping[str | zipfile.ZipInfo, bytes],
    compression: int = zipfile.ZIP_DEFLATED,
) -> bytes:
    """A ZIP of ``entries`` (names or prepared ZipInfos), in order; duplicates allowed."""
    out = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate names we want
        with zipfile.ZipFile(out, "w", compression) as archive:
            for name, data in entries.items():
                archive.writestr(name, data)
    return out.getvalue()


class Dup(str):
    """A name that is a distinct dict key but the same ZIP name (for duplicate entries)."""

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other


def info(name: str, *, mode: int | None = None, comment: bytes = b"") -> zipfile.ZipInfo:
    """A ZipInfo with a Unix mode (file type bits included) and a comment, as given."""
    entry = zipfile.ZipInfo(name, date_time=(2024, 5, 14, 9, 0, 0))
    entry.compress_type = zipfile.ZIP_DEFLATED
    if mode is not None:
        entry.create_system = 3
        entry.external_attr = mode << 16
    entry.comment = comment
    return entry


def central_headers(data: bytes) -> list[int]:
    """Offsets of the central directory headers, in order."""
    end = data.rfind(b"PK\x05\x06")
    count, _, start = struct.unpack_from("<HLL", data, end + 10)
    offsets, at = [], start
    for _ in range(count):
        assert data[at : at + 4] == b"PK\x01\x02"
        offsets.append(at)
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, at + 28)
        at += 46 + name_len + extra_len + comment_len
    return offsets


def patch_central(data: bytes, index: int, field: int, value: int) -> bytes:
    """Overwrite one field of the ``index``-th central directory header."""
    at = central_headers(data)[index] + field
    fmt = CD_FIELD_FORMAT[field]
    return data[:at] + struct.pack(fmt, value) + data[at + struct.calcsize(fmt) :]


def patch_end_record_entries(data: bytes, entries: int) -> bytes:
    """Make the end record declare ``entries`` entries (both counts)."""
    end = data.rfind(b"PK\x05\x06")
    return data[: end + 8] + struct.pack("<HH", entries, entries) + data[end + 12 :]


def local_data_offset(data: bytes, index: int) -> int:
    """Where the ``index``-th entry's (compressed) data starts."""
    at = struct.unpack_from("<L", data, central_headers(data)[index] + CD_OFFSET)[0]
    name_len, extra_len = struct.unpack_from("<HH", data, at + 26)
    return at + 30 + name_len + extra_len


def site_batch() -> dict[str, bytes]:
    """A card-like ZIP's files: 10 photos in two folders under a wrapper folder, and a note.

    Invalid: DJI_0001 and its copy DJI_0009 (duplicates), DJI_0007 (dark), DJI_0008 (blurred),
    DJI_0010 (not a JPEG). The rest are valid; DJI_0003 is judged on its MPF preview.
    """
    files = {f"SITE-9/Tower/DJI_{i:04d}.JPG": photo(i, preview=i == 3) for i in range(1, 7)}
    files["SITE-9/Tower/DJI_0007.JPG"] = photo(7, defect="dark")
    files["SITE-9/Base/DJI_0008.JPG"] = photo(8, defect="blurred")
    files["SITE-9/Base/DJI_0009.JPG"] = files["SITE-9/Tower/DJI_0001.JPG"]
    files["SITE-9/Base/DJI_0010.JPG"] = b"this is not a jpeg at all" * 20
    files["SITE-9/Base/notes.txt"] = b"flight notes"
    return files


# Each invalid photo and the verdict's kind it fails (domain/verdict.py KINDS).
BATCH_INVALID = {
    "Tower/DJI_0001.JPG": "duplicate",
    "Tower/DJI_0007.JPG": "exposure",
    "Base/DJI_0008.JPG": "blur",
    "Base/DJI_0009.JPG": "duplicate",
    "Base/DJI_0010.JPG": "unreadable",
}
BATCH_VALID = [f"Tower/DJI_{i:04d}.JPG" for i in range(2, 7)]
