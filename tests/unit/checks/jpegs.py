"""Small JPEG builders for the check tests: plain JPEGs, DJI-style MPF files, XMP packets."""

from __future__ import annotations

import io
import struct

import numpy as np
from PIL import Image


def gradient_jpeg(width: int, height: int, quality: int = 90) -> bytes:
    """A smooth grey gradient: cheap to make at any size, and with no texture at all."""
    row = np.linspace(40, 200, width, dtype=np.float32)
    col = np.linspace(0, 30, height, dtype=np.float32)[:, None]
    return encode(np.clip(row + col, 0, 255).astype(np.uint8), quality)


def encode(pixels: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of a grey (2-D) or RGB (3-D) uint8 array."""
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=quality)
    return out.getvalue()


def _mp_header(order: str, entries: list[tuple[int, int, int]]) -> bytes:
    """The TIFF-style MP header and MP Index IFD (version, count, MPEntry) for ``entries``."""
    e = order
    magic = b"II*\x00" if order == "<" else b"MM\x00*"
    ifd_entries = 3
    entry_data = 8 + 2 + 12 * ifd_entries + 4  # after header, IFD count, entries, next-IFD
    ifd = struct.pack(e + "H", ifd_entries)
    ifd += struct.pack(e + "HHI", 0xB000, 7, 4) + b"0100"
    ifd += struct.pack(e + "HHII", 0xB001, 4, 1, len(entries))
    ifd += struct.pack(e + "HHII", 0xB002, 7, 16 * len(entries), entry_data)
    ifd += struct.pack(e + "I", 0)
    data = b"".join(struct.pack(e + "IIIHH", a, s, o, 0, 0) for a, s, o in entries)
    return magic + struct.pack(e + "I", 8) + ifd + data


def with_mpf(primary: bytes, previews: list[bytes], order: str = ">") -> tuple[bytes, int]:
    """A DJI-style file: ``primary`` with an APP2 MPF segment, ``previews`` appended after it.

    Returns the file and the offset of the MP header (where MPEntry offsets count from).
    """
    assert primary[:2] == b"\xff\xd8"
    n = 1 + len(previews)
    header_len = len(_mp_header(order, [(0, 0, 0)] * n))
    segment_len = 2 + 4 + header_len  # length field, "MPF\0", MP header
    mp_start = 2 + 4 + 4  # SOI, APP2 marker and length, "MPF\0"
    primary_len = len(primary) + 2 + segment_len
    entries = [(0x20030000, primary_len, 0)]
    offset = primary_len
    for preview in previews:
        entries.append((0x00010002, len(preview), offset - mp_start))
        offset += len(preview)
    app2 = b"\xff\xe2" + struct.pack(">H", segment_len) + b"MPF\x00" + _mp_header(order, entries)
    return primary[:2] + app2 + primary[2:] + b"".join(previews), mp_start


def with_xmp(jpeg: bytes, packet: str) -> bytes:
    """``jpeg`` with an APP1 XMP segment holding ``packet`` inserted after SOI."""
    body = b"http://ns.adobe.com/xap/1.0/\x00" + packet.encode()
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body + jpeg[2:]


DJI_XMP_ATTRIBUTES = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="DJI Meta Data"
    xmlns:drone-dji="http://www.dji.com/drone-dji/1.0/"
   drone-dji:AbsoluteAltitude="+112.45"
   drone-dji:RelativeAltitude="+45.20"
   drone-dji:GimbalRollDegree="+0.00"
   drone-dji:GimbalYawDegree="-12.30"
   drone-dji:GimbalPitchDegree="-89.90"
   drone-dji:FlightYawDegree="-11.80"
   drone-dji:CalibratedFocalLength="3666.666504"
   drone-dji:Version="1.4"
   drone-dji:RtkFlag="50"
   drone-dji:DewarpData="2022-06-08;3713.290,3713.290,7.020,-8.720"
  />
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"""

DJI_XMP_ELEMENTS = """<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description xmlns:drone-dji="http://www.dji.com/drone-dji/1.0/">
   <drone-dji:GimbalPitchDegree>-45.5</drone-dji:GimbalPitchDegree>
   <drone-dji:FlightYawDegree> 170.25 </drone-dji:FlightYawDegree>
   <drone-dji:RelativeAltitude>+30.10</drone-dji:RelativeAltitude>
   <drone-dji:Model>not a number</drone-dji:Model>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>"""
