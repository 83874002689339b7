"""The QC page leads with the decision, and its map shows the site (issue 11, items 2, 7-9).

This module serves a site whose photos were all taken around the tower but one, taken 3 km
away: before, the map's first view fitted every point and showed the site as a single dot.
The folders' names differ in case ("antenna-b" between "Cable-Ladder" and "Tower-Scans"), so
an order that is merely sorted (capitals first) is told from an alphabetical one. It overrides
``live_app``; the shared fixtures (``browser``, ``context``, ``page``, ``watch``) then drive it.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from qc_tool.demo.defects import moved
from qc_tool.demo.imagegen import ImageSpec, build_jpeg, quantise_gps
from qc_tool.demo.scene import encode_body
from qc_tool.demo.sftp_server import start_sftp_server
from qc_tool.demo.sites import (
    BODY_QUALITY,
    SiteLayout,
    SiteTruth,
    generate_site,
    make_body,
)

from browser.support import LiveApp, Watch, browser_app, drawn_map, expect, log_in, serving

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser

SITE = "40070001"
LAYOUT = SiteLayout(
    folders=(("Tower-Scans", 10), ("antenna-b", 6), ("Cable-Ladder", 5)),
    without_gps=1,
    distinct_scenes=True,
)
FAR_M = 3000.0
FAR_PATH = "Tower-Scans/DJI_0005.JPG"
USERNAME = "verdict"
PASSWORD = "verdict-password-5"
PHONE = {"width": 390, "height": 844}
DECISIONS = {"pass": "Passed", "refly": "Re-fly needed", "incomplete": "Incomplete"}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("verdict-app")


@pytest.fixture(scope="module")
def live_app(base: Path) -> Iterator[LiveApp]:
    """This module's app on 127.0.0.1: one site, one of whose photos was taken 3 km away."""
    sites_dir = base / "sftp-root" / "sites"
    sites_dir.mkdir(parents=True)
    truth = generate_site(sites_dir, SITE, LAYOUT, body=make_body(LAYOUT))
    truth = move_one_photo_away(sites_dir, truth)
    sftp = start_sftp_server(base / "sftp-root", {USERNAME: PASSWORD}, sites_root="/sites")
    app = browser_app(sftp, base, "verdict-test-secret-key")
    try:
        with serving(app) as url:
            yield LiveApp(url=url, username=USERNAME, password=PASSWORD, sites={SITE: truth})
    finally:
        app.extensions["qc"].close()
        sftp.stop()


def move_one_photo_away(sites_dir: Path, truth: SiteTruth) -> SiteTruth:
    """Rewrite one photo of the site as taken 3 km north-east of where it was."""
    chosen = next(i for i in truth.images if i.path == FAR_PATH)
    assert chosen.lat is not None and chosen.lon is not None and chosen.taken is not None
    lat, lon, alt = quantise_gps(*moved(chosen.lat, chosen.lon, FAR_M, 45.0), chosen.alt or 50.0)
    body = encode_body(*LAYOUT.body_size, seed=4242, quality=BODY_QUALITY)  # a scene of its own
    data = build_jpeg(
        ImageSpec(taken=datetime.fromisoformat(chosen.taken), gps=(lat, lon, alt)), body
    )
    path = sites_dir / SITE / chosen.path
    mtime = path.stat().st_mtime
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))
    far = replace(chosen, lat=lat, lon=lon, alt=alt, size=len(data))
    return replace(truth, images=[far if i is chosen else i for i in truth.images])


# -- helpers ------------------------------------------------------------------------------------


def finished_qc(page: Page, live_app: LiveApp) -> dict[str, Any]:
    """Log in, press View QC, wait for the verdict; returns the job's result document."""
    log_in(page, live_app.username, live_app.password)
    return view_qc(page)


def view_qc(page: Page) -> dict[str, Any]:
    """Press View QC on the sites page and wait for the verdict; returns the result document."""
    row = page.get_by_role("row").filter(has=page.get_by_role("cell", name=SITE, exact=True))
    row.get_by_role("button", name="View QC").click()
    expect(page).to_have_url(re.compile(rf"/sites/{SITE}/qc/[^/]+$"))
    expect(page.locator("#exports")).to_be_visible()
    expect(page.locator("#verdict")).not_to_have_attribute("data-decision", "checking")
    job: dict[str, Any] = page.request.get(
        page.url.replace(f"/sites/{SITE}/qc/", "/api/jobs/")
    ).json()
    assert (job["state"], job["checks_state"]) == ("done", "done")
    document: dict[str, Any] = job["result"]
    return document


def visible_paths(page: Page) -> list[str]:
    paths: list[str] = page.locator("#images tbody tr:not([hidden])").evaluate_all(
        "rows => rows.map(row => row.dataset.path)"
    )
    return paths


def place(lat: Any, lon: Any) -> tuple[float, float]:
    return round(float(lat), 7), round(float(lon), 7)


def alphabetical(names: list[str]) -> list[str]:
    return sorted(names, key=lambda name: (name.casefold(), name))


def page_width(page: Page) -> int:
    width: int = page.evaluate("() => document.documentElement.scrollWidth")
    return width


# Fading: the markers the table's filters leave out are drawn faint.
BRIGHT_MARKERS = """
() => {
  const out = [];
  window.__qcTest.maps[0].eachLayer((layer) => {
    if (layer instanceof L.CircleMarker && layer.options.fillOpacity > 0.5) {
      const at = layer.getLatLng();
      out.push([at.lat, at.lng]);
    }
  });
  return out;
}
"""


def far_photo(document: dict[str, Any]) -> dict[str, Any]:
    """The document's record of the photo taken 3 km away: the one photo outside the site."""
    outside = document["site_area"]["outside"]
    assert [o["path"] for o in outside] == [FAR_PATH], document["site_area"]
    assert 2900 < outside[0]["distance_m"] < 3100
    return next(i for i in document["images"] if i["path"] == FAR_PATH)


# -- tests --------------------------------------------------------------------------------------


def test_the_banner_states_the_decision_and_the_map_fits_the_site_not_the_far_photo(
    page: Page, live_app: LiveApp, watch: Watch, output_dir: Path
) -> None:
    document = finished_qc(page, live_app)
    verdict = document["verdict"]
    far = far_photo(document)

    # The decision first: the banner is the first thing under the title, and says it.
    assert verdict["decision"] == "refly" and "1 outside the site" in verdict["headline"]
    assert far["valid"] is False and far["problems"] == ["outside_site"]
    banner = page.locator("#verdict")
    expect(banner).to_have_attribute("data-decision", "refly")
    expect(page.locator("#verdict-decision")).to_have_text("Re-fly needed")
    detail = verdict["headline"].split(": ", 1)[1]
    expect(page.locator("#verdict-headline")).to_have_text(detail[0].upper() + detail[1:])
    counts = page.locator("#verdict-counts li").evaluate_all(
        """items => Object.fromEntries(items.map(li => [
             li.querySelector(".label").textContent, Number(li.querySelector(".value").textContent)]))"""
    )
    photos = verdict["photos"]
    assert counts == {
        "photos": photos["total"],
        "valid": photos["valid"],
        "invalid": photos["invalid"],
        "not judged": photos["unchecked"],
    }
    assert photos["total"] == len(live_app.sites[SITE].images)
    top = page.evaluate(
        """() => Array.from(document.querySelectorAll("#qc > :not([hidden])"))
                 .filter(e => e.offsetHeight > 0).map(e => e.id)"""
    )
    assert top[:3] == ["verdict", "refly", "review"], top
    # No site profile here: the page says completeness was not checked, and how to set one.
    expect(page.locator("#verdict-notes")).to_contain_text("Folder completeness was not checked")
    expect(page.locator("#verdict-notes")).to_contain_text("QC_SITE_PROFILE")
    # Scan statistics are there, folded away.
    expect(page.locator("#scan-details")).to_be_visible()
    assert page.locator("#scan-details").evaluate("d => d.open") is False
    expect(page.locator("#scan-stats")).to_be_hidden()
    page.locator("#scan-details summary").click()
    expect(page.locator("#scan-stats")).to_contain_text("Connections")
    expect(page.locator("#scan-stats")).to_contain_text("Measuring CPU")
    page.locator("#scan-details").screenshot(path=output_dir / "scan-details.png")
    page.locator("#scan-details summary").click()

    # The first view fits the site's photos; the far one is listed beside the map instead.
    drawn = drawn_map(page)
    far_at = place(far["lat"], far["lon"])
    in_view = {place(m["lat"], m["lon"]): m["in_view"] for m in drawn["markers"]}
    assert in_view.pop(far_at) is False, "the far photo is not fitted"
    assert in_view and all(in_view.values()), "every photo at the site is in the first view"
    listed = page.locator("#far-list li")
    expect(listed).to_have_count(1)
    expect(listed).to_contain_text(far["path"])
    expect(listed).to_contain_text("3.0 km")
    page.screenshot(path=output_dir / "verdict-page.png", full_page=True)

    # Its button shows it (and its preview); "zoom to site" brings the site back.
    listed.get_by_role("button", name=re.compile("^Show")).click()
    expect(page.locator("#preview-name")).to_have_text(far["path"])
    expect(page.locator("#preview-failures")).to_contain_text("Outside site")
    shown = {place(m["lat"], m["lon"]): m["in_view"] for m in drawn_map(page)["markers"]}
    assert shown[far_at] is True
    page.get_by_role("button", name="Zoom to site").click()
    again = {place(m["lat"], m["lon"]): m["in_view"] for m in drawn_map(page)["markers"]}
    assert again.pop(far_at) is False and all(again.values())
    watch.assert_clean()


def test_a_re_fly_folder_click_shows_only_its_photos_in_the_table_and_on_the_map(
    page: Page, live_app: LiveApp, watch: Watch
) -> None:
    document = finished_qc(page, live_app)
    refly = document["verdict"]["refly"]
    items = page.locator("#refly-list li")
    expect(items).to_have_count(len(refly))
    assert items.evaluate_all("lis => lis.map(li => li.dataset.folder)") == [
        r["folder"] for r in refly
    ]
    item = next(r for r in refly if r["photos"])
    page.locator("#refly-list").get_by_role("button", name=item["folder"], exact=True).click()

    assert sorted(visible_paths(page)) == sorted(item["photos"])
    expect(page.locator("#filter-folder")).to_have_value(item["folder"])
    expect(page.locator("#filter-kind")).to_have_value("invalid")
    by_path = {i["path"]: i for i in document["images"]}
    expected = {
        place(by_path[p]["lat"], by_path[p]["lon"])
        for p in item["photos"]
        if by_path[p]["lat"] is not None and not by_path[p]["error"]
    }
    assert {place(*at) for at in page.evaluate(BRIGHT_MARKERS)} == expected
    page.get_by_role("button", name="Show all").click()
    expect(page.locator("#images tbody tr:not([hidden])")).to_have_count(len(document["images"]))
    watch.assert_clean()


def test_filters_name_every_kind_once_and_the_status_sort_puts_the_worst_first(
    page: Page, live_app: LiveApp, watch: Watch
) -> None:
    document = finished_qc(page, live_app)
    verdict = document["verdict"]
    counts = {r["kind"]: r["count"] for r in verdict["reasons"]}
    options = page.locator("#filter-kinds option").evaluate_all(
        "options => options.map(o => [o.value, o.textContent])"
    )
    assert options == [
        [k["kind"], f"{k['label']} ({counts.get(k['kind'], 0)})"] for k in verdict["kinds"]
    ]
    assert {"hovering", "near_duplicate", "integrity", "capture_rules"} <= {o[0] for o in options}
    labels = {k["kind"]: k["label"] for k in verdict["kinds"]}
    for kind in ("outside_site", "missing_gps", "hovering"):
        page.locator("#filter-kind").select_option(kind)
        expected = [i["path"] for i in document["images"] if kind in i["problems"]]
        assert sorted(visible_paths(page)) == sorted(expected), kind
        # Each row's badges: the kind's one name, the same on every row.
        for path in expected:
            badges = page.locator(f'#images tr[data-path="{path}"] td.status .tag')
            assert labels[kind] in badges.all_text_contents()
    for status, valid in (("invalid", False), ("valid", True)):
        page.locator("#filter-kind").select_option(status)
        expected = [i["path"] for i in document["images"] if i["valid"] is valid]
        assert sorted(visible_paths(page)) == sorted(expected), status
    page.locator("#filter-kind").select_option("")

    page.get_by_role("button", name="Status", exact=True).click()
    by_path = {i["path"]: i for i in document["images"]}
    rank = {False: 0, None: 1, True: 2}
    order = [rank[by_path[p]["valid"]] for p in visible_paths(page)]
    assert order == sorted(order) and order[0] == 0, "invalid, then not judged, then valid"
    watch.assert_clean()


def test_folders_are_in_alphabetical_order_everywhere_on_the_page(
    page: Page, live_app: LiveApp, watch: Watch
) -> None:
    document = finished_qc(page, live_app)
    names = alphabetical([f["name"] for f in document["folders"]])
    assert names == ["antenna-b", "Cable-Ladder", "Tower-Scans"]
    options = page.locator("#filter-folder option").evaluate_all("os => os.map(o => o.value)")
    assert options == ["", *names]
    rows = page.locator("#folders tbody tr").evaluate_all("rs => rs.map(r => r.dataset.folder)")
    assert rows == names
    legend = [text.rsplit(" (", 1)[0] for text in page.locator("#legend li").all_text_contents()]
    assert legend == [n for n in names if any(f["name"] == n for f in document["folders"])]
    table = [p.split("/", 1)[0] for p in visible_paths(page)]
    assert table == sorted(table, key=names.index), "the table, unsorted, goes folder by folder"
    watch.assert_clean()


def test_clicking_a_row_brings_its_preview_into_view(
    page: Page, live_app: LiveApp, watch: Watch
) -> None:
    finished_qc(page, live_app)
    row = page.locator("#images tbody tr").nth(6)
    row.scroll_into_view_if_needed()
    preview = page.locator("#preview")
    assert not in_viewport(page, "#preview"), "the preview starts out of view"

    row.click()

    expect(page.locator("#preview-name")).to_have_text(row.get_attribute("data-path") or "")
    page.wait_for_function(f"() => ({IN_VIEWPORT})('#preview')")
    assert preview.is_visible()
    watch.assert_clean()


IN_VIEWPORT = """
(selector) => {
  const r = document.querySelector(selector).getBoundingClientRect();
  return r.top >= -1 && r.bottom <= window.innerHeight + 1;  // a pixel's rounding aside
}
"""


POPUP_INSIDE_MAP = """
() => {
  const popup = document.querySelector("#map .leaflet-popup");
  const map = document.querySelector("#map").getBoundingClientRect();
  if (!popup) return false;
  const r = popup.getBoundingClientRect();
  return r.left >= map.left - 1 && r.right <= map.right + 1;  // a pixel's rounding aside
}
"""


def in_viewport(page: Page, selector: str) -> bool:
    return bool(page.evaluate(f"({IN_VIEWPORT})", selector))


def test_the_printable_report_opens_in_the_browser_with_the_same_banner(
    page: Page, live_app: LiveApp, watch: Watch
) -> None:
    document = finished_qc(page, live_app)
    verdict = document["verdict"]
    href = page.locator('#exports a[data-kind="report"]').get_attribute("href") or ""
    response = page.request.get(href)
    assert response.headers["content-disposition"].startswith("inline")
    with page.context.expect_page() as opened:
        page.locator('#exports a[data-kind="report"]').click()
    report = opened.value
    report.wait_for_load_state()
    expect(report.locator(".verdict-decision")).to_have_text("Re-fly needed")
    expect(report.locator(".verdict h2")).to_contain_text(verdict["headline"].split(": ", 1)[1])
    expect(report.locator(".far")).to_contain_text(far_photo(document)["path"])
    expect(report.locator(".notes")).to_contain_text("Folder completeness was not checked")
    watch.assert_clean()


def test_a_favicon_is_linked_and_served(page: Page, live_app: LiveApp, watch: Watch) -> None:
    page.goto("/login")
    href = page.locator('link[rel="icon"]').get_attribute("href")
    assert href
    icon = page.request.get(href)
    assert icon.ok and icon.headers["content-type"].startswith("image/svg+xml")
    watch.assert_clean()


def test_at_390_px_no_page_scrolls_sideways_and_nothing_covers_a_button(
    browser: Browser, live_app: LiveApp, watch: Watch, output_dir: Path, base: Path
) -> None:
    context = browser.new_context(
        base_url=live_app.url, viewport=PHONE, is_mobile=True, service_workers="block"
    )
    watch.attach(context)
    try:
        page = context.new_page()
        log_in(page, live_app.username, live_app.password)
        expect(page.get_by_role("button", name="View QC").first).to_be_visible()
        widths = {"sites": page_width(page)}
        page.screenshot(path=output_dir / "sites-390.png", full_page=True)
        for button in page.get_by_role("button", name="View QC").all():
            assert uncovered(page, button), "something covers a View QC button"

        document = view_qc(page)
        drawn_map(page)
        widths["qc"] = page_width(page)
        page.screenshot(path=output_dir / "verdict-page-390.png", full_page=True)
        # A photo chosen in the table opens its popup on the map, all of it inside the map.
        page.locator("#images tbody tr").first.click()
        expect(page.locator("#map .leaflet-popup")).to_be_visible()
        page.wait_for_function(POPUP_INSIDE_MAP)
        for button in page.locator("#refly-list button, #far-list button").all():
            button.scroll_into_view_if_needed()
            assert uncovered(page, button)
        report = page.locator('#exports a[data-kind="report"]').get_attribute("href") or ""

        page.goto(report)
        expect(page.locator(".verdict")).to_be_visible()
        widths["report"] = page_width(page)
        page.screenshot(path=output_dir / "report-390.png", full_page=True)

        page.goto("/uploads")
        page.locator('input[type="file"]').set_input_files(
            files=[
                {
                    "name": "photos.zip",
                    "mimeType": "application/zip",
                    "buffer": zipped(base / "sftp-root" / "sites" / SITE, document),
                }
            ]
        )
        page.get_by_role("button", name="Upload and check").click()
        expect(page.locator("#upload")).to_have_attribute("data-state", "done", timeout=30_000)
        widths["upload result"] = page_width(page)
        page.screenshot(path=output_dir / "upload-result-390.png", full_page=True)
        page.goto("/uploads")
        expect(page.locator("#uploads")).to_be_visible()
        widths["uploads"] = page_width(page)
    finally:
        context.close()
    assert all(width <= PHONE["width"] for width in widths.values()), widths
    watch.assert_clean()


def uncovered(page: Page, button: Any) -> bool:
    """Whether a click at the middle of ``button`` reaches it (no other element on top)."""
    return bool(
        button.evaluate(
            """b => { const r = b.getBoundingClientRect();
                      const top = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
                      return top !== null && (top === b || b.contains(top)); }"""
        )
    )


def zipped(site_dir: Path, document: dict[str, Any]) -> bytes:
    """A ZIP of a few of the site's photos, as a technician's card would hold them."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for image in document["images"][:4]:
            archive.write(site_dir / image["path"], image["path"])
    return buffer.getvalue()
