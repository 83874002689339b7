"""A small JPEG of one photo for the browser, made from its embedded preview, and kept in memory.

The photo is read with the same read program as the checks (``read_pixels``): the MPF
preview's byte range when the camera wrote one (DJI does: a few hundred KB of a 5-10 MB
file), else the whole file. Pillow decodes it at a reduced scale (``Image.draft``), shrinks
it to the requested edge, turns it upright and re-encodes it; the browser never gets the
original.

Orientation comes from the main image's EXIF (IFD0 tag 0x0112): the appended preview has
no EXIF of its own, so ``ImageOps.exif_transpose`` on it would see nothing. The header
``read_pixels`` keeps holds 4 KB from the start of each segment it had to fetch, so IFD0,
which follows the EXIF segment's first 20 bytes, is nearly always there. (Not when the
EXIF segment starts in the last ~60 bytes of an earlier 4 KB window: then a whole-file read
is searched instead, and a preview is shown as stored.)

The EXIF thumbnail (IFD1) is not used: in DJI files it lies behind the 20-40 KB MakerNote,
outside the header bytes, and it is 160x120, smaller than the smallest size served here.

Bounds (issue 10): a preview is cached per *user* as well as server and file, so a user is
never served a preview of a photo that only another user could read. A file listed larger
than ``MAX_FILE_BYTES`` is not read at all: with no embedded preview it would be read whole,
and memory holds about five times its size until it is decoded (measured). At most
``DECODES`` previews are read and decoded at once per process; a request that finds no free
slot within ``WAIT_S`` gets ``PreviewsBusy`` (503, Retry-After) instead of holding a request
thread.
"""

from __future__ import annotations

import io
import struct
import threading
import warnings
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager

from cachetools import LRUCache
from PIL import Image

from qc_tool.domain.checks.decode import decode_heif, refuse_bombs
from qc_tool.domain.jpeg import header_segments
from qc_tool.domain.models import RemoteFile
from qc_tool.domain.pixel_reader import PixelSource
from qc_tool.domain.tiff import TYPE_SHORT, Tiff
from qc_tool.errors import BadRequest, PreviewsBusy, UnreadableImage
from qc_tool.services.ports import SiteConnection

SIZES = {"thumb": 320, "large": 800}  # the named sizes the web page asks for (preview.js)
MIN_EDGE, MAX_EDGE = 64, 2048
JPEG_QUALITY = 80
DEFAULT_CACHE_BYTES = 64 * 1024 * 1024  # about 600 previews of 800 px
MB = 1024 * 1024
# Drone JPEGs are 5-25 MB; past this a file is not read for a preview (see the module doc).
MAX_FILE_BYTES = 32 * MB
DECODES = 2  # previews read and decoded at once per process (the machine has 2 cores)
WAIT_S = 5.0  # how long a preview waits for a slot before it is answered 503
RETRY_AFTER_S = 2

TAG_ORIENTATION = 0x0112
_ORIENTATION_TAG = frozenset({TAG_ORIENTATION})
# EXIF orientation -> the transposition that makes the image upright (as ImageOps.exif_transpose).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def max_edge_for(size: str) -> int:
    """The longest edge in pixels for a named size ("thumb", "large")."""
    try:
        return SIZES[size]
    except KeyError:
        raise BadRequest(f"unknown preview size {size!r}; choose {' or '.join(SIZES)}") from None


class ByteBudgetLRU:
    """A least-recently-used map of bytes whose values together stay within ``budget`` bytes.

    cachetools' LRUCache does the sizing and eviction (``getsizeof=len``); it is not
    thread-safe and every request thread shares this one, so every operation holds the lock.
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._items: LRUCache[Hashable, bytes] = LRUCache(maxsize=budget, getsizeof=len)
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        return int(self._items.currsize)

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable) -> bytes | None:
        with self._lock:
            value: bytes | None = self._items.get(key)
            return value

    def put(self, key: Hashable, value: bytes) -> None:
        """Store ``value``, dropping the least recently used; a value over budget is not kept."""
        if len(value) > self.budget:
            return
        with self._lock:
            self._items[key] = value


class DecodeSlots:
    """At most ``slots`` holders at once; a caller waits up to ``wait_s`` for one.

    Counts what it let through (``peak``) and what it turned away (``refused``).
    """

    def __init__(self, slots: int = DECODES, wait_s: float = WAIT_S) -> None:
        self.slots = slots
        self.wait_s = wait_s
        self._free = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self.in_use = 0
        self.peak = 0
        self.refused = 0

    @contextmanager
    def hold(self) -> Iterator[None]:
        if not self._free.acquire(timeout=self.wait_s):
            with self._lock:
                self.refused += 1
            raise PreviewsBusy(
                f"{self.slots} previews are being made already; try again in a moment",
                retry_after=RETRY_AFTER_S,
            )
        with self._lock:
            self.in_use += 1
            self.peak = max(self.peak, self.in_use)
        try:
            yield
        finally:
            with self._lock:
                self.in_use -= 1
            self._free.release()


class PreviewService:
    """Previews of photos, cached by (server, user, site, path, size, mtime, edge)."""

    def __init__(
        self,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        *,
        decodes: int = DECODES,
        wait_s: float = WAIT_S,
        max_file_bytes: int = MAX_FILE_BYTES,
    ) -> None:
        self.cache = ByteBudgetLRU(cache_bytes)
        self.slots = DecodeSlots(decodes, wait_s)
        self.max_file_bytes = max_file_bytes

    def preview(
        self,
        conn: SiteConnection,
        server_id: str,
        site: str,
        file: RemoteFile,
        max_edge: int = SIZES["large"],
        *,
        user: str,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> bytes:
        """A JPEG of ``file`` no larger than ``max_edge`` on its longest side, upright.

        ``conn`` is ``user``'s own connection: the preview is read as that user, and only
        that user is ever served it from the cache (another user may not be allowed to
        read the photo). Raises UnreadableImage when the file holds no image that can be
        decoded or is too large to preview, PreviewsBusy when no slot frees up in time, and
        whatever ``conn`` raises when the server cannot be read (RemoteUnavailable, ...).
        A changed file has a new size or mtime, so it never gets a stale preview.
        """
        if not user:
            raise ValueError("a preview is read and cached as a named user")
        if file.size > self.max_file_bytes:
            raise UnreadableImage(
                f"{file.path}: too large to preview ({file.size / MB:.0f} MB; previews are made"
                f" from files up to {self.max_file_bytes // MB} MB)"
            )
        key = (server_id, user, site, file.path, file.size, file.mtime, max_edge)
        return self.preview_of(key, lambda: read_source(conn, site, file, cancelled), max_edge)

    def preview_of(
        self, key: Hashable, read: Callable[[], PixelSource], max_edge: int = SIZES["large"]
    ) -> bytes:
        """The cached preview under ``key``, else ``read()``'s pixels decoded and shrunk.

        ``key`` must name whoever may see it (the user, or an upload only its owner reaches)
        and change when the photo does; ``read`` must refuse a file over ``max_file_bytes``.
        The read and the decode hold one of the decode slots together.
        """
        if not MIN_EDGE <= max_edge <= MAX_EDGE:
            raise BadRequest(f"a preview is {MIN_EDGE} to {MAX_EDGE} pixels wide, not {max_edge}")
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        with self.slots.hold():  # the bytes read are held until decoded: bound both together
            data = render_preview(read(), max_edge)
        self.cache.put(key, data)
        return data


def read_source(
    conn: SiteConnection, site: str, file: RemoteFile, cancelled: Callable[[], bool]
) -> PixelSource:
    """The photo's embedded preview (or whole file) as ``read_pixels`` reads it.

    A photo without a preview is read whole: the checks' band of its top rows is no picture.
    """
    results = _read(conn, site, file, cancelled, whole_file=False)
    if results and results[0][0] is not None and results[0][0].source == "band":
        results = _read(conn, site, file, cancelled, whole_file=True)
    if not results:
        raise UnreadableImage(f"{file.path}: the read was cancelled")
    source, error = results[0]
    if source is None:
        raise UnreadableImage(f"{file.path}: no image to show ({error})")
    if source.not_checked is not None:  # a DNG without a JPEG preview, say
        raise UnreadableImage(f"{file.path}: no image to show ({source.not_checked})")
    return source


def _read(
    conn: SiteConnection,
    site: str,
    file: RemoteFile,
    cancelled: Callable[[], bool],
    *,
    whole_file: bool,
) -> list[tuple[PixelSource | None, str | None]]:
    results: list[tuple[PixelSource | None, str | None]] = []
    conn.read_pixels(
        site,
        [file],
        lambda _f, source, error: results.append((source, error)),
        whole_file=whole_file,
        cancelled=cancelled,
    )
    return results


def render_preview(source: PixelSource, max_edge: int) -> bytes:
    """Decode at a reduced scale, shrink to ``max_edge``, turn upright, re-encode as JPEG."""
    orientation = header_orientation(source.header)
    if orientation is None and source.source == "full":
        orientation = header_orientation(source.data)  # the whole file: its EXIF is all there
    try:
        small = decode_small(source.data, max_edge)
        small.thumbnail((max_edge, max_edge))
        transpose = _UPRIGHT.get(orientation or 1)
        if transpose is not None:
            small = small.transpose(transpose)
        out = io.BytesIO()
        small.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    except (
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as exc:  # ImageTooLarge is a ValueError
        # Pillow reports a bad or truncated image with any of these.
        what = "embedded preview" if source.source == "preview" else "image"
        raise UnreadableImage(f"the {what} cannot be decoded: {exc}") from exc
    return out.getvalue()


def decode_small(data: bytes, max_edge: int) -> Image.Image:
    """Decode a JPEG at the smallest scale that still covers ``max_edge`` on both sides.

    ``Image.draft`` makes libjpeg scale by 1/2, 1/4 or 1/8 inside the IDCT: a 6000x4000
    photo asked for at 800 px is decoded as 1500x1000 (4.5 MB of RGB, not 72 MB). Raises
    what Pillow raises for a bad image; the caller turns it into UnreadableImage.
    """
    # Pillow's bomb warning is an error here, and the size is checked explicitly too:
    # warning filters are process-wide, and previews decode in request threads.
    if data[4:8] == b"ftyp":  # a HEIC read whole: libheif decodes it at full size
        return decode_heif(data).convert("RGB")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(data)) as image:
            refuse_bombs(*image.size)
            image.draft("RGB", (max_edge, max_edge))
            return image.convert("RGB")


def header_orientation(header: bytes) -> int | None:
    """EXIF Orientation (1-8) from IFD0 of a JPEG's header bytes; None when not there.

    For untrusted bytes: bounded, never raises. Zero-filled (unread) bytes read as no entry.
    The header readers' TIFF reader, not Pillow's ``Image.Exif``: that would parse every IFD0
    entry (and IFD1) of bytes that are partly zero-filled, and raise its own errors on bad ones.
    """
    tiff_body = _exif_tiff(header)
    if tiff_body is None:
        return None
    try:
        tiff, ifd0 = Tiff.at_hand(tiff_body, "EXIF")
        for entry in tiff.ifd_at_hand(ifd0, "IFD0", _ORIENTATION_TAG):
            if entry.type == TYPE_SHORT and entry.count >= 1:
                (value,) = struct.unpack_from(tiff.order + "H", tiff.value(entry))
                return int(value) if 1 <= value <= 8 else None
    except UnreadableImage:  # a count or offset pointing past the bytes there are
        return None
    return None


def _exif_tiff(header: bytes) -> bytes | None:
    """The TIFF body of the first EXIF APP1 segment (as far as the header holds it)."""
    for _pos, marker, payload in header_segments(header):
        if marker == 0xE1 and payload[:6] == b"Exif\x00\x00":
            return payload[6:]
    return None
