"""find_duplicates: identical files, near-identical pictures, shots taken while hovering."""

from __future__ import annotations

import itertools
import random
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime

import pytest
from qc_tool.domain.checks.duplicates import (
    BUCKET_KEEP,
    HOVER_WINDOW,
    NAME_SHOWN,
    DuplicateCandidate,
    DuplicateReport,
    find_duplicates,
)
from qc_tool.domain.checks.result import CheckOutcome
from qc_tool.domain.checks.settings import CheckSettings

S = CheckSettings()
LAT, LON = 48.8566, 2.3522
METRE = 1 / 111_195  # degrees of latitude per metre
NOON = "2024:05:01 12:00:00"
KIB = 1024


def test_files_with_the_same_digest_form_one_group() -> None:
    items = [
        DuplicateCandidate("a.jpg", "d1", 0x1),
        DuplicateCandidate("b.jpg", "d1", 0x1),
        DuplicateCandidate("c.jpg", "d1", 0x1),
        DuplicateCandidate("d.jpg", "d2", 0xFFFF_0000),
        DuplicateCandidate("e.jpg", None, None),
    ]
    report = find_duplicates(items, S)
    assert report.identical == (("a.jpg", "b.jpg", "c.jpg"),)
    assert report.near == ()  # identical files are not reported a second time
    messages = report.outcomes()
    assert [o.message for o in messages["a.jpg"]] == [
        "Byte-identical copy of b.jpg, one of 3 identical files (first: a.jpg)"
    ]
    assert messages["c.jpg"][0].message.startswith("Byte-identical copy of a.jpg, one of 3")
    assert messages["c.jpg"][0].value == 2  # how many other copies
    assert "d.jpg" not in messages and "e.jpg" not in messages


def test_a_pair_of_copies_names_the_other_one() -> None:
    items = [DuplicateCandidate("a.jpg", "d", 0x1), DuplicateCandidate("b.jpg", "d", 0x1)]
    messages = find_duplicates(items, S).outcomes()
    assert messages["a.jpg"][0].message == "Byte-identical copy of b.jpg"
    assert messages["b.jpg"][0].message == "Byte-identical copy of a.jpg"


def test_hashes_within_the_threshold_are_near_duplicates() -> None:
    base = 0x0F0F_F0F0_1234_5678
    items = [
        DuplicateCandidate("a.jpg", "1", base),
        DuplicateCandidate("b.jpg", "2", base ^ 0b11),  # 2 bits
        DuplicateCandidate("c.jpg", "3", base ^ (0b111111 << 10)),  # 6 bits: another picture
    ]
    report = find_duplicates(items, S)
    assert report.near == (("a.jpg", "b.jpg"),)
    assert (report.near_match["a.jpg"].partner, report.near_match["a.jpg"].distance) == (
        "b.jpg",
        2,
    )
    outcome = report.outcomes()["b.jpg"][0]
    assert (outcome.name, outcome.ok, outcome.value) == ("near_duplicate", False, 2)
    assert outcome.message == "Near-duplicate of a.jpg (2 of 64 hash bits differ)"
    assert "c.jpg" not in report.outcomes()


def test_a_group_of_look_alikes_is_reported_once_with_its_size_and_first_photo() -> None:
    base = 0x0F0F_F0F0_1234_5678
    items = [
        DuplicateCandidate("a.jpg", "1", base),
        DuplicateCandidate("b.jpg", "2", base ^ 0b11),
        DuplicateCandidate("c.jpg", "3", base ^ 0b1100),
        DuplicateCandidate("d.jpg", "4", base ^ 0b11),  # same pHash as b, another file
    ]
    report = find_duplicates(items, S)
    assert report.near == (("a.jpg", "b.jpg", "c.jpg", "d.jpg"),)
    messages = report.outcomes()
    assert [o.message for o in messages["d.jpg"]] == [
        (
            "Near-duplicate of b.jpg (0 of 64 hash bits differ), one of 4 look-alike photos "
            "(first: a.jpg)"
        )
    ]
    assert messages["a.jpg"][0].message.startswith("Near-duplicate of b.jpg (2 of 64")


def test_a_copy_of_the_same_file_is_nobodys_near_duplicate_but_a_third_look_alike_is() -> None:
    base = 0x0F0F_F0F0_1234_5678
    copies = [DuplicateCandidate("a.jpg", "d", base), DuplicateCandidate("b.jpg", "d", base)]
    assert find_duplicates(copies, S).near == ()
    report = find_duplicates([*copies, DuplicateCandidate("c.jpg", "e", base ^ 0b11)], S)
    assert report.near == (("a.jpg", "b.jpg", "c.jpg"),)
    assert {n: m.partner for n, m in report.near_match.items()} == {
        "a.jpg": "c.jpg",
        "b.jpg": "c.jpg",
        "c.jpg": "a.jpg",
    }
    assert [o.name for o in report.outcomes()["a.jpg"]] == ["duplicate", "near_duplicate"]


def test_near_duplicates_are_found_among_hundreds_of_unrelated_photos() -> None:
    rng = random.Random(3)
    hashes = [rng.getrandbits(64) for _ in range(700)]
    hashes[650] = hashes[5] ^ (1 << 63)  # top bit: checks unsigned handling too
    items = [DuplicateCandidate(f"{i}.jpg", str(i), h) for i, h in enumerate(hashes)]
    report = find_duplicates(items, S)
    assert report.near == (("5.jpg", "650.jpg"),)
    assert report.near_match["650.jpg"].distance == 1


@pytest.mark.parametrize("max_distance", [0, 2, 4, 6, 10])
def test_every_pair_within_the_distance_shares_a_band_and_is_found(max_distance: int) -> None:
    """The bands are exact: any k <= d flipped bits, wherever they fall, is found; more is not."""
    settings = CheckSettings(near_duplicate_max_distance=max_distance)
    rng = random.Random(max_distance)
    for trial in range(300):
        base = rng.getrandbits(64)
        flips = max_distance if trial % 3 else rng.randint(0, max_distance)
        near = base
        for bit in rng.sample(range(64), flips):
            near ^= 1 << bit
        far = base
        for bit in rng.sample(range(64), max_distance + 1):
            far ^= 1 << bit
        found = find_duplicates(
            [DuplicateCandidate("a", "1", base), DuplicateCandidate("b", "2", near)], settings
        )
        assert found.near == (("a", "b"),), (hex(base), hex(near))
        missed = find_duplicates(
            [DuplicateCandidate("a", "1", base), DuplicateCandidate("c", "3", far)], settings
        )
        assert missed.near == ()


def _brute_force_near(items: Sequence[DuplicateCandidate], d: int) -> set[str]:
    """The photos that have a look-alike of another file, by comparing every pair."""
    flagged = set()
    for a, b in itertools.combinations(items, 2):
        assert a.phash is not None and b.phash is not None
        if (a.phash ^ b.phash).bit_count() <= d and a.digest != b.digest:
            flagged |= {a.name, b.name}
    return flagged


def test_the_banded_search_flags_the_same_photos_as_comparing_every_pair() -> None:
    rng = random.Random(11)
    items = []
    for cluster in range(60):  # clusters of look-alikes among loners
        base = rng.getrandbits(64)
        for k in range(rng.choice((1, 1, 2, 3, 5))):
            if items and rng.random() < 0.15:  # a copy of the photo before: same bytes, same hash
                items.append(replace(items[-1], name=f"{cluster}-{k}.jpg"))
                continue
            h = base
            for bit in rng.sample(range(64), rng.choice((0, 2, 4, 6))):
                h ^= 1 << bit
            items.append(DuplicateCandidate(f"{cluster}-{k}.jpg", f"{cluster}-{k}", h))
    report = find_duplicates(items, S)
    assert set(report.near_match) == _brute_force_near(items, S.near_duplicate_max_distance)
    for group in report.near:  # every flagged photo is in exactly one group
        assert len(group) >= 2
    assert sorted(itertools.chain.from_iterable(report.near)) == sorted(
        set(itertools.chain.from_iterable(report.near))
    )


def test_shots_a_metre_and_seconds_apart_were_taken_while_hovering() -> None:
    items = [  # no pHash: only position and time are at stake here
        DuplicateCandidate("a.jpg", "1", None, LAT, LON, "2024-05-01T10:00:00"),
        DuplicateCandidate("b.jpg", "2", None, LAT + 0.5 * METRE, LON, "2024:05:01 10:00:03"),
        DuplicateCandidate("c.jpg", "3", None, LAT + 3 * METRE, LON, "2024-05-01T10:00:04"),
        DuplicateCandidate("d.jpg", "4", None, LAT, LON, datetime(2024, 5, 1, 10, 0, 30)),
        DuplicateCandidate("e.jpg", "5", None, LAT, LON, None),
        DuplicateCandidate("f.jpg", "6", None, LAT, LON, "not a date"),
    ]
    report = find_duplicates(items, S)
    assert report.hovering == (("a.jpg", "b.jpg"),)
    hover = report.hover_match["b.jpg"]
    assert hover.partner == "a.jpg" and abs(hover.metres - 0.5) < 0.01 and hover.seconds == 3.0
    assert report.outcomes()["b.jpg"][0].message == (
        "Taken while hovering: 0.5 m and 3 s from a.jpg"
    )
    assert set(report.outcomes()) == {"a.jpg", "b.jpg"}


def test_a_hover_is_one_group_and_each_shot_names_its_nearest() -> None:
    times = ["10:00:00", "10:00:02", "10:00:04", "10:00:06", "10:00:20"]
    offsets = [0.0, 0.3, 0.5, 0.45, 0.0]
    items = [
        DuplicateCandidate(f"{i}.jpg", str(i), None, LAT + m * METRE, LON, f"2024:05:01 {t}")
        for i, (t, m) in enumerate(zip(times, offsets, strict=True))
    ]
    report = find_duplicates(items, S)
    # 0 and 3 are 6 s apart, yet one hover: each shot is within the limits of the one before.
    assert report.hovering == (("0.jpg", "1.jpg", "2.jpg", "3.jpg"),)
    assert report.hover_match["3.jpg"].partner == "2.jpg"
    message = report.outcomes()["0.jpg"][0].message
    assert message == (
        "Taken while hovering: 0.3 m and 2 s from 1.jpg, one of 4 shots of one hover (first: 0.jpg)"
    )


def test_an_empty_site_has_no_duplicates() -> None:
    report = find_duplicates([], S)
    assert (report.identical, report.near, report.hovering) == ((), (), ())
    assert report.outcomes() == {}


def test_a_climb_straight_up_the_tower_is_not_hovering() -> None:
    # Same horizontal position 2 s apart, but 3 m higher: the drone was moving.
    climb = [
        DuplicateCandidate("low.jpg", "1", None, LAT, LON, "2024-05-01T10:00:00", alt=30.0),
        DuplicateCandidate("high.jpg", "2", None, LAT, LON, "2024-05-01T10:00:02", alt=33.0),
    ]
    assert find_duplicates(climb, S).hovering == ()
    still = [
        DuplicateCandidate("a.jpg", "1", None, LAT, LON, "2024-05-01T10:00:00", alt=30.0),
        DuplicateCandidate("b.jpg", "2", None, LAT, LON, "2024-05-01T10:00:02", alt=30.4),
    ]
    report = find_duplicates(still, S)
    assert report.hovering == (("a.jpg", "b.jpg"),)
    assert report.hover_match["b.jpg"].metres == 0.4


def test_a_very_long_name_is_shortened_in_the_messages() -> None:
    long = "folder/" + "x" * 500 + ".jpg"
    items = [DuplicateCandidate(long, "d", 1), DuplicateCandidate("b.jpg", "d", 1)]
    message = find_duplicates(items, S).outcomes()["b.jpg"][0].message
    assert len(message) <= len("Byte-identical copy of ") + NAME_SHOWN
    assert "..." in message and message.endswith("xx.jpg")


# -- scale: thousands of look-alikes cost a bounded outcome per photo and little memory --------

N = 5000
PEAK_BOUND = 8 * 1024 * KIB  # for 5,000 photos: about 1.6 KiB each (3.8 MiB measured)


def _measured(
    items: list[DuplicateCandidate],
) -> tuple[DuplicateReport, dict[str, list[CheckOutcome]], int]:
    tracemalloc.start()
    try:
        report = find_duplicates(items, S)
        outcomes = report.outcomes()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return report, outcomes, peak


def _one_outcome_per_kind(outcomes: dict[str, list[CheckOutcome]]) -> None:
    for name, found in outcomes.items():
        kinds = [o.name for o in found]
        assert len(kinds) == len(set(kinds)) <= 3, (name, kinds)
        assert all(len(o.message) < 3 * NAME_SHOWN + 120 for o in found)


def _candidates(make: Callable[[int], DuplicateCandidate]) -> list[DuplicateCandidate]:
    return [make(i) for i in range(N)]


def test_five_thousand_copies_of_one_photo_are_one_group_in_bounded_memory() -> None:
    items = _candidates(lambda i: DuplicateCandidate(f"p{i:05d}.jpg", "d", 0xF0F0, LAT, LON, NOON))
    report, outcomes, peak = _measured(items)
    assert report.identical == (tuple(i.name for i in items),)
    assert report.near == report.hovering == ()
    assert len(outcomes) == N
    assert all([o.name for o in found] == ["duplicate"] for found in outcomes.values())
    _one_outcome_per_kind(outcomes)
    assert peak < PEAK_BOUND, f"{peak / KIB:.0f} KiB"


def test_five_thousand_look_alikes_at_one_place_and_time_are_judged_in_bounded_memory() -> None:
    """The upload that killed the worker: one picture, EXIF differing, same GPS and time."""
    items = _candidates(
        lambda i: DuplicateCandidate(f"p{i:05d}.jpg", f"d{i}", 0xF0F0, LAT, LON, NOON)
    )
    report, outcomes, peak = _measured(items)
    names = tuple(i.name for i in items)
    assert report.near == (names,) and report.hovering == (names,)
    assert len(outcomes) == N
    for found in outcomes.values():
        assert [o.name for o in found] == ["near_duplicate", "hovering"]
    assert outcomes["p04999.jpg"][1].message.endswith(
        f"one of {N} shots of one hover (first: p00000.jpg)"
    )
    _one_outcome_per_kind(outcomes)
    assert peak < PEAK_BOUND, f"{peak / KIB:.0f} KiB"


def test_thousands_of_distinct_but_alike_hashes_are_compared_a_bounded_number_of_times() -> None:
    """1,024 hashes 2 bits from one centre are all within 4 bits of each other: every one of
    them is flagged, though each is compared with at most BUCKET_KEEP per band."""
    centre = 0x0F0F_0F0F_0F0F_0F0F
    ones = [b for b in range(64) if centre >> b & 1]
    zeros = [b for b in range(64) if not centre >> b & 1]
    alike = [centre ^ (1 << a) ^ (1 << z) for a in ones for z in zeros]
    assert len(alike) > BUCKET_KEEP * 5
    items = [DuplicateCandidate(f"p{i:05d}.jpg", f"d{i}", h) for i, h in enumerate(alike * 5)]
    report, outcomes, peak = _measured(items[:N])
    assert set(outcomes) == {i.name for i in items[:N]}
    assert len(report.near) == 1
    _one_outcome_per_kind(outcomes)
    assert peak < PEAK_BOUND, f"{peak / KIB:.0f} KiB"


def test_a_burst_longer_than_the_window_is_still_one_hover() -> None:
    items = [
        DuplicateCandidate(f"p{i:03d}.jpg", str(i), None, LAT, LON, NOON)
        for i in range(3 * HOVER_WINDOW)
    ]
    report = find_duplicates(items, S)
    assert report.hovering == (tuple(i.name for i in items),)
    assert set(report.hover_match) == {i.name for i in items}
