"""find_duplicates: identical files, near-identical pictures, shots taken while hovering."""

from __future__ import annotations

import random
from datetime import datetime

from qc_tool.domain.checks import CheckSettings, DuplicateCandidate, find_duplicates

S = CheckSettings()
LAT, LON = 48.8566, 2.3522
METRE = 1 / 111_195  # degrees of latitude per metre


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
    assert messages["a.jpg"][0].message == "Byte-identical copy of b.jpg, c.jpg"
    assert "d.jpg" not in messages


def test_hashes_within_the_threshold_are_near_duplicates() -> None:
    base = 0x0F0F_F0F0_1234_5678
    items = [
        DuplicateCandidate("a.jpg", "1", base),
        DuplicateCandidate("b.jpg", "2", base ^ 0b11),  # 2 bits
        DuplicateCandidate("c.jpg", "3", base ^ (0b111111 << 10)),  # 6 bits: another picture
    ]
    report = find_duplicates(items, S)
    assert [(p.a, p.b, p.distance) for p in report.near] == [("a.jpg", "b.jpg", 2)]
    outcome = report.outcomes()["b.jpg"][0]
    assert (outcome.name, outcome.ok) == ("near_duplicate", False)
    assert outcome.message == "Near-duplicate of a.jpg (2 of 64 hash bits differ)"


def test_near_duplicates_are_found_across_comparison_blocks() -> None:
    rng = random.Random(3)
    hashes = [rng.getrandbits(64) for _ in range(700)]
    hashes[650] = hashes[5] ^ (1 << 63)  # top bit: checks unsigned handling too
    items = [DuplicateCandidate(f"{i}.jpg", str(i), h) for i, h in enumerate(hashes)]
    near = find_duplicates(items, S).near
    assert [(p.a, p.b, p.distance) for p in near] == [("5.jpg", "650.jpg", 1)]


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
    assert [(p.a, p.b) for p in report.hovering] == [("a.jpg", "b.jpg")]
    hover = report.hovering[0]
    assert abs(hover.metres - 0.5) < 0.01 and hover.seconds == 3.0
    assert report.outcomes()["b.jpg"][0].message == (
        "Taken while hovering: 0.5 m and 3 s from a.jpg"
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
    assert [(p.a, p.b, p.metres) for p in find_duplicates(still, S).hovering] == [
        ("a.jpg", "b.jpg", 0.4)
    ]
