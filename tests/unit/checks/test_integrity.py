"""check_integrity / measure_integrity and the shared decoder: truncation, corruption, bombs."""

from __future__ import annotations

import struct

import pytest
from PIL import Image, ImageFile
from qc_tool.domain.checks.decode import ImageTooLarge, TruncatedImage, decode_gray
from qc_tool.domain.checks.integrity import check_integrity, has_eoi, measure_integrity

from .jpegs import gradient_jpeg, with_mpf
from .scenes import shot


@pytest.fixture(scope="module")
def photo() -> bytes:
    return shot(11, size=(640, 480))


def _with_size(jpeg: bytes, width: int, height: int) -> bytes:
    """The same JPEG with the frame header (SOF0) claiming another size."""
    sof = jpeg.index(b"\xff\xc0")
    return jpeg[: sof + 5] + struct.pack(">HH", height, width) + jpeg[sof + 9 :]


def test_a_complete_file_passes_and_reports_its_size(photo: bytes) -> None:
    outcome = check_integrity(photo)
    assert outcome.ok
    assert outcome.value == "640x480"
    assert measure_integrity(photo) == measure_integrity(photo)  # pure: same bytes, same answer
    m = measure_integrity(photo)
    assert (m.width, m.height, m.has_eoi, m.problem) == (640, 480, True, None)


@pytest.mark.parametrize("kept", [0.01, 0.2, 0.5, 0.8, 0.97])
def test_a_file_cut_anywhere_is_reported_truncated(photo: bytes, kept: float) -> None:
    outcome = check_integrity(photo[: int(len(photo) * kept)])
    assert not outcome.ok
    assert outcome.value == "truncated"
    assert outcome.message.startswith("Truncated file")


def test_a_file_missing_only_its_end_marker_fails(photo: bytes) -> None:
    m = measure_integrity(photo[:-2])
    assert not m.has_eoi
    assert m.problem in ("truncated", "no_eoi")


def test_zero_padding_after_the_end_marker_is_accepted(photo: bytes) -> None:
    assert has_eoi(photo + b"\x00" * 64)
    assert check_integrity(photo + b"\x00" * 64).ok


def test_a_cut_preview_trailer_is_caught_though_the_main_image_decodes() -> None:
    data, _ = with_mpf(gradient_jpeg(320, 240), [gradient_jpeg(160, 120)])
    assert check_integrity(data).ok
    cut = data[:-100]  # the main image is intact, the preview after it is not
    m = measure_integrity(cut)
    assert (m.width, m.height, m.problem) == (320, 240, "no_eoi")
    assert "end-of-image marker" in check_integrity(cut).message


def test_truncation_is_caught_even_when_pillow_is_told_to_load_truncated_images(
    photo: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    assert not check_integrity(photo[: len(photo) // 2]).ok


@pytest.mark.parametrize(
    "data",
    [b"", b"not a jpeg at all", b"\xff\xd8\xff\xe0garbage", b"\x89PNG\r\n\x1a\n" + bytes(64)],
)
def test_bytes_that_are_not_a_jpeg_are_unreadable(data: bytes) -> None:
    outcome = check_integrity(data)
    assert not outcome.ok
    assert outcome.value in ("corrupt", "truncated")


def test_a_png_is_not_accepted_as_a_photo() -> None:
    import io

    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "PNG")
    outcome = check_integrity(out.getvalue())
    assert (outcome.ok, outcome.value) == (False, "corrupt")
    assert outcome.message == "Unreadable image: Not a readable JPEG image"


def test_broken_huffman_tables_are_corrupt(photo: bytes) -> None:
    dht = photo.index(b"\xff\xc4")
    broken = photo[: dht + 5] + bytes(40) + photo[dht + 45 :]
    assert check_integrity(broken).value in ("corrupt", "truncated")


def test_a_decompression_bomb_is_refused_before_decoding(photo: bytes) -> None:
    limit = Image.MAX_IMAGE_PIXELS
    assert limit is not None
    side = int((limit * 1.1) ** 0.5)  # above the limit: Pillow only warns; we refuse
    outcome = check_integrity(_with_size(photo, side, side))
    assert (outcome.ok, outcome.value) == (False, "too_large")
    with pytest.raises(ImageTooLarge):
        decode_gray(_with_size(photo, 65000, 65000), 1000)  # Pillow's own hard error


def test_decode_gray_scales_in_the_decoder_and_keeps_the_source_size() -> None:
    gray = decode_gray(gradient_jpeg(4000, 3000), 1000)
    assert gray.pixels.shape == (750, 1000)
    assert (gray.width, gray.height, gray.scale) == (4000, 3000, 4.0)
    small = decode_gray(gradient_jpeg(800, 600), 1000)
    assert small.pixels.shape == (600, 800)  # never upscaled


def test_decode_gray_resizes_when_the_decoder_cannot_reach_the_target() -> None:
    gray = decode_gray(gradient_jpeg(1920, 1440), 1000)  # 1/2 would give 960: too small
    assert gray.pixels.shape == (750, 1000)


def test_a_truncated_image_raises_a_typed_error(photo: bytes) -> None:
    with pytest.raises(TruncatedImage, match="truncated"):
        decode_gray(photo[:5000], 1000)
