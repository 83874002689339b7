"""find_mpf_preview: locate a DJI-style embedded preview from header bytes, never raising."""

from __future__ import annotations

import io
import random
import struct

import pytest
from PIL import Image
from qc_tool.domain.mpf import find_mpf_preview

from .jpegs import gradient_jpeg, with_mpf


@pytest.fixture(scope="module")
def primary() -> bytes:
    return gradient_jpeg(640, 480)


@pytest.mark.parametrize("order", ["<", ">"])
def test_the_largest_preview_is_found_in_either_byte_order(primary: bytes, order: str) -> None:
    small, large = gradient_jpeg(160, 120), gradient_jpeg(320, 240)
    data, _ = with_mpf(primary, [small, large], order)
    found = find_mpf_preview(data[:4096], len(data))
    assert found is not None
    offset, length = found
    assert data[offset : offset + length] == large
    assert Image.open(io.BytesIO(data[offset : offset + length])).size == (320, 240)


def test_an_mpo_written_by_pillow_is_read() -> None:
    """An independent writer of the format: Pillow's MPO plugin."""
    out = io.BytesIO()
    Image.new("RGB", (400, 300), "red").save(
        out, "MPO", save_all=True, append_images=[Image.new("RGB", (200, 150), "blue")]
    )
    data = out.getvalue()
    found = find_mpf_preview(data[:2048], len(data))
    assert found is not None
    offset, length = found
    preview = Image.open(io.BytesIO(data[offset : offset + length]))
    assert preview.size == (200, 150)


def test_a_plain_jpeg_has_no_preview(primary: bytes) -> None:
    assert find_mpf_preview(primary) is None


def test_an_entry_pointing_past_the_end_of_the_file_is_ignored(primary: bytes) -> None:
    data, _ = with_mpf(primary, [gradient_jpeg(160, 120)])
    assert find_mpf_preview(data[:4096], len(data)) is not None
    assert find_mpf_preview(data[:4096], len(data) - 1) is None


def test_mpf_after_the_start_of_scan_is_not_looked_for(primary: bytes) -> None:
    sos = primary.index(b"\xff\xda")
    data, _ = with_mpf(primary, [gradient_jpeg(160, 120)])
    moved = primary[:sos] + b"\xff\xda\x00\x02" + data[2:]
    assert find_mpf_preview(moved) is None


def test_fill_bytes_before_a_marker_are_skipped(primary: bytes) -> None:
    data, _ = with_mpf(primary, [gradient_jpeg(160, 120)])
    padded = data[:2] + b"\xff\xff" + data[2:]
    found = find_mpf_preview(padded)
    assert found is not None
    assert padded[found[0] : found[0] + 2] == b"\xff\xd8"


def test_every_truncation_of_a_header_returns_none_or_the_right_answer(primary: bytes) -> None:
    data, _ = with_mpf(primary, [gradient_jpeg(160, 120)])
    right = find_mpf_preview(data)
    assert right is not None
    for end in range(200):
        assert find_mpf_preview(data[:end]) in (None, right)


def test_garbage_never_raises() -> None:
    rng = random.Random(42)
    header = bytearray(with_mpf(gradient_jpeg(64, 48), [gradient_jpeg(32, 24)])[0][:300])
    for _ in range(2000):
        mutated = bytearray(header)
        for _ in range(rng.randint(1, 8)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        result = find_mpf_preview(bytes(mutated))
        assert result is None or (result[0] >= 0 and result[1] > 0)
    for _ in range(500):
        noise = bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
        assert find_mpf_preview(b"\xff\xd8" + noise) is None


def test_absurd_counts_are_bounded() -> None:
    """An IFD claiming 65535 entries, and an MPEntry claiming 2**32 bytes, end quickly."""
    mp = b"MM\x00*" + struct.pack(">I", 8) + struct.pack(">H", 0xFFFF)
    mp += struct.pack(">HHII", 0xB002, 7, 0xFFFFFFF0, 8) * 4
    app2 = b"\xff\xe2" + struct.pack(">H", 2 + 4 + len(mp)) + b"MPF\x00" + mp
    assert find_mpf_preview(b"\xff\xd8" + app2 + b"\xff\xda\x00\x02") is None
