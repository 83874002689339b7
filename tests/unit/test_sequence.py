"""Gaps in a folder's sequence: long pauses and missing file numbers are flagged, steady flights are not."""

from __future__ import annotations

from datetime import datetime, timedelta

from qc_tool.domain.models import ImageResult
from qc_tool.domain.sequence import find_gaps

START = datetime(2024, 5, 1, 10, 0, 0)


def _photo(folder: str, number: int, seconds: float | None) -> ImageResult:
    taken = None if seconds is None else (START + timedelta(seconds=seconds)).isoformat()
    return ImageResult(path=f"{folder}/DJI_{number:04d}.JPG", size=1, mtime=0, taken=taken)


def test_a_steady_flight_has_no_gaps() -> None:
    photos = [_photo("A", n, 3.0 * n) for n in range(1, 40)]
    assert find_gaps(photos) == []


def test_a_long_pause_is_flagged_between_the_two_photos_around_it() -> None:
    photos = [_photo("A", n, 3.0 * n) for n in range(1, 11)]
    photos += [_photo("A", n, 3.0 * n + 600) for n in range(11, 21)]
    (gap,) = find_gaps(photos)
    assert (gap.folder, gap.kind, gap.after, gap.before) == (
        "A",
        "time",
        "A/DJI_0010.JPG",
        "A/DJI_0011.JPG",
    )
    assert gap.detail == "603 s without a photo (usual 3 s)"


def test_a_short_repositioning_pause_is_normal() -> None:
    photos = [_photo("A", n, 2.0 * n) for n in range(1, 11)]
    photos.append(_photo("A", 11, 2.0 * 10 + 25))  # 25 s: under the 30 s floor
    assert find_gaps(photos) == []


def test_missing_numbers_are_flagged_per_folder_whatever_the_order() -> None:
    photos = [_photo("B", n, None) for n in (7, 3, 4, 5, 9)] + [_photo("C", 1, None)]
    gaps = find_gaps(photos)
    assert [(g.folder, g.kind, g.after, g.before, g.detail) for g in gaps] == [
        ("B", "numbering", "B/DJI_0005.JPG", "B/DJI_0007.JPG", "number 6 missing"),
        ("B", "numbering", "B/DJI_0007.JPG", "B/DJI_0009.JPG", "number 8 missing"),
    ]


def test_a_run_of_missing_numbers_is_one_gap() -> None:
    gaps = find_gaps([_photo("D", 1, 0.0), _photo("D", 12, 3.0)])
    assert [g.detail for g in gaps] == ["numbers 2-11 missing"]


def test_each_card_directory_below_a_folder_numbers_its_own_series() -> None:
    photos = [_photo("A/DCIM/100MEDIA", n, 3.0 * n) for n in range(1, 6)]
    photos += [_photo("A/DCIM/101MEDIA", n, 3.0 * n + 20) for n in (1, 2, 4)]
    (gap,) = find_gaps(photos)  # only 101MEDIA's missing 3; the restart at 1 is no gap
    assert (gap.folder, gap.kind, gap.after, gap.before, gap.detail) == (
        "A",
        "numbering",
        "A/DCIM/101MEDIA/DJI_0002.JPG",
        "A/DCIM/101MEDIA/DJI_0004.JPG",
        "number 3 missing",
    )
