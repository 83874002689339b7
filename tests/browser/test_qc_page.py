"""The QC flow in a real browser: View QC, the progress, and the finished page's verdict, map
and tables, against the generated site's truth."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from qc_tool.demo.sites import SiteTruth

from browser.support import MAIN_SITE, TILE_URL, LiveApp, Watch, drawn_map, expect, log_in

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser


def test_view_qc_ends_on_the_qc_page_with_the_verdict_map_and_folders(
    page: Page, live_app: LiveApp, watch: Watch, output_dir: Path
) -> None:
    truth = live_app.sites[MAIN_SITE]
    log_in(page, live_app.username, live_app.password)

    view_qc(page, MAIN_SITE)

    # The banner's counts, and its reasons against the site's truth.
    assert read_counts(page)["photos"] == str(len(truth.images))
    missing = sorted(i.path for i in truth.images if i.lat is None and i.error is None)
    broken = sorted(i.path for i in truth.images if i.error is not None)
    reasons = page.locator("#verdict-reasons .tag").evaluate_all(
        "tags => Object.fromEntries(tags.map(t => [t.dataset.kind, t.textContent]))"
    )
    assert reasons["missing_gps"] == f"No GPS {len(missing)}"
    assert reasons["unreadable"] == f"Unreadable {len(broken)}"
    expect(page.locator("#verdict")).to_have_attribute("data-decision", "refly")
    expected_folders = folder_rows(truth)
    expect(page.locator("#folders tbody tr")).to_have_count(len(expected_folders))
    assert read_folders(page) == expected_folders
    # The filters find the photos without GPS and the unreadable ones, by the verdict's kinds.
    for kind, paths in (("missing_gps", missing), ("unreadable", broken)):
        page.locator("#filter-kind").select_option(kind)
        shown = page.locator("#images tbody tr:not([hidden])").evaluate_all(
            "rows => rows.map(row => row.dataset.path)"
        )
        assert sorted(shown) == paths, kind
    page.locator("#filter-kind").select_option("")

    drawn = drawn_map(page)
    gps = gps_photos(truth)
    assert len(drawn["markers"]) == len(gps) == truth.gps_points
    assert sorted(_place(m["lat"], m["lon"]) for m in drawn["markers"]) == sorted(gps.values())
    assert all(m["in_view"] for m in drawn["markers"]), "fitted to the site: every point is shown"
    gps_per_folder = [int(row[1]) for row in folder_rows(truth).values() if row[1] != "0"]
    assert sorted(drawn["lines"]) == sorted(gps_per_folder), "one path per folder, every point"
    # The tiles were blocked, so the page says it draws without a background map.
    expect(page.locator("#map-note")).to_be_visible()

    page.screenshot(path=output_dir / "qc-page.png", full_page=True)
    watch.assert_clean()


def test_the_qc_flow_has_no_script_errors_csp_violations_or_outside_requests(
    page: Page, live_app: LiveApp, watch: Watch
) -> None:
    truth = live_app.sites[MAIN_SITE]
    log_in(page, live_app.username, live_app.password)
    view_qc(page, MAIN_SITE)
    drawn = drawn_map(page)

    # Click a marker on the map: its popup (or the preview beside the map) names the photo.
    marker = next(m for m in drawn["markers"] if m["clickable"])
    page.locator("#map").click(position={"x": marker["x"], "y": marker["y"]})
    at = _place(marker["lat"], marker["lon"])
    taken_there = {path for path, place in gps_photos(truth).items() if place == at}
    named = page.locator(".leaflet-popup-content strong, #preview-name").filter(visible=True)
    expect(named.first).to_be_visible()
    assert {name.strip() for name in named.all_text_contents()} <= taken_there

    watch.assert_clean()  # outside requests included: only map tiles were attempted


def test_the_watch_catches_what_it_is_meant_to(page: Page, live_app: LiveApp, watch: Watch) -> None:
    """The watch behind the other tests' "clean" verdicts does see each kind of problem."""
    page.goto("/login")
    with (
        page.expect_event("pageerror"),
        page.expect_console_message(lambda message: "Content Security Policy" in message.text),
    ):
        page.evaluate(
            """() => {
              const inline = document.createElement("script");
              inline.textContent = "window.ranInline = true";
              document.body.appendChild(inline);
              setTimeout(() => { throw new Error("thrown on purpose"); });
            }"""
        )
    tile = TILE_URL.format(z=1, x=0, y=0)
    with page.expect_event("requestfailed"):
        page.evaluate("url => { new Image().src = url; }", tile)

    assert page.evaluate("() => window.ranInline === undefined"), "the CSP stopped the script"
    assert watch.csp_violations
    assert any("thrown on purpose" in error for error in watch.page_errors)
    assert watch.blocked == [tile]
    assert watch.console_errors == [], "the blocked tile's echo is not a console error"


def view_qc(page: Page, site: str) -> None:
    """Click the site's View QC and wait for the finished QC page."""
    row = page.get_by_role("row").filter(has=page.get_by_role("cell", name=site, exact=True))
    row.get_by_role("button", name="View QC").click()
    expect(page).to_have_url(re.compile(rf"/sites/{site}/qc/[^/]+$"))
    # A running scan shows its progress first; a quick one may be done before the page loads.
    expect(page.locator("#progress, #verdict").first).to_be_visible()
    expect(page.locator("#verdict")).not_to_have_attribute("data-decision", "checking")
    expect(page.locator("#progress")).to_be_hidden()


def read_counts(page: Page) -> dict[str, str]:
    """The verdict banner's counts of photos, by label."""
    counts: dict[str, str] = page.locator("#verdict-counts li").evaluate_all(
        """items => Object.fromEntries(items.map(item => [
             item.querySelector(".label").textContent.trim(),
             item.querySelector(".value").textContent.trim(),
           ]))"""
    )
    return counts


FOLDER_COLUMNS = ("Photos", "GPS points")


def read_folders(page: Page) -> dict[str, tuple[str, ...]]:
    """The folder table's counts by folder, read by column heading (other columns left out)."""
    table: dict[str, Any] = page.locator("#folders").evaluate(
        """table => ({
             headings: Array.from(table.tHead.rows[0].cells, cell => cell.textContent.trim()),
             rows: Array.from(table.tBodies[0].rows,
                              row => Array.from(row.cells, cell => cell.textContent.trim())),
           })"""
    )
    where = [table["headings"].index(name) for name in FOLDER_COLUMNS]
    return {row[0]: tuple(row[i] for i in where) for row in table["rows"]}


def folder_rows(truth: SiteTruth) -> dict[str, tuple[str, str]]:
    """The folder table a correct page shows: photos and GPS points."""
    counts: dict[str, list[int]] = {}
    for image in truth.images:
        row = counts.setdefault(image.path.split("/", 1)[0], [0, 0])
        row[0] += 1
        row[1] += image.lat is not None
    return {name: (str(a), str(b)) for name, (a, b) in counts.items()}


def gps_photos(truth: SiteTruth) -> dict[str, tuple[float, float]]:
    """Where each photo with a GPS position was taken, by path."""
    return {
        i.path: _place(i.lat, i.lon)
        for i in truth.images
        if i.lat is not None and i.lon is not None
    }


def _place(lat: float, lon: float) -> tuple[float, float]:
    """A position compared at 1e-7 degrees (about 1 cm): the page's floats against the truth's."""
    return round(lat, 7), round(lon, 7)
