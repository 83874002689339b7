"""JPEG marker segments (JFIF, ICC, XMP, MPF) as cameras write them; found again with the domain's walker."""

from __future__ import annotations

import struct
from xml.sax.saxutils import quoteattr

from qc_tool.demo.tiffbuild import ByteOrder
from qc_tool.domain.jpeg import frame_size, is_sof, segments

SOI, EOI, SOS = 0xD8, 0xD9, 0xDA
APP0, APP1, APP2 = 0xE0, 0xE1, 0xE2
MAX_PAYLOAD = 65_533  # a segment's length field (2 bytes) counts itself
XMP_NAMESPACE = b"http://ns.adobe.com/xap/1.0/\0"
_ICC_CHUNK = MAX_PAYLOAD - 14  # "ICC_PROFILE\0" + sequence number + chunk count


def segment(marker: int, payload: bytes) -> bytes:
    """Frame a payload as a marker segment; refuses payloads a 16-bit length cannot describe."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"segment 0x{marker:02X} payload of {len(payload)} bytes exceeds 65,533")
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


# The demo walks its JPEGs with the header readers' walker: SOI up to and including SOS.
iter_segments = segments


def strip_app_segments(jpeg: bytes) -> bytes:
    """Drop SOI and the APPn segments an encoder wrote, keeping DQT/SOF/DHT/SOS...EOI."""
    for seg in iter_segments(jpeg):
        if not APP0 <= seg.marker <= 0xEF:
            return jpeg[seg.offset :]
    raise ValueError("JPEG has no image segments")


def sof_dimensions(jpeg: bytes) -> tuple[int, int]:
    """(width, height) from the first SOFn segment of a complete JPEG."""
    for seg in segments(jpeg):
        if is_sof(seg.marker):
            size = frame_size(jpeg[seg.payload_start : seg.payload_start + 5])
            if size is not None:
                return size
    raise ValueError("JPEG has no SOF segment")


def jfif_app0() -> bytes:
    """APP0 JFIF 1.01, aspect ratio 1:1, no thumbnail."""
    return segment(APP0, b"JFIF\0" + struct.pack(">BBBHHBB", 1, 1, 0, 1, 1, 0, 0))


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ \0\0\0\0" + _s15(x) + _s15(y) + _s15(z)


def icc_profile(size: int) -> bytes:
    """An sRGB-like ICC v2 display profile of about ``size`` bytes (long TRC curves pad it)."""
    desc_text = b"sRGB IEC61966-2.1\0"
    desc = (
        b"desc\0\0\0\0" + struct.pack(">I", len(desc_text)) + desc_text + bytes(4 + 4 + 2 + 1 + 67)
    )
    fixed: list[tuple[bytes, bytes]] = [
        (b"desc", desc),
        (b"cprt", b"text\0\0\0\0Copyright (c) 1998 Hewlett-Packard Company\0"),
        (b"wtpt", _xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", _xyz(0.4361, 0.2225, 0.0139)),
        (b"gXYZ", _xyz(0.3851, 0.7169, 0.0971)),
        (b"bXYZ", _xyz(0.1431, 0.0606, 0.7141)),
    ]
    used = 128 + 4 + 12 * (len(fixed) + 3) + sum((len(d) + 3) // 4 * 4 for _, d in fixed)
    points = max(2, (size - used - 3 * 12) // 6)
    curve = [round((i / (points - 1)) ** 2.2 * 65535) for i in range(points)]
    curv = b"curv\0\0\0\0" + struct.pack(f">I{points}H", points, *curve)
    tags = fixed + [(b"rTRC", curv), (b"gTRC", curv), (b"bTRC", curv)]

    table, body = [], b""
    offset = 128 + 4 + 12 * len(tags)
    for signature, data in tags:
        table.append(signature + struct.pack(">II", offset + len(body), len(data)))
        body += data + bytes(-len(data) % 4)  # tag data starts on 4-byte boundaries
    total = offset + len(body)
    header = struct.pack(
        ">I4sI4s4s4s6H4s4sI4s4s8sI",
        total,
        b"lcms",
        0x02100000,
        b"mntr",
        b"RGB ",
        b"XYZ ",
        2017,
        4,
        1,
        9,
        30,
        0,
        b"acsp",
        b"APPL",
        0,
        b"DJI ",
        b"\0\0\0\0",
        bytes(8),
        0,
    )
    header += _s15(0.9642) + _s15(1.0) + _s15(0.8249) + b"lcms" + bytes(16 + 28)
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + b"".join(table) + body


def icc_app2(profile: bytes) -> bytes:
    """The ICC profile as APP2 ICC_PROFILE segment(s), chunked as the ICC spec describes."""
    chunks = [profile[i : i + _ICC_CHUNK] for i in range(0, len(profile), _ICC_CHUNK)] or [b""]
    return b"".join(
        segment(APP2, b"ICC_PROFILE\0" + bytes([n + 1, len(chunks)]) + chunk)
        for n, chunk in enumerate(chunks)
    )


def xmp_app1(fields: dict[str, str]) -> bytes:
    """An APP1 XMP packet in DJI's style; bare field names go in the drone-dji namespace."""
    attrs = "".join(
        f"\n   {name if ':' in name else 'drone-dji:' + name}={quoteattr(value)}"
        for name, value in fields.items()
    )
    packet = (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about="DJI Meta Data"\n'
        '   xmlns:tiff="http://ns.adobe.com/tiff/1.0/"\n'
        '   xmlns:dc="http://purl.org/dc/elements/1.1/"\n'
        '   xmlns:drone-dji="http://www.dji.com/drone-dji/1.0/"\n'
        '   dc:format="image/jpg"'
        f"{attrs}>\n"
        "  </rdf:Description>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        + (" " * 99 + "\n") * 20  # writers leave padding so the packet can be edited in place
        + '<?xpacket end="w"?>'
    )
    return segment(APP1, XMP_NAMESPACE + packet.encode("utf-8"))


MPF_SEGMENT_LEN = 2 + 2 + 4 + 8 + (2 + 3 * 12 + 4) + 2 * 16
PRIMARY_ATTRIBUTE = 0x20030000  # representative image, Baseline MP Primary Image
VGA_THUMBNAIL, FULL_HD_THUMBNAIL = 0x010001, 0x010002


def mpf_app2(
    order: ByteOrder, primary_size: int, preview_offset: int, preview_size: int, preview_type: int
) -> bytes:
    """APP2 MPF with an MP Index IFD of two entries (CIPA DC-007).

    ``preview_offset`` is relative to the MP header (the byte-order mark right after "MPF\\0");
    the primary image's offset is 0 by definition.
    """
    end = "<" if order == "II" else ">"
    header = (b"II*\0" if order == "II" else b"MM\0*") + struct.pack(f"{end}I", 8)
    entries_at = 8 + 2 + 3 * 12 + 4
    ifd = struct.pack(f"{end}H", 3)
    ifd += struct.pack(f"{end}HHI", 0xB000, 7, 4) + b"0100"  # MPFVersion
    ifd += struct.pack(f"{end}HHII", 0xB001, 4, 1, 2)  # NumberOfImages
    ifd += struct.pack(f"{end}HHII", 0xB002, 7, 32, entries_at)  # MPEntry
    ifd += struct.pack(f"{end}I", 0)  # no MP Attribute IFD
    entries = struct.pack(f"{end}IIIHH", PRIMARY_ATTRIBUTE, primary_size, 0, 0, 0)
    entries += struct.pack(f"{end}IIIHH", preview_type, preview_size, preview_offset, 0, 0)
    data = segment(APP2, b"MPF\0" + header + ifd + entries)
    assert len(data) == MPF_SEGMENT_LEN
    return data
