"""Photos without an MPF preview are judged from a band of their top rows, the EXIF thumbnail
and the file's tail, never read whole (issue 14, item 1). Bytes are counted by the read
program (``PixelSource.bytes_read``, what the check pass's stats add up): deterministic."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter
from qc_tool.demo.imagegen import ImageSpec, build_jpeg, thumbnail_of
from qc_tool.demo.scene import render_scene
from qc_tool.demo.segments import strip_app_segments
from qc_tool.demo.sites import SiteLayout, generate_site, make_body
from qc_tool.domain.checks.band import FOCUS_MAX_PIXELS, decode_band, enough_texture
from qc_tool.domain.checks.duplicates import DuplicateCandidate, find_duplicates
from qc_tool.domain.checks.settings import CheckSettings
from qc_tool.domain.pixel_reader import (
    BAND_LONG_SIDE,
    BAND_SETTINGS,
    BAND_STEPS,
    BAND_SURE,
    PixelSource,
    read_pixels,
)
from qc_tool.domain.sparse import run_program
from qc_tool.services.checks.measure import Measured, measure

SIZE = (1600, 1200)


def _body(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=92, subsampling=1)
    return strip_app_segments(out.getvalue())  # after SOI, as build_jpeg wants


def _photo(pixels: np.ndarray, *, thumbnail: bool = True) -> bytes:
    body = _body(pixels)
    spec = ImageSpec(taken=datetime(2024, 5, 14, 9, 30), gps=(52.37, 4.89, 40.0))
    if not thumbnail:
        return build_jpeg(ImageSpec(taken=spec.taken, gps=spec.gps, thumbnail=False), body)
    return build_jpeg(spec, body, thumbnail_jpeg=thumbnail_of(body))


SCENE = render_scene(*SIZE, seed=7)
PHOTO = _photo(SCENE)


def _sky_top(scene: np.ndarray) -> np.ndarray:
    """The scene under a flat sky over its top 60 %: nothing to judge focus on up there."""
    out = scene.copy()
    out[: int(SIZE[1] * 0.6)] = (120, 160, 210)
    return out


def _read(data: bytes, whole_file: bool = False) -> PixelSource:
    return run_program(read_pixels(len(data), whole_file=whole_file), lambda o, n: data[o : o + n])


def _measure(data: bytes, whole_file: bool = False) -> tuple[PixelSource, Measured]:
    source = _read(data, whole_file)
    return source, measure(len(data), source, CheckSettings())


def test_a_photo_without_a_preview_is_judged_from_prefix_tail_and_thumbnail() -> None:
    source, measured = _measure(PHOTO)
    assert source.source == "band" and source.thumbnail is not None
    assert source.bytes_read < 0.2 * len(PHOTO), source.bytes_read / len(PHOTO)
    assert source.tail.endswith(b"\xff\xd9") and source.band is not None
    assert 0 < source.band.pixels.shape[0] < 0.5 * source.band.pixels.shape[1] * 3 / 4
    pixels = measured.pixels
    assert pixels is not None and measured.decode_error is None
    assert pixels.blur.score is not None and pixels.blur.score > CheckSettings().blur_min_focus
    assert pixels.phash_source == "thumbnail"
    assert measured.integrity is not None and measured.integrity.problem is None
    assert (measured.integrity.width, measured.integrity.height) == SIZE


def test_a_band_is_judged_at_twice_the_analysis_size() -> None:
    # 1600 px wide: under BAND_LONG_SIDE (2000), so decoded at full size, not at 1000 px.
    source = _read(PHOTO)
    assert source.band is not None
    assert source.band.pixels.shape[1] == min(SIZE[0], BAND_LONG_SIDE) > 1000


def test_a_band_decoded_from_fewer_rows_than_its_data_holds_is_the_same_band() -> None:
    # The frame header is cut to a share of the rows; while the data reaches past them,
    # decode_band decodes twice as many again, until the data stops first.
    for data in (PHOTO, _photo(_sky_top(SCENE))):
        prefix = data[: len(data) // 5]
        whole = decode_band(prefix, BAND_LONG_SIDE)
        for share in (0.01, 0.1, 0.3):
            cut = decode_band(prefix, BAND_LONG_SIDE, rows_share=share)
            assert (cut.width, cut.height) == (whole.width, whole.height) == SIZE
            assert cut.pixels.shape[0] > 0 and np.array_equal(cut.pixels, whole.pixels), share


def _blurred(sigma: float) -> bytes:
    return _photo(np.asarray(Image.fromarray(SCENE).filter(ImageFilter.GaussianBlur(sigma))))


def test_a_band_decides_only_when_its_focus_is_clear_of_the_minimum() -> None:
    minimum = BAND_SETTINGS.blur_min_focus
    sharp, near = _read(PHOTO), _read(_blurred(0.6))
    soft, measured = _measure(_blurred(1.0))
    assert sharp.band is not None and sharp.band.focus is not None
    assert sharp.source == "band" and sharp.band.focus[1].score >= minimum * BAND_SURE
    # Near the minimum the band cannot tell a soft top from a soft photo: read whole.
    assert near.source == "full" and near.bytes_read >= len(_blurred(0.6))
    # Clearly under it: blurred on the band's evidence, a fifth of the file read.
    assert soft.band is not None and soft.band.focus is not None
    assert soft.source == "band" and soft.band.focus[1].score < minimum / BAND_SURE
    assert soft.bytes_read < 0.2 * len(_blurred(1.0))
    assert measured.pixels is not None and measured.pixels.blur.score is not None
    assert measured.pixels.blur.score < minimum


def test_the_whole_file_option_still_reads_every_byte() -> None:
    source, measured = _measure(PHOTO, whole_file=True)
    assert source.source == "full" and source.bytes_read >= len(PHOTO)
    assert measured.integrity is not None and measured.integrity.problem is None


def test_a_truncated_photo_without_a_preview_is_still_flagged() -> None:
    cut = PHOTO[: int(len(PHOTO) * 0.8)]
    source, measured = _measure(cut)
    assert source.source == "band" and source.bytes_read < 0.25 * len(cut)
    assert measured.integrity is not None and measured.integrity.problem == "no_eoi"


def test_a_sky_top_photo_extends_its_read_until_the_band_has_texture() -> None:
    plain = _read(PHOTO)
    sky = _photo(_sky_top(SCENE))
    source, measured = _measure(sky)
    scan = len(sky) - len(source.header)
    first = len(source.header) + BAND_STEPS[0] * scan
    plain_scan = len(PHOTO) - len(plain.header)  # the textured scene stops at the first step
    assert plain.prefix_bytes <= len(plain.header) + BAND_STEPS[0] * plain_scan + 1
    assert source.prefix_bytes > first + 0.05 * scan  # read on past the first step
    assert source.band is not None and enough_texture(source.band.focus_rows(), BAND_SETTINGS)
    # Measured on its lowest rows only, so the measure's memory stays bounded (band.py).
    assert source.band.pixels.size > FOCUS_MAX_PIXELS >= source.band.focus_rows().size
    assert measured.pixels is not None and measured.pixels.blur.score is not None


def test_a_photo_without_a_thumbnail_is_judged_on_its_band() -> None:
    data = _photo(SCENE, thumbnail=False)
    source, measured = _measure(data)
    assert source.source == "band" and source.thumbnail is None
    assert measured.pixels is not None and measured.pixels.phash_source == "band"
    assert measured.pixels.blur.score is not None


def test_near_duplicates_compare_hashes_of_one_source_only() -> None:
    def site(sources: tuple[str, str]) -> set[str]:
        items = [
            DuplicateCandidate(f"p{i}.jpg", digest=f"d{i}", phash=0xF0F0, phash_source=s)
            for i, s in enumerate(sources)
        ]
        return set(find_duplicates(items).near_match)

    assert site(("thumbnail", "thumbnail")) == {"p0.jpg", "p1.jpg"}
    assert site(("preview", "preview")) == {"p0.jpg", "p1.jpg"}
    assert site(("thumbnail", "preview")) == set()  # a 160x120 thumbnail is not a preview


def test_the_generator_writes_a_share_of_photos_without_a_preview(tmp_path: Path) -> None:
    layout = SiteLayout(
        folders=(("A", 60),), previews=True, distinct_scenes=True, no_preview_share=0.3
    )
    truth = generate_site(tmp_path, "s", layout, body=make_body(layout))
    without = [i for i in truth.images if not i.preview]
    assert 10 <= len(without) <= 30
    thumbnails = set()
    for image in truth.images:
        source = _read((tmp_path / "s" / image.path).read_bytes())
        assert source.source == ("preview" if image.preview else "band"), image.path
        if not image.preview and source.thumbnail is not None:
            thumbnails.add(source.thumbnail)
    # Each photo's own thumbnail, made from its picture; a tenth or so have none at all.
    assert len(without) - 6 <= len(thumbnails) < len(without)


def test_a_progressive_photo_without_a_preview_is_read_whole() -> None:
    # Its first bytes hold the whole frame at low quality: no band of sharp rows to judge.
    out = io.BytesIO()
    Image.fromarray(SCENE).save(out, "JPEG", quality=92, progressive=True)
    spec = ImageSpec(taken=datetime(2024, 5, 14, 9, 30), gps=(52.37, 4.89, 40.0))
    data = build_jpeg(spec, strip_app_segments(out.getvalue()))
    source, measured = _measure(data)
    assert source.source == "full" and source.bytes_read >= len(data)
    assert measured.pixels is not None and measured.pixels.blur.score is not None
