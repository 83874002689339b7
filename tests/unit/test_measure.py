"""The worker's measures of one photo: what the integrity check sees in a whole file."""

from __future__ import annotations

from datetime import datetime

from qc_tool.demo.imagegen import ImageSpec, build_jpeg, encode_body
from qc_tool.domain.checks.settings import CheckSettings
from qc_tool.domain.mpf import find_mpf_preview
from qc_tool.domain.pixel_reader import PixelSource
from qc_tool.services.checks.measure import measure


def _photo() -> bytes:
    spec = ImageSpec(taken=datetime(2024, 5, 1, 10, 0), preview=(320, 240))
    return build_jpeg(spec, encode_body(640, 480, seed=3))


def _full(data: bytes) -> PixelSource:
    return PixelSource(data, "full", data, len(data), (640, 480))


def test_a_whole_photo_is_complete() -> None:
    data = _photo()
    integrity = measure(len(data), _full(data), CheckSettings()).integrity
    assert integrity is not None and integrity.problem is None


def test_a_file_cut_right_after_its_main_image_is_truncated() -> None:
    # The cut file ends with the main image's end marker and decodes: only the MPF index,
    # which still says where the preview was, shows that bytes are missing.
    data = _photo()
    preview = find_mpf_preview(data)
    assert preview is not None
    cut = data[: preview[0]]
    assert cut.endswith(b"\xff\xd9")
    integrity = measure(len(cut), _full(cut), CheckSettings()).integrity
    assert integrity is not None and integrity.problem == "truncated"
    assert "past the end of the file" in integrity.detail
