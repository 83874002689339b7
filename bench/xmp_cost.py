"""What reading the DJI XMP would add to the GPS pass: bytes and round trips, per photo.

    .venv/bin/python -m bench.xmp_cost SITE_DIR

Runs the GPS read program (``read_exif_block``) over every JPEG of SITE_DIR with the
sequential driver, records the ranges it reads and the batches it needs, and finds each
file's XMP segment: how long it is, where it starts, and how many of its bytes the GPS pass
has not read already. No network: the figures are bytes and batches, which a link turns into
time. docs/performance.md, "DJI XMP: check pass, not GPS pass".
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from qc_tool.domain.exif_reader import read_exif_block
from qc_tool.domain.jpeg import segments
from qc_tool.domain.sparse import Range
from qc_tool.errors import UnreadableImage

XMP = b"http://ns.adobe.com/xap/1.0/\x00"


def _gps_reads(data: bytes) -> tuple[int, int, list[Range]] | None:
    """(bytes read, batches, ranges) of the GPS read program over ``data``."""
    program = read_exif_block(len(data))
    ranges: list[Range] = []
    batches = 0
    try:
        wanted = next(program)
        while True:
            batches += 1
            ranges += wanted
            wanted = program.send([data[off : off + n] for off, n in wanted])
    except StopIteration as stop:
        return stop.value.bytes_read, batches, ranges
    except UnreadableImage:
        return None


def _xmp_segment(data: bytes) -> tuple[int, int] | None:
    try:
        for seg in segments(data):
            if seg.marker == 0xE1 and data[seg.payload_start :].startswith(XMP):
                return seg.offset, seg.end
    except UnreadableImage:
        pass
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("site", type=Path)
    site = parser.parse_args().site
    read, batches, lengths, starts, extra, one_batch = [], [], [], [], [], 0
    for path in sorted(p for p in site.rglob("*") if p.suffix.lower() == ".jpg"):
        data = path.read_bytes()
        gps = _gps_reads(data)
        if gps is None:
            continue
        read.append(gps[0])
        batches.append(gps[1])
        xmp = _xmp_segment(data)
        if xmp is None:
            continue
        start, end = xmp
        lengths.append(end - start)
        starts.append(start)
        covered = sum(max(0, min(end, o + n) - max(start, o)) for o, n in gps[2])
        extra.append(end - start - covered)
        one_batch += gps[1] == 1
    print(
        f"photos read: {len(read)}; GPS pass {statistics.mean(read):,.0f} bytes and "
        f"{statistics.mean(batches):.2f} batches per photo (mean), {min(batches)}-{max(batches)}"
    )
    if lengths:
        print(
            f"with XMP: {len(lengths)}; segment {min(lengths):,}-{max(lengths):,} bytes "
            f"(median {statistics.median(lengths):,.0f}); starts at {statistics.median(starts):,.0f} "
            f"(median), up to {max(starts):,}"
        )
        print(
            f"XMP bytes the GPS pass has not read: {sum(extra) / 1e6:.2f} MB "
            f"({statistics.mean(extra):,.0f} per XMP photo); already read whole: "
            f"{sum(1 for e in extra if e == 0)}; XMP photos read in one batch today: {one_batch}"
        )


if __name__ == "__main__":
    main()
