"""Bad input: however a file named .jpg is wrong, it costs that image a reason, with bounded work.

Every input goes through both per-image pipelines as a scan runs them: the GPS pass
(``read_exif_block`` then ``summarize``) and the photo checks (``read_pixels`` then ``measure``).
Work is bounded by counting what the read programs ask for (bytes and batches) and memory by
tracemalloc's peak; nothing here times anything. The scan going on past bad files is shown in
tests/integration/test_bad_input_sftp.py.
"""

from __future__ import annotations

import importlib
import io
import pkgutil
import random
import struct
import tracemalloc
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
import qc_tool
from paramiko.sftp_attr import SFTPAttributes
from PIL import Image
from qc_tool.adapters.sftp.engine import OpenDir, ReadDir
from qc_tool.adapters.sftp.tasks import listing_task
from qc_tool.demo.imagegen import ImageSpec, build_jpeg, encode_body, quantise_gps
from qc_tool.demo.segments import iter_segments
from qc_tool.domain.checks import decode
from qc_tool.domain.checks.decode import ImageTooLarge, decode_gray, max_pixels
from qc_tool.domain.checks.integrity import measure_integrity
from qc_tool.domain.checks.settings import CheckSettings
from qc_tool.domain.exif import summarize
from qc_tool.domain.exif_reader import FIRST_READ, TAIL_READ, read_exif_block
from qc_tool.domain.jpeg import MAX_SEGMENTS
from qc_tool.domain.models import ExifSummary
from qc_tool.domain.paths import MAX_LISTING, check_listing
from qc_tool.domain.pixel_reader import MAX_WHOLE_FILE_BYTES, read_pixels
from qc_tool.domain.sparse import ReadProgram
from qc_tool.errors import RemoteError, UnreadableImage
from qc_tool.services.checks.measure import measure

BODY = encode_body(160, 120, seed=3)
TRUTH = quantise_gps(52.37, 4.89, 40.0)
SEGMENT_MAX = 65_535
# What the EXIF read program may ask for on any input, from its own limits: the first read and
# the tail, one read-ahead per segment header walked, then IFDs and values, all inside one
# EXIF segment (at most 64 KB, fetched at most twice over: windows, then exact ranges).
HEADER_WORK_BOUND = FIRST_READ + TAIL_READ + MAX_SEGMENTS * FIRST_READ + 2 * SEGMENT_MAX
HEADER_BATCH_BOUND = MAX_SEGMENTS + 8
# Peak Python memory per image (tracemalloc): the files here are < 64 KB, and the bombs below
# declare gigapixels; a pipeline that allocated by what a file claims would blow far past this.
MEMORY_BOUND = 4 * 1024 * 1024


def _jpeg(**kw: object) -> bytes:
    spec = ImageSpec(taken=datetime(2024, 5, 14, 9, 30), **kw)  # type: ignore[arg-type]
    return build_jpeg(spec, BODY)


# A DJI-shaped photo: GPS behind a MakerNote, a thumbnail, and an MPF preview after the image.
REAL = _jpeg(gps=TRUTH, makernote_size=2_000, preview=(320, 240))
HEADER_END = list(iter_segments(REAL))[-1].end  # just past the start-of-scan segment


@dataclass
class Work:
    """What one read program asked for."""

    bytes_requested: int = 0
    batches: int = 0


@dataclass
class Outcome:
    """Both pipelines' results for one file, and what they cost."""

    facts: ExifSummary | None = None
    reason: str | None = None  # the GPS pass's reason the image is unreadable
    truncated: bool = False
    checks_error: str | None = None  # the checks' reason: unreadable, or undecodable pixels
    header_work: Work = field(default_factory=Work)
    pixel_work: Work = field(default_factory=Work)
    peak_bytes: int = 0

    @property
    def position(self) -> tuple[float | None, float | None]:
        return (self.facts.lat, self.facts.lon) if self.facts else (None, None)


def drive(program: ReadProgram[object], data: bytes, work: Work) -> object:
    """The sequential driver, counting each batch and every byte asked for."""
    try:
        want = next(program)
        while True:
            work.batches += 1
            work.bytes_requested += sum(length for _, length in want)
            want = program.send([data[offset : offset + length] for offset, length in want])
    except StopIteration as stop:
        return stop.value


def run_image(data: bytes, listed: int | None = None, *, whole_file: bool = False) -> Outcome:
    """Run ``data`` (listed at ``listed`` bytes) through the GPS pass and the checks."""
    size = len(data) if listed is None else listed
    out = Outcome()
    tracemalloc.start()
    try:
        try:
            block = drive(read_exif_block(size), data, out.header_work)
            assert block is not None and hasattr(block, "tiff")
            out.facts = summarize(block)  # type: ignore[arg-type]
            out.truncated = bool(block.truncated)
        except UnreadableImage as exc:
            out.reason = exc.message
        try:
            source = drive(read_pixels(size, whole_file=whole_file), data, out.pixel_work)
            measured = measure(size, source, CheckSettings())  # type: ignore[arg-type]
            integrity = measured.integrity  # a band's read finds a cut file by its end marker
            problem = integrity.problem if integrity is not None else None
            out.checks_error = measured.decode_error or problem
        except UnreadableImage as exc:
            out.checks_error = exc.message
        out.peak_bytes = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return out


def assert_bounded(out: Outcome, data: bytes) -> None:
    assert out.header_work.bytes_requested <= HEADER_WORK_BOUND
    assert out.header_work.batches <= HEADER_BATCH_BOUND
    # The checks read a header walk's worth, then at most the whole file, once.
    assert out.pixel_work.bytes_requested <= HEADER_WORK_BOUND + len(data)
    assert out.pixel_work.batches <= HEADER_BATCH_BOUND
    assert out.peak_bytes <= MEMORY_BOUND


def assert_never_null_island(out: Outcome) -> None:
    lat, lon = out.position
    assert (lat is None) == (lon is None)
    assert (lat, lon) != (0.0, 0.0)


# -- truncation -----------------------------------------------------------------------------


def _truncation_outcomes() -> dict[int, Outcome]:
    """Every cut of the real file from 0 bytes to just past its header (computed once)."""
    if not _CUTS:
        for cut in range(HEADER_END + 64):
            _CUTS[cut] = run_image(REAL[:cut])
    return _CUTS


_CUTS: dict[int, Outcome] = {}


def test_every_truncation_of_a_real_header_gets_a_result_or_a_reason() -> None:
    outcomes = _truncation_outcomes()
    assert len(outcomes) == HEADER_END + 64 > 11_000
    kinds = set()
    for cut, out in outcomes.items():
        assert_bounded(out, REAL[:cut])
        assert_never_null_island(out)
        if out.reason is not None:
            kinds.add("reason")
            assert out.facts is None and out.reason
        else:
            assert out.facts is not None
            # Cut past the EXIF segment: the position is the true one, and the cut is noticed.
            assert out.position == TRUTH[:2] and out.truncated
            kinds.add("gps, truncated")
        # The checks never get a whole image from a cut header.
        assert out.checks_error, f"cut at {cut}: the checks found nothing wrong"
    assert kinds == {"reason", "gps, truncated"}


def test_truncation_reasons_say_what_is_wrong() -> None:
    reasons = {out.reason.split(":")[0] for out in _truncation_outcomes().values() if out.reason}
    assert reasons == {"empty file (0 bytes)", "not a JPEG", "truncated"}


def test_the_whole_real_file_reads_exactly() -> None:
    out = run_image(REAL)
    assert out.reason is None and out.facts is not None and not out.truncated
    assert (out.facts.lat, out.facts.lon, out.facts.alt) == TRUTH
    assert out.checks_error is None
    assert_bounded(out, REAL)


# -- not JPEGs at all -----------------------------------------------------------------------


def _pillow(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 30)).save(buf, fmt)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda: b"", "empty file"),
        (lambda: _pillow("PNG"), "PNG"),
        (lambda: _pillow("GIF"), "GIF"),
        (lambda: b"\0\0\0\x18ftypisom\0\0\0\0isommp41" + bytes(2000), "ISO media"),
        (lambda: b"DJI flight log, renamed to .jpg by mistake\n" * 50, "text"),
        (lambda: bytes(5000), "no start-of-image"),
    ],
    # TIFF and HEIF photos are read (tests/unit/test_formats.py); an MP4 video is not.
    ids=["zero-bytes", "png", "gif", "mp4", "text", "zeros"],
)
def test_files_that_are_not_jpegs_are_named_by_both_passes(
    make: Callable[[], bytes], kind: str
) -> None:
    data = make()
    out = run_image(data)
    assert out.reason is not None and kind in out.reason
    assert out.checks_error is not None and kind in out.checks_error
    # One look at the start (and the end) of the file was enough to say so.
    assert out.header_work.bytes_requested <= FIRST_READ + TAIL_READ
    assert out.pixel_work.bytes_requested <= FIRST_READ
    assert_bounded(out, data)


# -- damaged EXIF structures ----------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Where the parts of a generated little-endian EXIF segment are, to patch them."""

    data: bytes
    base: int  # file offset of the TIFF header
    ifd0: int
    exif_ifd: int
    gps_ifd: int

    @classmethod
    def of(cls, data: bytes) -> Layout:
        base = data.index(b"Exif\x00\x00") + 6
        ifd0 = struct.unpack_from("<I", data, base + 4)[0]
        entries = _entries(data, base, ifd0)
        return cls(data, base, ifd0, entries[0x8769][3], entries[0x8825][3])

    def entry(self, ifd: int, tag: int) -> tuple[int, int, int, int]:
        """(TIFF offset of the entry, type, count, value) of ``tag`` in the IFD at ``ifd``."""
        return _entries(self.data, self.base, ifd)[tag]

    def patch(self, at: int, raw: bytes) -> bytes:
        out = bytearray(self.data)
        out[self.base + at : self.base + at + len(raw)] = raw
        return bytes(out)

    def patch_entry(
        self,
        ifd: int,
        tag: int,
        *,
        type_: int | None = None,
        count: int | None = None,
        value: int | None = None,
    ) -> bytes:
        at, old_type, old_count, old_value = self.entry(ifd, tag)
        fields = (
            tag,
            old_type if type_ is None else type_,
            old_count if count is None else count,
            old_value if value is None else value,
        )
        return self.patch(at, struct.pack("<HHII", *fields))

    def next_link(self, ifd: int) -> int:
        count = struct.unpack_from("<H", self.data, self.base + ifd)[0]
        return ifd + 2 + 12 * count


def _entries(data: bytes, base: int, ifd: int) -> dict[int, tuple[int, int, int, int]]:
    count = struct.unpack_from("<H", data, base + ifd)[0]
    out = {}
    for i in range(count):
        at = ifd + 2 + 12 * i
        tag, type_, n, value = struct.unpack_from("<HHII", data, base + at)
        out[tag] = (at, type_, n, value)
    return out


# GPS behind a 30 KB MakerNote, as DJI writes it: the GPS IFD lies outside the first read.
FAR = Layout.of(_jpeg(gps=TRUTH, makernote_size=30_000))
NEAR = Layout.of(_jpeg(gps=TRUTH, makernote_size=2_000))
GPS_LAT, GPS_LON, MAKE = 0x0002, 0x0004, 0x010F
EXIF_POINTER, GPS_POINTER = 0x8769, 0x8825
SHORT, LONG, SRATIONAL, IFD_TYPE = 3, 4, 10, 13


def _lat_value(layout: Layout, *words: int, signed: bool = False) -> bytes:
    value_at = layout.entry(layout.gps_ifd, GPS_LAT)[3]
    data = Layout(
        layout.patch(value_at, struct.pack("<" + ("iI" if signed else "II") * 3, *words)),
        layout.base,
        layout.ifd0,
        layout.exif_ifd,
        layout.gps_ifd,
    )
    return data.patch_entry(layout.gps_ifd, GPS_LAT, type_=SRATIONAL) if signed else data.data


# name -> (file, what must happen): "gps" = the true position; "no gps: <text>" = a result
# without a position whose note holds <text>; anything else = a reason holding that text.
DAMAGED: dict[str, tuple[bytes, str]] = {
    # Offset loops: directories pointing at each other or themselves.
    "ifd0-next-links-to-itself": (
        NEAR.patch(NEAR.next_link(NEAR.ifd0), struct.pack("<I", NEAR.ifd0)),
        "gps",
    ),
    "exif-ifd-next-links-to-itself": (
        NEAR.patch(NEAR.next_link(NEAR.exif_ifd), struct.pack("<I", NEAR.exif_ifd)),
        "gps",
    ),
    "gps-pointer-to-ifd0": (
        NEAR.patch_entry(NEAR.ifd0, GPS_POINTER, value=NEAR.ifd0),
        "no gps: no GPS tags",
    ),
    "exif-pointer-to-ifd0": (NEAR.patch_entry(NEAR.ifd0, EXIF_POINTER, value=NEAR.ifd0), "gps"),
    "gps-pointer-equals-exif-pointer": (
        NEAR.patch_entry(NEAR.ifd0, GPS_POINTER, value=NEAR.exif_ifd),
        "no gps: no GPS tags",
    ),
    "ifd0-at-the-tiff-header": (NEAR.patch(4, struct.pack("<I", 0)), "outside the EXIF segment"),
    # Huge counts.
    "ifd-claims-65535-entries": (
        FAR.patch(FAR.gps_ifd, struct.pack("<H", 0xFFFF)),
        "claims 65535 entries",
    ),
    "latitude-claims-4g-values": (
        FAR.patch_entry(FAR.gps_ifd, GPS_LAT, count=0xFFFFFFFF),
        "outside the EXIF segment",
    ),
    "make-claims-2g-characters": (
        NEAR.patch_entry(NEAR.ifd0, MAKE, count=0x7FFFFFFF),
        "outside the EXIF segment",
    ),
    # A pointer that is not one inline offset once made the reader assert (an internal error).
    "gps-pointer-with-1000-values": (
        FAR.patch_entry(FAR.ifd0, GPS_POINTER, count=1000),
        "pointer tag 0x8825",
    ),
    "gps-pointer-of-type-ascii": (
        FAR.patch_entry(FAR.ifd0, GPS_POINTER, type_=2),
        "pointer tag 0x8825",
    ),
    "gps-pointer-as-short": (FAR.patch_entry(FAR.ifd0, GPS_POINTER, type_=SHORT), "gps"),
    "value-offset-past-the-segment": (
        FAR.patch_entry(FAR.gps_ifd, GPS_LAT, value=0xFFFFFFF0),
        "outside the EXIF segment",
    ),
    # GPS values that are not positions. Integers once read as whole degrees (52.0003 N).
    "latitude-stored-as-shorts": (
        NEAR.patch_entry(NEAR.gps_ifd, GPS_LAT, type_=SHORT),
        "no gps: not stored as rationals",
    ),
    "latitude-stored-as-an-ifd-type": (
        NEAR.patch_entry(NEAR.gps_ifd, GPS_LAT, type_=IFD_TYPE),
        "no gps: not stored as rationals",
    ),
    "latitude-with-one-value": (
        NEAR.patch_entry(NEAR.gps_ifd, GPS_LAT, count=1),
        "no gps: expected 3 rationals",
    ),
    "negative-signed-latitude": (
        _lat_value(NEAR, -52, 1, 0, 1, 0, 1, signed=True),
        "no gps: negative",
    ),
    "latitude-minutes-600": (_lat_value(NEAR, 10, 1, 600, 1, 0, 1), "no gps: above 60"),
    "latitude-91": (_lat_value(NEAR, 91, 1, 0, 1, 0, 1), "no gps: outside -90..90"),
    "latitude-0/0": (_lat_value(NEAR, 0, 0, 0, 0, 0, 0), "no gps: zero denominators"),
    "latitude-seconds-only-0/0": (_lat_value(NEAR, 52, 1, 22, 1, 5, 0), "no gps: zero denom"),
    "longitude-200": (_jpeg(gps=(52.0, 200.0, 10.0)), "no gps: outside -180..180"),
    "latitude-minus-91": (_jpeg(gps=(-91.0, 4.0, 10.0)), "no gps: outside -90..90"),
    "all-gps-0/0": (_jpeg(gps=TRUTH, gps_zero_denominator=True), "no gps: zero denominators"),
    # Segments that lie about their length.
    "app1-claims-more-than-the-file": (NEAR.data[: NEAR.base + 200], "claims"),
}


@pytest.mark.parametrize("name", list(DAMAGED))
def test_damaged_exif_gets_a_reason_or_a_safe_result(name: str) -> None:
    data, expected = DAMAGED[name]
    out = run_image(data)
    assert_bounded(out, data)
    assert_never_null_island(out)
    if expected == "gps":
        assert out.reason is None and out.position == TRUTH[:2]
    elif expected.startswith("no gps: "):
        assert out.reason is None and out.facts is not None, out.reason
        assert out.position == (None, None)
        assert out.facts.gps_note is not None and expected[8:] in out.facts.gps_note
        assert out.facts.camera == "DJI FC6310"  # the rest of the header still counts
    else:
        assert out.reason is not None and expected in out.reason, out.reason


def test_an_app1_claiming_more_than_a_file_listed_larger_than_it_is() -> None:
    cut = NEAR.data[: NEAR.base + 200]
    out = run_image(cut, listed=len(NEAR.data))  # the file shrank after it was listed
    assert out.reason is not None and "claims" in out.reason
    assert out.checks_error is not None and "truncated" in out.checks_error
    assert_bounded(out, cut)


def test_a_header_of_endless_segments_stops_after_the_segment_limit() -> None:
    filler = b"\xff\xef" + struct.pack(">H", SEGMENT_MAX) + bytes(SEGMENT_MAX - 2)
    data = b"\xff\xd8" + filler * (MAX_SEGMENTS + 6)  # 4.6 MB of APP15 and never an image
    out = run_image(data)
    assert out.reason is not None and f"after {MAX_SEGMENTS} segments" in out.reason
    assert out.checks_error is not None and f"after {MAX_SEGMENTS} segments" in out.checks_error
    assert_bounded(out, data)
    assert out.header_work.bytes_requested < len(data) // 10  # read-aheads, not the segments


def test_mutated_headers_never_escape_and_stay_bounded() -> None:
    """Seeded random damage to the real header: 400 files, every one a result or a reason."""
    rng = random.Random(20240514)
    kinds: set[str] = set()
    for _ in range(400):
        data = bytearray(REAL)
        for _ in range(rng.choice((1, 2, 4, 8))):
            at = rng.randrange(2, HEADER_END)
            data[at : at + 4] = rng.choice(
                (bytes([rng.randrange(256)]), b"\xff\xff\xff\xff", bytes(4), b"\x08\0\0\0")
            )
        out = run_image(bytes(data))
        assert_bounded(out, bytes(data))
        assert_never_null_island(out)
        lat, lon = out.position
        assert lat is None or (-90 <= lat <= 90 and lon is not None and -180 <= lon <= 180)
        kinds.add("reason" if out.reason else "result")
    assert kinds == {"reason", "result"}


# -- oversized files and decompression bombs ------------------------------------------------

GB = 1024**3


def test_a_file_listed_larger_than_any_photo_is_not_read_whole() -> None:
    header_only = _jpeg(gps=TRUTH)  # a real header; the server says the file is 3 GB
    whole = run_image(header_only, listed=3 * GB, whole_file=True)
    assert whole.checks_error is not None and "too large to check" in whole.checks_error
    assert whole.pixel_work.bytes_requested == 0  # refused from the listing alone
    previews = run_image(header_only, listed=3 * GB)  # no preview: it would need the whole file
    assert previews.checks_error is not None and "too large to check" in previews.checks_error
    assert previews.pixel_work.bytes_requested <= HEADER_WORK_BOUND
    assert whole.peak_bytes <= MEMORY_BOUND and previews.peak_bytes <= MEMORY_BOUND
    assert previews.facts is not None and previews.position == TRUTH[:2]  # GPS is still read


def test_a_preview_index_claiming_a_gigabyte_is_not_followed() -> None:
    data = bytearray(REAL)
    mp_header = bytes(data).index(b"MPF\x00") + 4
    count = struct.unpack_from("<H", data, mp_header + 8)[0]
    entries = mp_header + 8 + 2 + 12 * count + 4  # the MP entries follow the MP Index IFD
    # The preview's entry (the second, 16 bytes each): attribute, then size. Make it 1 GB, in
    # a file the server lists as 2 GB.
    data[entries + 16 + 4 : entries + 16 + 8] = struct.pack("<I", GB)
    out = run_image(bytes(data), listed=2 * GB)
    assert out.checks_error is not None and "too large to check" in out.checks_error
    assert out.pixel_work.bytes_requested <= HEADER_WORK_BOUND
    assert out.peak_bytes <= MEMORY_BOUND
    assert MAX_WHOLE_FILE_BYTES < GB


def declaring(width: int, height: int) -> bytes:
    """A tiny real JPEG whose frame header claims ``width`` x ``height`` pixels."""
    buf = io.BytesIO()
    Image.new("L", (16, 16), 128).save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    sof = bytes(data).index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


# Pillow warns between MAX_IMAGE_PIXELS and twice that, and raises above: both are refused.
BOMBS = {"warning-range": (10_000, 10_000), "error-range": (65_000, 65_000)}


def test_pillows_decompression_limit_is_on_everywhere_in_the_tool(tmp_path: Path) -> None:
    for module in pkgutil.walk_packages(qc_tool.__path__, "qc_tool."):
        if ".demo." not in module.name:
            importlib.import_module(module.name)
    app = qc_tool.create_app({"QC_PARSE_WORKERS": 0, "QC_CACHE_DIR": tmp_path})
    app.extensions["qc"].close()
    assert Image.MAX_IMAGE_PIXELS is not None
    assert Image.MAX_IMAGE_PIXELS == max_pixels() <= 100_000_000
    source = Path(qc_tool.__file__).parent
    for path in source.rglob("*.py"):
        text = path.read_text()
        assert "MAX_IMAGE_PIXELS =" not in text, path
        assert "LOAD_TRUNCATED_IMAGES = True" not in text, path


@pytest.mark.parametrize("name", list(BOMBS))
def test_a_small_file_declaring_a_huge_image_is_refused(name: str) -> None:
    width, height = BOMBS[name]
    data = declaring(width, height)
    assert len(data) < 1_000 and width * height > max_pixels()
    tracemalloc.start()
    try:
        with pytest.raises(ImageTooLarge, match="too large"):
            decode_gray(data, 1000)
        integrity = measure_integrity(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert integrity.problem == "too_large"
    assert peak <= MEMORY_BOUND  # the decoded image would be width * height bytes


# pyproject.toml makes DecompressionBombWarning an error in every test; the app runs without
# that. Each test below starts from Python's own state for the warning (not raised) and takes
# away one of decode_gray's two defences, so it fails when the other one is missing.


def test_the_bomb_warning_is_an_error_even_without_the_explicit_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(decode, "refuse_bombs", lambda width, height: None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with pytest.raises(ImageTooLarge, match="exceeds limit"):
            decode_gray(declaring(*BOMBS["warning-range"]), 1000)


def test_the_bomb_check_holds_when_another_thread_reset_the_warning_filters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # warnings filters are process-global: a concurrent catch_warnings can restore "ignore"
    # while this decode runs, which is what a decode that cannot set its filter sees. The
    # explicit size check does not depend on them.
    unfiltered = SimpleNamespace(
        catch_warnings=warnings.catch_warnings, simplefilter=lambda *a, **k: None
    )
    monkeypatch.setattr(decode, "warnings", unfiltered)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with pytest.raises(ImageTooLarge, match=r"10000x10000 = 100,000,000 pixels"):
            decode_gray(declaring(*BOMBS["warning-range"]), 1000)


def test_a_bomb_in_the_checks_pipeline_is_that_photos_reason() -> None:
    data = declaring(*BOMBS["warning-range"])
    out = run_image(data)
    assert out.checks_error is not None and "too large" in out.checks_error.lower()
    assert out.peak_bytes <= MEMORY_BOUND


# -- listings the server sends ----------------------------------------------------------------


def _list(total: int | None, limit: int) -> list[str]:
    """Run the listing task against a fake server: ``total`` names, or endless when None."""
    task = listing_task("/sites/S/F", limit)
    sent = 0
    replies: list[object] = []
    try:
        while True:
            ops = task.send(replies) if sent or replies else next(task)
            replies = []
            for op in ops:
                if isinstance(op, OpenDir):
                    replies.append(b"handle")
                    continue
                assert isinstance(op, ReadDir)
                if total is not None and sent >= total:
                    replies.append(None)  # end of directory
                    continue
                count = 100 if total is None else min(100, total - sent)
                batch = []
                for i in range(sent, sent + count):
                    attr = SFTPAttributes()
                    attr.filename = f"IMG_{i:06d}.JPG"
                    batch.append(attr)
                sent += count
                replies.append(batch)
    except StopIteration as stop:
        return [a.filename for a in stop.value]


def test_a_listing_at_the_cap_is_whole_and_one_past_it_is_an_error() -> None:
    assert len(_list(total=250, limit=250)) == 250
    with pytest.raises(RemoteError, match="/sites/S/F holds more than 249 entries"):
        _list(total=250, limit=249)


def test_a_directory_that_never_ends_stops_at_the_cap() -> None:
    with pytest.raises(RemoteError, match="QC_MAX_LISTING"):
        _list(total=None, limit=MAX_LISTING)


def test_the_default_cap_is_twenty_thousand_entries() -> None:
    assert MAX_LISTING == 20_000
    check_listing(MAX_LISTING, MAX_LISTING, "/x")
    with pytest.raises(RemoteError):
        check_listing(MAX_LISTING + 1, MAX_LISTING, "/x")
