"""The folder walk's rules: which names are photos, what is listed next, what is reported."""

from __future__ import annotations

import pytest
from qc_tool.domain.listing import LINK, MAX_SHOWN, Entry, FolderWalk, Kind
from qc_tool.domain.models import NotSearched, OtherFile
from qc_tool.domain.paths import is_image_name


@pytest.mark.parametrize(
    "name",
    ["DJI_0001.JPG", "a.jpeg", "IMG_1.HEIC", "IMG_2.heic", "x.Heif", "RAW.DNG", "raw.dng"],
)
def test_jpeg_heic_heif_and_dng_names_are_photos_in_any_case(name: str) -> None:
    assert is_image_name(name)


@pytest.mark.parametrize(
    "name", ["DJI_0001.MP4", "DJI_0001.SRT", "notes.txt", "DJI_0001.JPG.tmp", "._DJI_0001.JPG"]
)
def test_videos_logs_text_and_hidden_files_are_not_photos(name: str) -> None:
    assert not is_image_name(name)


def test_a_directory_at_the_bound_is_listed_and_one_below_it_is_reported() -> None:
    walk = FolderWalk("F", max_depth=2)
    assert walk.add("F", [Entry("a", Kind.DIR)]) == ["F/a"]
    assert walk.add("F/a", [Entry("b", Kind.DIR)]) == ["F/a/b"]
    assert walk.add("F/a/b", [Entry("c", Kind.DIR), Entry("P.JPG", Kind.FILE, 5, 1)]) == []
    found = walk.listing()
    assert [p.path for p in found.photos] == ["F/a/b/P.JPG"]
    assert found.not_searched == [NotSearched("F/a/b/c", "more than 2 folder levels below F")]


def test_links_escaped_names_and_hidden_entries_are_never_listed_next() -> None:
    walk = FolderWalk("F")
    below = walk.add(
        "F",
        [
            Entry("Loop", Kind.LINK),
            Entry("bad\\x01name", Kind.DIR),
            Entry(".Trashes", Kind.DIR),
            Entry("DCIM", Kind.DIR),
        ],
    )
    assert below == ["F/DCIM"]
    reasons = {n.path: n.reason for n in walk.listing().not_searched}
    assert reasons["F/Loop"] == LINK
    assert "control characters" in reasons["F/bad\\x01name"]
    assert len(reasons) == 2


def test_other_files_are_all_counted_and_the_first_ones_by_path_listed() -> None:
    walk = FolderWalk("F")
    walk.add("F", [Entry(f"clip_{i:04d}.MP4", Kind.FILE, i, 0) for i in range(MAX_SHOWN + 5)])
    found = walk.listing()
    assert found.other_files == MAX_SHOWN + 5
    assert found.others == [OtherFile(f"F/clip_{i:04d}.MP4", i) for i in range(MAX_SHOWN)]
