"""Photo previews: made from the embedded preview, upright, small, cached, clear when impossible."""

from __future__ import annotations

import functools
import io
import random
import struct
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageOps
from qc_tool.demo.imagegen import ImageSpec, build_jpeg, encode_body
from qc_tool.demo.segments import strip_app_segments
from qc_tool.domain.models import RemoteFile
from qc_tool.domain.pixel_reader import PixelSource, read_pixels
from qc_tool.domain.sparse import run_program
from qc_tool.errors import BadRequest, PreviewsBusy, QCError, UnreadableImage
from qc_tool.services.previews import (
    MAX_FILE_BYTES,
    ByteBudgetLRU,
    PreviewService,
    decode_small,
    header_orientation,
    max_edge_for,
    render_preview,
)
from qc_tool.web.errors import status_of
from waiting import wait_until

SITE = "S1"
SERVER = "sftp://example:22/sites"
USER = "tech"
RED = (220, 30, 30)


def marked_jpeg(width: int, height: int) -> bytes:
    """Grey, with a red square in the top-left corner: where it ends up shows the rotation."""
    pixels = np.full((height, width, 3), 128, dtype=np.uint8)
    pixels[: height // 5, : height // 5] = RED
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=90)
    return out.getvalue()


def set_orientation(data: bytes, value: int) -> bytes:
    """The file with IFD0's Orientation entry (which imagegen writes as 1) set to ``value``."""
    start = data.index(b"Exif\x00\x00") + 6
    order = "<" if data[start : start + 2] == b"II" else ">"
    (ifd0,) = struct.unpack_from(order + "I", data, start + 4)
    (count,) = struct.unpack_from(order + "H", data, start + ifd0)
    for i in range(count):
        at = start + ifd0 + 2 + 12 * i
        if struct.unpack_from(order + "H", data, at)[0] == 0x0112:
            out = bytearray(data)
            struct.pack_into(order + "H", out, at + 8, value)
            return bytes(out)
    raise AssertionError("no Orientation entry")


@functools.cache
def scene_body(width: int, height: int) -> bytes:
    return encode_body(width, height, seed=4)


def photo(
    orientation: int = 1,
    preview: tuple[int, int] | None = (480, 360),
    body: tuple[int, int] = (1600, 1200),
    **spec: object,
) -> bytes:
    """A DJI-like file: a scene as the main image and a marked MPF preview (or a marked body)."""
    full = ImageSpec(
        taken=datetime(2024, 5, 14, 9, 30),
        gps=(52.37, 4.89, 40.0),
        preview=preview,
        **spec,  # type: ignore[arg-type]
    )
    if preview is None:
        main = strip_app_segments(marked_jpeg(*body))
        data = build_jpeg(full, main)
    else:
        data = build_jpeg(full, scene_body(*body), preview_jpeg=marked_jpeg(*preview))
    data = set_orientation(data, orientation)
    assert Image.open(io.BytesIO(data)).getexif()[0x0112] == orientation  # Pillow agrees
    return data


class MemoryConnection:
    """A SiteConnection over files in memory, running the real read program; counts its reads."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.bytes_read = 0
        self.calls = 0

    def remote(self, path: str, mtime: int = 1) -> RemoteFile:
        return RemoteFile(path, len(self.files[path]), mtime)

    def read_pixels(
        self,
        site: str,
        files: Iterable[RemoteFile],
        on_result: Callable[[RemoteFile, PixelSource | None, str | None], None],
        *,
        whole_file: bool = False,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> None:
        self.calls += 1
        for f in files:
            data = self.files[f.path]

            def read_at(offset: int, length: int, data: bytes = data) -> bytes:
                self.bytes_read += len(data[offset : offset + length])
                return data[offset : offset + length]

            try:
                source = run_program(read_pixels(f.size, whole_file=whole_file), read_at)
            except QCError as exc:
                on_result(f, None, exc.message)
            else:
                on_result(f, source, None)


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    return image.convert("RGB")


def red_corner(image: Image.Image) -> str:
    """Which corner holds the red mark: 'top-left', 'top-right', 'bottom-left', 'bottom-right'."""
    w, h = image.size
    corners = {
        "top-left": (w // 20, h // 20),
        "top-right": (w - 1 - w // 20, h // 20),
        "bottom-left": (w // 20, h - 1 - h // 20),
        "bottom-right": (w - 1 - w // 20, h - 1 - h // 20),
    }
    red = [name for name, xy in corners.items() if _is_red(image.getpixel(xy))]
    assert len(red) == 1, red
    return red[0]


def _is_red(pixel: object) -> bool:
    assert isinstance(pixel, tuple)
    r, g, b = pixel[:3]
    return bool(r > 180 and g < 90 and b < 90)


def test_a_preview_comes_from_the_embedded_preview_and_fits_the_edge() -> None:
    conn = MemoryConnection({"Tower/DJI_0001.JPG": photo()})
    file = conn.remote("Tower/DJI_0001.JPG")
    thumb = decoded(
        PreviewService().preview(conn, SERVER, SITE, file, max_edge_for("thumb"), user=USER)
    )
    assert thumb.size == (320, 240) and red_corner(thumb) == "top-left"
    assert conn.bytes_read < 0.25 * file.size, "the preview's range, not the whole file"
    # Never larger than the source: a 480x360 preview asked for at 800 stays 480x360.
    big = decoded(
        PreviewService().preview(conn, SERVER, SITE, file, max_edge_for("large"), user=USER)
    )
    assert big.size == (480, 360)


@pytest.mark.parametrize(
    ("orientation", "corner"),
    [(1, "top-left"), (3, "bottom-right"), (6, "top-right"), (8, "bottom-left"), (2, "top-right")],
)
def test_the_preview_is_turned_upright_by_the_main_images_orientation(
    orientation: int, corner: str
) -> None:
    conn = MemoryConnection({"T/a.jpg": photo(orientation)})
    out = decoded(
        PreviewService().preview(conn, SERVER, SITE, conn.remote("T/a.jpg"), 320, user=USER)
    )
    assert out.size == ((240, 320) if orientation in (6, 8) else (320, 240))
    assert red_corner(out) == corner


@pytest.mark.parametrize("orientation", [6, 8])
def test_a_file_without_preview_is_shrunk_and_turned_as_pillow_turns_it(orientation: int) -> None:
    data = photo(orientation, preview=None, body=(800, 600))
    conn = MemoryConnection({"T/a.jpg": data})
    out = decoded(
        PreviewService().preview(conn, SERVER, SITE, conn.remote("T/a.jpg"), 320, user=USER)
    )
    reference = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    reference.thumbnail((320, 320))
    assert out.size == reference.size == (240, 320)
    assert red_corner(out) == red_corner(reference)
    assert conn.bytes_read >= len(data)  # no preview: the whole file was read


def test_the_header_of_a_preview_read_holds_the_orientation() -> None:
    for extra in (
        {"byte_order": "II"},
        {"byte_order": "MM", "makernote_size": 30_000},
        {"jfif_icc": 50_000},
    ):  # a 50 KB ICC profile before the EXIF segment
        data = photo(8, **extra)
        source = run_program(read_pixels(len(data)), lambda o, n, d=data: d[o : o + n])
        assert source.source == "preview" and header_orientation(source.header) == 8, extra


def test_orientation_is_found_in_the_whole_file_when_the_header_lacks_it() -> None:
    # The EXIF segment starts just before the end of the first 4 KB read: the reader fetched
    # its first 32 bytes only, so IFD0's Orientation entry is not among the header bytes.
    data = photo(6, preview=None, body=(800, 600), jfif_icc=4040)
    # read_source reads a photo without a preview whole (the checks read only its top rows).
    source = run_program(read_pixels(len(data), whole_file=True), lambda o, n: data[o : o + n])
    assert source.source == "full" and header_orientation(source.header) is None
    assert header_orientation(data) == 6
    out = decoded(render_preview(source, 320))
    assert out.size == (240, 320) and red_corner(out) == "top-right"


def test_header_orientation_never_raises_on_damaged_bytes() -> None:
    data = photo(6)
    rng = random.Random(5)
    header = data[:4096]
    for cut in range(len(header)):
        assert header_orientation(header[:cut]) in (None, 6)
    for _ in range(500):
        damaged = bytearray(header)
        for _ in range(rng.randint(1, 20)):
            damaged[rng.randrange(2, 200)] = rng.randrange(256)
        assert header_orientation(bytes(damaged)) in (None, *range(1, 9))
    assert header_orientation(b"") is None and header_orientation(bytes(4096)) is None
    assert header_orientation(rng.randbytes(4096)) is None


def test_a_repeat_is_served_from_the_cache_and_a_changed_file_is_read_again() -> None:
    conn = MemoryConnection({"T/a.jpg": photo()})
    service = PreviewService()
    first = service.preview(conn, SERVER, SITE, conn.remote("T/a.jpg"), 320, user=USER)
    assert service.preview(conn, SERVER, SITE, conn.remote("T/a.jpg"), 320, user=USER) == first
    assert conn.calls == 1
    service.preview(conn, SERVER, SITE, conn.remote("T/a.jpg"), 160, user=USER)  # another size
    service.preview(
        conn, SERVER, SITE, conn.remote("T/a.jpg", mtime=2), 320, user=USER
    )  # re-uploaded
    service.preview(conn, "sftp://other:22/sites", SITE, conn.remote("T/a.jpg"), 320, user=USER)
    assert conn.calls == 4 and len(service.cache) == 4


def test_the_cache_keeps_within_its_budget_dropping_the_least_recently_used() -> None:
    cache = ByteBudgetLRU(100)
    for key in "abc":
        cache.put(key, bytes(30))
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("d", bytes(30))  # 120 > 100: b, the least recent, goes
    assert cache.get("b") is None and all(cache.get(k) for k in "acd")
    assert cache.used == 90
    cache.put("e", bytes(101))  # larger than the whole budget: not kept, nothing dropped
    assert cache.get("e") is None and cache.used == 90
    cache.put("a", bytes(70))  # replacing a value frees the old one first
    assert cache.used <= 100 and cache.get("a") == bytes(70)


def test_the_cache_is_safe_to_share_between_threads() -> None:
    cache = ByteBudgetLRU(10_000)

    def work(n: int) -> None:
        rng = random.Random(n)
        for _ in range(2000):
            key = rng.randrange(100)
            if rng.random() < 0.5:
                cache.put(key, bytes(rng.randrange(1, 500)))
            else:
                cache.get(key)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = sum(len(v) for k in range(100) if (v := cache.get(k)) is not None)
    assert total == cache.used <= 10_000


def test_a_file_that_is_not_a_jpeg_is_a_clear_error() -> None:
    png = io.BytesIO()
    Image.new("RGB", (40, 30)).save(png, "PNG")
    conn = MemoryConnection({"T/a.JPG": png.getvalue(), "T/empty.JPG": b""})
    service = PreviewService()
    with pytest.raises(UnreadableImage, match=r"T/a.JPG: no image to show \(not a JPEG"):
        service.preview(conn, SERVER, SITE, conn.remote("T/a.JPG"), 320, user=USER)
    with pytest.raises(UnreadableImage, match=r"empty file"):
        service.preview(conn, SERVER, SITE, conn.remote("T/empty.JPG"), 320, user=USER)
    assert len(service.cache) == 0


def test_a_preview_that_does_not_decode_is_a_clear_error() -> None:
    data = photo()
    preview = marked_jpeg(480, 360)
    start = data.rindex(preview)
    broken = data[: start + 2] + bytes(len(preview) - 2)  # SOI, then zeros where the image was
    conn = MemoryConnection({"T/a.jpg": broken})
    with pytest.raises(UnreadableImage, match="the embedded preview cannot be decoded"):
        PreviewService().preview(conn, SERVER, SITE, conn.remote("T/a.jpg"), 320, user=USER)


def test_sizes_are_checked() -> None:
    conn = MemoryConnection({"T/a.jpg": photo()})
    with pytest.raises(BadRequest, match="64 to 2048"):
        PreviewService().preview(conn, SERVER, SITE, conn.remote("T/a.jpg"), 10_000, user=USER)
    with pytest.raises(BadRequest, match="unknown preview size 'huge'"):
        max_edge_for("huge")
    assert conn.calls == 0


# -- bounds: decode scale, bytes read, previews at once (issue 10, item 11) ------------------


@functools.cache
def large_jpeg() -> bytes:
    """A 6000x4000 JPEG (24 MP) with no embedded preview: only the whole file can be shown."""
    gradient = np.linspace(0, 255, 6000, dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(np.tile(gradient, (4000, 1))).convert("RGB").save(out, "JPEG", quality=70)
    return out.getvalue()


def test_a_large_photo_is_decoded_at_a_reduced_scale() -> None:
    data = large_jpeg()
    # 1/4 scale for 800 px (1/8 would give 750 px, less than asked), 1/8 for 320 px: never
    # the 72 MB of RGB a full decode of 6000x4000 would take.
    assert decode_small(data, 800).size == (1500, 1000)
    assert decode_small(data, 320).size == (750, 500)
    conn = MemoryConnection({"T/big.jpg": data})
    out = decoded(PreviewService().preview(conn, SERVER, SITE, conn.remote("T/big.jpg"), user=USER))
    assert out.size == (800, 533)


def test_a_file_listed_past_the_size_cap_is_not_read_for_a_preview() -> None:
    data = photo(preview=None, body=(800, 600))
    conn = MemoryConnection({"T/a.jpg": data})
    service = PreviewService(max_file_bytes=len(data) - 1)
    with pytest.raises(UnreadableImage, match=r"T/a.jpg: too large to preview"):
        service.preview(conn, SERVER, SITE, conn.remote("T/a.jpg"), 320, user=USER)
    assert conn.calls == 0 and conn.bytes_read == 0
    assert MAX_FILE_BYTES == 32 * 1024 * 1024  # the default, as docs/exports.md says


class HeldReads(MemoryConnection):
    """Each read waits for ``go``; counts the reads under way and the most at once."""

    def __init__(self, files: dict[str, bytes]) -> None:
        super().__init__(files)
        self.go = threading.Event()
        self.reading = 0
        self.most = 0
        self._lock = threading.Lock()

    def read_pixels(self, *args: Any, **kwargs: Any) -> None:
        with self._lock:
            self.reading += 1
            self.most = max(self.most, self.reading)
        try:
            assert self.go.wait(timeout=30), "never let go"
            super().read_pixels(*args, **kwargs)
        finally:
            with self._lock:
                self.reading -= 1


def test_at_most_the_cap_of_previews_are_made_at_once_and_the_rest_are_told_to_retry() -> None:
    conn = HeldReads({"T/a.jpg": photo()})
    service = PreviewService(decodes=2, wait_s=0.05)
    outcomes: list[object] = []

    def ask(user: str) -> None:
        try:
            outcomes.append(service.preview(conn, SERVER, SITE, conn.remote("T/a.jpg"), user=user))
        except PreviewsBusy as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=ask, args=(f"user{n}",)) for n in range(6)]
    for t in threads:
        t.start()
    # Two read (and wait there); the other four find no slot and are turned away.
    wait_until(
        lambda: conn.reading == 2 and service.slots.refused == 4,
        message="two previews reading and four refused",
    )
    conn.go.set()
    for t in threads:
        t.join()
    busy = [o for o in outcomes if isinstance(o, PreviewsBusy)]
    assert len(busy) == 4 and all(status_of(b) == 503 and b.retry_after > 0 for b in busy)
    assert sum(isinstance(o, bytes) for o in outcomes) == 2
    assert conn.most == 2 and service.slots.peak == 2 and service.slots.in_use == 0
    # A slot is free again once a preview is made: the next request is served.
    assert service.preview(conn, SERVER, SITE, conn.remote("T/a.jpg"), user="user9")
