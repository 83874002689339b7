"""An uploaded ZIP is inspected from its directory before anything is unpacked; only photos are."""

from __future__ import annotations

import io
import stat
import zipfile
import zlib
from pathlib import Path

import pytest
from qc_tool.errors import UploadRefused, UploadTooLarge
from qc_tool.services.uploads.zip_safety import (
    TOP_LEVEL,
    CheckedZip,
    ZipLimits,
    inspect_zip,
    layout,
)
from qc_tool.web.errors import status_of
from zips import (
    CD_COMPRESSED,
    CD_FLAGS,
    CD_OFFSET,
    CD_SIZE,
    Dup,
    central_headers,
    info,
    local_data_offset,
    make_zip,
    patch_central,
    patch_end_record_entries,
    photo,
)

LIMITS = ZipLimits()
PHOTO = photo(1)


def refusal(data: bytes, limits: ZipLimits = LIMITS) -> str:
    with pytest.raises(UploadRefused) as caught:
        inspect_zip(io.BytesIO(data), limits)
    assert status_of(caught.value) in (400, 413)
    return caught.value.message


# -- what is accepted -----------------------------------------------------------------------


def test_photos_are_planned_and_other_files_are_listed_as_skipped() -> None:
    data = make_zip(
        {
            "Antenna A/DJI_0001.JPG": PHOTO,
            "Antenna A/dji_0002.jpeg": PHOTO,
            "Site-Sign/IMG_0003.HEIC": PHOTO,
            "Antenna A/DJI_0001.DNG": PHOTO,
            "Antenna A/": b"",
            "Antenna A/flight.SRT": b"subtitles",
            "notes.txt": b"hello",
            "__MACOSX/Antenna A/._DJI_0001.JPG": b"appledouble",
            ".thumbs/DJI_0001.JPG": PHOTO,
        }
    )
    plan = inspect_zip(io.BytesIO(data), LIMITS)
    assert [(p.entry, p.path) for p in plan.photos] == [
        ("Antenna A/DJI_0001.JPG", "Antenna A/DJI_0001.JPG"),
        ("Antenna A/dji_0002.jpeg", "Antenna A/dji_0002.jpeg"),
        ("Site-Sign/IMG_0003.HEIC", "Site-Sign/IMG_0003.HEIC"),
        ("Antenna A/DJI_0001.DNG", "Antenna A/DJI_0001.DNG"),
    ]
    assert {(s.entry, s.reason) for s in plan.skipped} == {
        ("Antenna A/flight.SRT", "not a photo (JPEG, HEIC, HEIF or DNG)"),
        ("notes.txt", "not a photo (JPEG, HEIC, HEIF or DNG)"),
        ("__MACOSX/Antenna A/._DJI_0001.JPG", "macOS metadata"),
        (".thumbs/DJI_0001.JPG", "hidden file"),
    }
    assert plan.entries == 9
    assert plan.photo_bytes == 4 * len(PHOTO)


def test_a_zip_without_photos_is_refused_with_what_it_holds() -> None:
    message = refusal(make_zip({"notes.txt": b"x", "video.MP4": b"y"}))
    assert message == (
        "The ZIP holds no photos (.jpg, .jpeg, .heic, .heif or .dng); it holds 2 other file(s)."
    )


# -- the folder rule ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        (["a.jpg", "b.jpg"], [f"{TOP_LEVEL}/a.jpg", f"{TOP_LEVEL}/b.jpg"]),
        (["SITE-1/a.jpg", "SITE-1/b.jpg"], ["SITE-1/a.jpg", "SITE-1/b.jpg"]),
        (["SITE-1/Tower/a.jpg", "SITE-1/Base/b.jpg"], ["Tower/a.jpg", "Base/b.jpg"]),
        (
            ["SITE-1/DCIM/100MEDIA/a.jpg", "SITE-1/DCIM/101MEDIA/b.jpg"],
            ["100MEDIA/a.jpg", "101MEDIA/b.jpg"],
        ),
        (["x.jpg", "Tower/day 2/a.jpg"], [f"{TOP_LEVEL}/x.jpg", "Tower - day 2/a.jpg"]),
        (["A/x.jpg", "A/B/y.jpg"], ["A/x.jpg", "A - B/y.jpg"]),
        (["A/B/C/x.jpg"], ["C/x.jpg"]),
    ],
    ids=["top", "one-wrapper", "wrapper-dropped", "card", "mixed", "nested", "single-deep"],
)
def test_the_folder_rule(entries: list[str], expected: list[str]) -> None:
    assert list(layout(entries).values()) == expected


def test_two_photos_that_map_to_one_place_are_refused() -> None:
    message = refusal(make_zip({"A - B/x.jpg": PHOTO, "A/B/x.jpg": PHOTO}))
    assert message == (
        "Refused: 'A - B/x.jpg' and 'A/B/x.jpg' would both be checked as 'A - B/x.jpg'. "
        "Rename one of them."
    )


def test_a_folder_name_too_long_after_joining_is_refused() -> None:
    deep = "/".join(["d" * 60] * 6) + "/x.jpg"
    message = refusal(make_zip({deep: PHOTO, "y.jpg": PHOTO}))
    assert message.startswith("Refused: the entry 'dddd") and "longer than 255" in message


# -- hostile ZIPs, refused before anything is unpacked ----------------------------------------


def test_a_zip_larger_than_the_limit_is_refused_as_too_large() -> None:
    data = make_zip({"a.jpg": PHOTO})
    with pytest.raises(UploadTooLarge) as caught:
        inspect_zip(io.BytesIO(data), ZipLimits(max_zip_bytes=len(data) - 1))
    assert status_of(caught.value) == 413
    size = f"{len(data) / 1024:.1f} KB"
    assert caught.value.message == f"The ZIP is {size}; uploads of at most {size} are accepted."


def test_too_many_entries_are_refused_from_the_end_record() -> None:
    data = make_zip({f"{i}.jpg": PHOTO[:100] for i in range(6)})
    assert refusal(data, ZipLimits(max_entries=5)) == (
        "The ZIP holds 6 entries; at most 5 are accepted. Split the batch into smaller ZIPs."
    )


def test_an_end_record_that_understates_the_entries_is_caught_after_parsing() -> None:
    data = patch_end_record_entries(make_zip({f"{i}.jpg": PHOTO[:100] for i in range(6)}), 2)
    assert refusal(data, ZipLimits(max_entries=5)).startswith("The ZIP holds 6 entries")


def test_an_oversized_table_of_contents_is_refused_before_python_parses_it() -> None:
    entries = {info(f"{i}.jpg", comment=b"c" * 60_000): PHOTO[:100] for i in range(3)}
    message = refusal(make_zip(entries), ZipLimits(max_entries=3))
    assert message.startswith("The ZIP's table of contents is 175.9 KB, far more than 3 entries")


def test_the_declared_total_of_the_photos_is_limited() -> None:
    data = make_zip({"a.jpg": PHOTO, "b.jpg": PHOTO, "notes.txt": b"n" * 100_000})
    message = refusal(data, ZipLimits(max_photo_bytes=len(PHOTO) + 10))
    assert message.startswith("The photos in this ZIP unpack to 91.0 KB; at most 45.5 KB")


@pytest.mark.parametrize("name", ["bomb.jpg", "bomb.bin"])
def test_a_zip_bomb_entry_is_refused_by_its_compression_ratio(name: str) -> None:
    data = make_zip({"a.jpg": PHOTO, name: bytes(20 * 2**20)})
    message = refusal(data)
    assert message.startswith(f"Refused: the entry '{name}' expands 1,0")
    assert message.endswith("at most 100 times is accepted): this looks like a zip bomb.")


def test_small_entries_are_not_held_to_the_ratio() -> None:
    plan = inspect_zip(io.BytesIO(make_zip({"a.jpg": PHOTO, "zeros.txt": bytes(500_000)})), LIMITS)
    assert [s.entry for s in plan.skipped] == ["zeros.txt"]


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("../evil.jpg", "points outside the folder it would be unpacked into ('..')"),
        ("photos/../../evil.jpg", "points outside the folder it would be unpacked into ('..')"),
        ("/etc/evil.jpg", "has an absolute path"),
        ("C:/Windows/evil.jpg", "starts with a drive letter"),
        ("C:evil.jpg", "starts with a drive letter"),
        ("photos\\..\\evil.jpg", "uses backslashes in its path (paths in a ZIP use '/')"),
        ("photos//evil.jpg", "has an empty or '.' path component"),
        ("./evil.jpg", "has an empty or '.' path component"),
        ("evil\x07.jpg", "has control characters in its name"),
    ],
)
def test_names_that_could_leave_the_folder_are_refused(name: str, problem: str) -> None:
    data = make_zip({"a.jpg": PHOTO, info(name): PHOTO})
    assert refusal(data) == f"Refused: the entry {name!r} {problem}."


def test_a_nul_in_a_name_is_refused_not_truncated() -> None:
    data = make_zip({"a.jpg": PHOTO, "b.jpg": PHOTO})
    at = central_headers(data)[1] + 46  # the second name, "b.jpg", in the central directory
    data = data[:at] + b"\x00" + data[at + 1 :]
    assert refusal(data) == "Refused: the entry '\\x00.jpg' has a NUL character in its name."


def test_a_symbolic_link_is_refused() -> None:
    data = make_zip({"a.jpg": PHOTO, info("link.jpg", mode=stat.S_IFLNK | 0o777): b"/etc/passwd"})
    assert refusal(data) == "Refused: the entry 'link.jpg' is a symbolic link."


def test_a_special_file_is_refused() -> None:
    data = make_zip({"a.jpg": PHOTO, info("fifo.jpg", mode=stat.S_IFIFO | 0o644): b""})
    assert (
        refusal(data) == "Refused: the entry 'fifo.jpg' is a special file (device, pipe or socket)."
    )


def test_an_encrypted_entry_is_refused() -> None:
    data = make_zip({"a.jpg": PHOTO, "secret.jpg": PHOTO})
    data = patch_central(data, 1, CD_FLAGS, 0x1)  # zipfile cannot write encrypted entries
    assert refusal(data) == (
        "Refused: the entry 'secret.jpg' is encrypted (password-protected ZIPs are not accepted)."
    )


def test_a_duplicate_name_is_refused() -> None:
    data = make_zip({"Tower/a.jpg": PHOTO, Dup("Tower/a.jpg"): PHOTO})
    assert refusal(data) == "Refused: the entry 'Tower/a.jpg' appears twice in the ZIP."


def test_overlapping_entries_are_refused() -> None:
    data = make_zip({"a.jpg": PHOTO, "b.jpg": PHOTO})
    data = patch_central(data, 1, CD_OFFSET, 0)  # b.jpg's header is a.jpg's: shared bytes
    assert refusal(data) == (
        "Refused: the entries 'a.jpg' and 'b.jpg' overlap in the file (a zip bomb trick)."
    )


def test_a_file_that_is_not_a_zip_is_refused() -> None:
    assert refusal(PHOTO) == (
        "This file is not a ZIP archive (or its end is missing: was the upload cut short?)."
    )


def test_a_zip_cut_short_is_refused() -> None:
    data = make_zip({"a.jpg": PHOTO, "b.jpg": PHOTO})
    assert refusal(data[: len(data) // 2]).startswith("This file is not a ZIP archive")


def test_a_damaged_table_of_contents_is_refused() -> None:
    data = make_zip({"a.jpg": PHOTO, "b.jpg": PHOTO})
    start = central_headers(data)[0]
    data = data[:start] + b"\xee" * 40 + data[start + 40 :]
    assert refusal(data) == (
        "The ZIP is damaged: its table of contents cannot be read. Create the ZIP again."
    )


def test_an_empty_upload_is_refused() -> None:
    assert refusal(b"") == "The uploaded file is empty."


# -- unpacking ------------------------------------------------------------------------------


def test_photos_are_unpacked_byte_identical_into_a_private_folder(tmp_path: Path) -> None:
    photos = {"SITE/Tower/a.jpg": photo(1), "SITE/Base/b.JPG": photo(2), "SITE/x.txt": b"x"}
    with CheckedZip(io.BytesIO(make_zip(photos)), LIMITS) as checked:
        damaged = checked.unpack(tmp_path / "out")
    assert damaged == {}
    out = tmp_path / "out"
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == [
        "Base",
        "Base/b.JPG",
        "Tower",
        "Tower/a.jpg",
    ]
    assert (out / "Tower/a.jpg").read_bytes() == photos["SITE/Tower/a.jpg"]
    assert (out / "Base/b.JPG").read_bytes() == photos["SITE/Base/b.JPG"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert stat.S_IMODE((out / "Tower").stat().st_mode) == 0o700
    assert stat.S_IMODE((out / "Tower/a.jpg").stat().st_mode) == 0o600


def test_a_photo_damaged_in_the_zip_costs_only_that_photo(tmp_path: Path) -> None:
    data = make_zip({"a.jpg": photo(1), "b.jpg": photo(2), "c.jpg": photo(3)}, zipfile.ZIP_STORED)
    at = local_data_offset(data, 1) + 5000
    data = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]
    with CheckedZip(io.BytesIO(data), LIMITS) as checked:
        damaged = checked.unpack(tmp_path / "out")
    assert damaged == {f"{TOP_LEVEL}/b.jpg": "damaged in the ZIP: its data fails the CRC check"}
    assert sorted(p.name for p in (tmp_path / "out" / TOP_LEVEL).iterdir()) == ["a.jpg", "c.jpg"]


def test_a_photo_longer_than_it_declares_is_never_written_in_full(tmp_path: Path) -> None:
    """The directory says 1,000 bytes; the stream holds 4 MB: at most 1,000 are ever written."""
    data = make_zip({"a.jpg": photo(1), "b.jpg": bytes(4 * 2**20)})
    data = patch_central(data, 1, CD_SIZE, 1000)
    with CheckedZip(io.BytesIO(data), ZipLimits(max_photo_bytes=len(photo(1)) + 1000)) as checked:
        assert checked.plan.photo_bytes == len(photo(1)) + 1000
        damaged = checked.unpack(tmp_path / "out")
    assert damaged == {f"{TOP_LEVEL}/b.jpg": "damaged in the ZIP: its data fails the CRC check"}
    assert not (tmp_path / "out" / TOP_LEVEL / "b.jpg").exists()


def test_unpacking_stops_at_the_byte_budget_whatever_was_declared(tmp_path: Path) -> None:
    """Were the zip reader to hand over more than declared, the budget still stops it."""
    data = make_zip({"a.jpg": photo(1), "b.jpg": photo(2)})
    limits = ZipLimits(max_photo_bytes=len(photo(1)) + len(photo(2)))
    with CheckedZip(io.BytesIO(data), limits) as checked:
        # Inspection passed; now the actual bytes turn out larger than the declared total.
        checked._limits = ZipLimits(max_photo_bytes=len(photo(1)) + 100)
        with pytest.raises(UploadRefused, match="unpack to more than 45.6 KB"):
            checked.unpack(tmp_path / "out")
    assert not (tmp_path / "out" / TOP_LEVEL / "b.jpg").exists()


def test_a_zip_bomb_is_refused_before_a_byte_is_unpacked(tmp_path: Path) -> None:
    data = make_zip({"a.jpg": PHOTO, "bomb.jpg": bytes(20 * 2**20)})
    with pytest.raises(UploadRefused):
        CheckedZip(io.BytesIO(data), LIMITS)
    assert list(tmp_path.iterdir()) == []


def test_the_compressed_size_field_cannot_hide_a_bomb() -> None:
    """Declaring a large compressed size (a small ratio) does not let the entry overlap others."""
    data = make_zip({"a.jpg": PHOTO, "bomb.jpg": bytes(20 * 2**20), "c.jpg": PHOTO})
    data = patch_central(data, 1, CD_COMPRESSED, 2**20)  # ratio 20, but now it overlaps c.jpg
    assert refusal(data) == (
        "Refused: the entries 'bomb.jpg' and 'c.jpg' overlap in the file (a zip bomb trick)."
    )


def test_zlib_streams_are_what_the_bomb_tests_assume() -> None:
    assert len(zlib.compress(bytes(20 * 2**20))) < 20 * 2**20 / 100
