"""The site's verdict: one rule for a photo's validity and the site's decision."""

from __future__ import annotations

from qc_tool.domain.checks.result import CheckOutcome, ImageChecks
from qc_tool.domain.models import ImageResult
from qc_tool.domain.structure import StructureReport
from qc_tool.domain.verdict import judge_photo, judge_site


def located(path: str) -> ImageResult:
    return ImageResult(path, 1000, 0, lat=-33.8, lon=151.2)


def passed(path: str) -> ImageChecks:
    return ImageChecks.of(path, (CheckOutcome("blur", True, "Sharp"),), "preview", 0.0)


def failed(path: str, *names: str) -> ImageChecks:
    outcomes = tuple(CheckOutcome(n, False, f"{n} failed") for n in names)
    return ImageChecks.of(path, outcomes, "preview", 0.0)


def test_a_photo_without_gps_is_invalid_even_when_its_checks_pass() -> None:
    image = ImageResult("Tower/DJI_0002.JPG", 1000, 0, gps_note="no GPS tags")
    verdict = judge_photo(image, passed(image.path))
    assert (verdict.valid, verdict.kinds, verdict.messages) == (
        False,
        ("missing_gps",),
        ("no GPS tags",),
    )


def test_an_unreadable_photo_is_invalid_without_checks() -> None:
    image = ImageResult("Tower/bad.JPG", 10, 0, error="not a JPEG")
    assert judge_photo(image, None).valid is False


def test_a_located_photo_the_checks_did_not_reach_is_not_judged() -> None:
    assert judge_photo(located("Tower/a.JPG"), None).valid is None


def test_outside_site_is_not_said_twice_for_a_photo_without_position() -> None:
    image = ImageResult("Tower/x.JPG", 1000, 0, gps_note="0/0")
    verdict = judge_photo(image, failed(image.path, "position"))
    assert verdict.kinds == ("missing_gps",)


def test_reasons_are_worst_first_and_capture_rules_fold_into_one_kind() -> None:
    image = located("Tower/a.JPG")
    verdict = judge_photo(image, failed(image.path, "iso", "shutter", "blur", "integrity"))
    assert verdict.kinds == ("integrity", "blur", "capture_rules")


def test_the_site_needs_a_refly_when_any_photo_is_invalid() -> None:
    images = [located("A/1.JPG"), located("A/2.JPG"), located("B/1.JPG")]
    checks = [passed("A/1.JPG"), failed("A/2.JPG", "blur"), passed("B/1.JPG")]
    verdict = judge_site(images, checks, "done")
    assert verdict.decision == "refly"
    assert verdict.invalid_paths == ["A/2.JPG"]
    assert (verdict.total, verdict.valid, verdict.invalid, verdict.unchecked) == (3, 2, 1, 0)
    assert [r.to_json() for r in verdict.refly] == [
        {"folder": "A", "photos": ["A/2.JPG"], "reasons": ["blur"]}
    ]
    assert verdict.headline.startswith("Re-fly needed: 1 of 3 photos fail (1 blurred)")


def test_counts_add_up_and_invalid_lists_exactly_the_invalid_photos() -> None:
    images = [located(f"F/{i}.JPG") for i in range(6)]
    images.append(ImageResult("F/nogps.JPG", 1, 0))
    checks = [passed("F/0.JPG"), failed("F/1.JPG", "exposure"), passed("F/2.JPG")]
    verdict = judge_site(images, checks, "cancelled")
    document = verdict.to_json()
    photos = document["photos"]
    assert photos["valid"] + photos["invalid"] + photos["unchecked"] == photos["total"] == 7
    assert document["invalid"] == [p.path for p in verdict.photos if p.valid is False]
    assert document["invalid"] == ["F/1.JPG", "F/nogps.JPG"]


def test_nothing_invalid_but_checks_not_finished_is_incomplete() -> None:
    images = [located("A/1.JPG"), located("A/2.JPG")]
    verdict = judge_site(images, [passed("A/1.JPG")], "failed")
    assert verdict.decision == "incomplete"
    assert verdict.unchecked == 1
    assert "1 of 2 photos not judged" in verdict.headline


def test_a_gps_only_scan_is_incomplete_and_says_the_checks_did_not_run() -> None:
    verdict = judge_site([located("A/1.JPG")], None, "not_run")
    assert verdict.decision == "incomplete"
    assert verdict.photos[0].valid is None
    assert any("did not run" in n for n in verdict.notes)


def test_every_photo_judged_good_passes() -> None:
    images = [located("A/1.JPG"), located("B/1.JPG")]
    verdict = judge_site(images, [passed("A/1.JPG"), passed("B/1.JPG")], "done")
    assert (verdict.decision, verdict.headline) == ("pass", "Passed: all 2 photos are good")


def test_a_missing_folder_needs_a_refly_even_when_every_photo_is_good() -> None:
    structure = StructureReport(missing=("Sector C",), too_few=(("A", 1, 20),))
    verdict = judge_site([located("A/1.JPG")], [passed("A/1.JPG")], "done", structure)
    assert verdict.decision == "refly"
    assert [(r.folder, r.reasons) for r in verdict.refly] == [
        ("A", ("too_few_photos",)),
        ("Sector C", ("missing_folder",)),
    ]
    assert "1 expected folder missing" in verdict.headline


def test_without_a_profile_the_verdict_says_completeness_was_not_checked() -> None:
    verdict = judge_site([located("A/1.JPG")], [passed("A/1.JPG")], "done")
    assert any("Folder completeness was not checked" in n for n in verdict.notes)
    with_profile = judge_site([located("A/1.JPG")], [passed("A/1.JPG")], "done", StructureReport())
    assert not any("completeness" in n for n in with_profile.notes)


def test_rules_that_could_not_apply_are_notes_and_change_no_decision() -> None:
    rule = "The site-relative blur rule was not applied: it needs at least 8 photos ..."
    images = [located("A/1.JPG")]
    verdict = judge_site(images, [passed("A/1.JPG")], "done", not_applied=[rule])
    assert verdict.notes[-1] == rule and verdict.to_json()["notes"][-1] == rule
    assert verdict.decision == "pass"
    assert rule not in judge_site(images, [passed("A/1.JPG")], "done").notes


def test_a_site_without_photos_does_not_pass() -> None:
    verdict = judge_site([], [], "done")
    assert verdict.decision == "refly"
    assert "no photos found" in verdict.headline


def test_refly_folders_are_in_alphabetical_order() -> None:
    images = [located("b/1.JPG"), located("A/1.JPG"), located("c/1.JPG")]
    checks = [failed(i.path, "blur") for i in images]
    verdict = judge_site(images, checks, "done")
    assert [r.folder for r in verdict.refly] == ["A", "b", "c"]


def test_a_truncated_photo_is_unreadable_once_and_said_once() -> None:
    image = ImageResult("F/a.JPG", 10, 0, lat=1.0, lon=2.0, error="truncated: ends early")
    checks = ImageChecks.of(
        image.path,
        (CheckOutcome("integrity", False, "Truncated file"), CheckOutcome("blur", True, "Sharp")),
        "preview",
        0.0,
    )
    verdict = judge_photo(image, checks)
    assert verdict.kinds == ("unreadable",)
    assert verdict.messages == ("truncated: ends early",)


def test_an_orbit_gap_is_a_refly_naming_the_orbit_and_a_photo_aimed_away_is_invalid() -> None:
    from qc_tool.domain.coverage import Aim, Coverage, Gap, Orbit

    images = [located("Orbit/DJI_0001.JPG"), located("Orbit/DJI_0002.JPG")]
    coverage = Coverage(
        (1.0, 2.0),
        "estimated",
        (
            Orbit("Orbit", 30.0, 36, 10.0, (), 25.0),
            Orbit("Orbit", 45.0, 32, 50.0, (Gap(190.0, 240.0), Gap(350.0, 20.0)), 25.0),
        ),
        (Aim("Orbit/DJI_0002.JPG", 178.0),),
    )
    verdict = judge_site(images, [passed(i.path) for i in images], "done", coverage=coverage)
    assert verdict.decision == "refly"
    assert "1 orbit with gaps" in verdict.detail and "1 aimed away from the tower" in verdict.detail
    aimed = verdict.photo("Orbit/DJI_0002.JPG")
    assert aimed is not None and aimed.valid is False and aimed.kinds == ("pointing_away",)
    assert aimed.messages == ("Camera aimed 178° away from the tower",)
    (item,) = verdict.refly
    assert item.reasons == ("pointing_away", "orbit_gap")
    assert item.note == "orbit at 45 m: fly again 190° to 240°, 350° to 20°"
    # Without coverage the same photos pass.
    assert judge_site(images, [passed(i.path) for i in images], "done").decision == "pass"


def not_checked(path: str, *outcomes: CheckOutcome) -> ImageChecks:
    why = "not checked: the TIFF/DNG holds no JPEG preview (raw data is not decoded)"
    return ImageChecks.of(path, outcomes, "preview", 0.0, why)


def test_a_photo_with_no_pixels_to_judge_is_not_checked_never_passed() -> None:
    """A DNG without a preview: its checks ran, its pixels could not be judged."""
    image = located("Raw/DJI_0001.DNG")
    checks = not_checked(image.path, CheckOutcome("position", True, "On site"))
    assert checks.valid is None and checks.to_json()["not_checked"] == checks.not_checked
    verdict = judge_photo(image, checks)
    assert verdict.valid is None and verdict.kinds == ()
    assert verdict.messages == (checks.not_checked,)


def test_a_not_checked_photo_that_fails_another_check_is_invalid() -> None:
    image = located("Raw/DJI_0001.DNG")
    checks = not_checked(image.path, CheckOutcome("position", False, "1.2 km from the site"))
    assert checks.valid is False and judge_photo(image, checks).valid is False


def test_not_checked_photos_leave_the_site_incomplete_not_failed() -> None:
    images = [located("Tower/a.JPG"), located("Raw/b.DNG")]
    checks = [passed("Tower/a.JPG"), not_checked("Raw/b.DNG")]
    verdict = judge_site(images, checks, "done", StructureReport())
    assert (verdict.decision, verdict.valid, verdict.invalid, verdict.unchecked) == (
        "incomplete",
        1,
        0,
        1,
    )
    assert verdict.refly == ()
