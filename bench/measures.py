"""Micro-benchmark of the photo checks' CPU: milliseconds per photo, by part, files in memory.

    .venv/bin/python -m bench.measures [SITE_DIR] [--every N] [--repeat N] [--whole-files]

SITE_DIR is a generated site (by default the first of bench/out/data/small; the full-size one
is bench/out/data/full/<site>). Every N-th photo is read into memory and its pixel source taken
by the read program the check pass runs (``read_pixels``: the MPF preview, or the whole file
with ``--whole-files`` or when there is none). Then, per photo, each part of the measuring runs
over those bytes: decode to luma at the analysis size, focus, exposure, pHash, integrity (whole
files only), the digest, and the whole of ``measure()`` as a worker runs it, plus pickling the
task and the result as the process pool does. The process keeps freed heap as the measuring
processes do (``--default-malloc``: as glibc does by default). Prints the best of ``--repeat`` passes in CPU
milliseconds per photo (``time.process_time``: what the photo costs a core, whatever else
runs on the machine): no network, no disk, so the figures compare code.
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import time
from collections.abc import Callable
from pathlib import Path

from qc_tool.domain.checks.blur import focus_measure
from qc_tool.domain.checks.decode import Gray, ImageDecodeError, decode_gray
from qc_tool.domain.checks.exposure import measure_exposure
from qc_tool.domain.checks.integrity import measure_integrity
from qc_tool.domain.checks.phash import phash
from qc_tool.domain.checks.settings import CheckSettings
from qc_tool.domain.pixel_reader import PixelSource, read_pixels
from qc_tool.domain.sparse import run_program
from qc_tool.errors import UnreadableImage
from qc_tool.heap import keep_freed_memory
from qc_tool.services.checks.measure import measure

DEFAULT_DATA = Path(__file__).parent / "out" / "data" / "small"


def _reader(data: bytes) -> Callable[[int, int], bytes]:
    return lambda offset, length: data[offset : offset + length]


def _sources(site: Path, every: int, whole: bool) -> list[tuple[int, PixelSource, Gray]]:
    """(file size, pixel source, decoded luma) of every ``every``-th decodable photo."""
    out = []
    paths = sorted(p for p in site.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
    for path in paths[::every]:
        data = path.read_bytes()
        try:
            source = run_program(read_pixels(len(data), whole_file=whole), _reader(data))
            gray = decode_gray(source.data, CheckSettings().analysis_long_side)
        except (UnreadableImage, ImageDecodeError):  # the site's truncated photos
            continue
        out.append((len(data), source, gray))
    return out


def _best(
    label: str,
    photos: list[tuple[int, PixelSource, Gray]],
    work: Callable[[int, PixelSource, Gray], object],
    repeat: int,
) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        for size, source, gray in photos:
            work(size, source, gray)
        best = min(best, time.process_time() - started)
    ms = best / len(photos) * 1e3
    print(f"  {label:<46} {ms:8.2f} ms/photo")
    return ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", nargs="?", type=Path)
    parser.add_argument("--every", type=int, default=1, help="take every N-th photo")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--whole-files", action="store_true")
    parser.add_argument(
        "--default-malloc",
        action="store_true",
        help="leave glibc's malloc as it is (the workers keep freed heap; see services/workers.py)",
    )
    args = parser.parse_args()
    if not args.default_malloc:
        keep_freed_memory()  # as every measuring process does
    site = args.site or next(p for p in DEFAULT_DATA.iterdir() if p.is_dir() and "-" not in p.name)
    photos = _sources(site, args.every, args.whole_files)
    s = CheckSettings()
    kinds = sorted({source.source for _, source, _ in photos})
    side = max(photos[0][2].width, photos[0][2].height)
    print(f"{len(photos)} photos of {site} ({'/'.join(kinds)}, {side} px), best of {args.repeat}:")
    parts = [
        ("decode to luma (decode_gray)", lambda _, p, g: decode_gray(p.data, s.analysis_long_side)),
        ("focus (focus_measure)", lambda _, p, g: focus_measure(g.pixels, s)),
        ("exposure (measure_exposure)", lambda _, p, g: measure_exposure(g.pixels, s)),
        ("pHash", lambda _, p, g: phash(g.pixels)),
        ("digest (sha256 of header + pixels read)", lambda _, p, g: hashlib.sha256(p.data)),
    ]
    if "full" in kinds:
        parts.append(("integrity (measure_integrity)", lambda _, p, g: measure_integrity(p.data)))
    for label, work in parts:
        _best(label, photos, work, args.repeat)
    results = {id(p): measure(n, p, s) for n, p, _ in photos}
    _best(
        "pickling: task there, result back",
        photos,
        lambda n, p, g: (
            pickle.loads(pickle.dumps((n, p, s))),
            pickle.loads(pickle.dumps(results[id(p)])),
        ),
        args.repeat,
    )
    _best("measure() as a worker runs it", photos, lambda n, p, g: measure(n, p, s), args.repeat)


if __name__ == "__main__":
    main()
