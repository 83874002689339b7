"""The results page of a ZIP upload: the QC page's banner, its map and photo previews (issue 11).

A small card-like ZIP (two folders: sharp photos, one without GPS, one under-exposed, one that
is not a JPEG) is uploaded through the form as a person does; the page then shows the
verdict of the upload's result document as the QC page does (verdict.js), its located photos
on the map (mapview.js) and a photo's preview (preview.js, from the upload's preview URL).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from zips import photo

from browser.support import LiveApp, Watch, drawn_map, expect, log_in

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
NO_GPS = "Tower/DJI_0004.JPG"
DARK = "Base/DJI_0007.JPG"
NOT_JPEG = "Base/DJI_0009.JPG"


def card_zip() -> bytes:
    files = {f"CARD-1/Tower/DJI_{i:04d}.JPG": photo(i) for i in range(1, 4)}
    files[f"CARD-1/{NO_GPS}"] = photo(4, gps=False)
    files["CARD-1/Base/DJI_0005.JPG"] = photo(5, preview=True)
    files["CARD-1/Base/DJI_0006.JPG"] = photo(6)
    files[f"CARD-1/{DARK}"] = photo(7, defect="dark")
    files[f"CARD-1/{NOT_JPEG}"] = b"not a jpeg at all" * 30
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def uploaded(page: Page, live_app: LiveApp) -> dict[str, Any]:
    """Log in, upload the card's ZIP, wait for the results; returns GET /api/uploads/<id>."""
    log_in(page, live_app.username, live_app.password)
    page.goto("/uploads")
    page.locator('input[type="file"]').set_input_files(
        files=[{"name": "CARD-1.zip", "mimeType": "application/zip", "buffer": card_zip()}]
    )
    page.get_by_role("button", name="Upload and check").click()
    expect(page.locator("#upload")).to_have_attribute("data-state", "done", timeout=30_000)
    state: dict[str, Any] = page.request.get(page.url.replace("/uploads/", "/api/uploads/")).json()
    assert state["state"] == "done"
    return state


def test_the_results_page_shows_the_banner_the_map_and_a_preview(
    page: Page, live_app: LiveApp, watch: Watch, output_dir: Path
) -> None:
    document = uploaded(page, live_app)["result"]
    verdict = document["verdict"]
    assert verdict["decision"] == "refly"
    assert {NO_GPS, DARK, NOT_JPEG} <= set(verdict["invalid"])

    # The banner, as verdict.js draws it (the re-fly folders become buttons only then).
    expect(page.locator("#verdict")).to_have_attribute("data-decision", "refly")
    expect(page.locator("#verdict-decision")).to_have_text("Re-fly needed")
    detail = verdict["detail"]
    expect(page.locator("#verdict-headline")).to_have_text(detail[0].upper() + detail[1:])
    expect(page.locator("#verdict-notes")).to_contain_text(
        "The site-relative blur rule was not applied"
    )
    expect(page.locator("#refly-list button.refly-folder")).to_have_count(2)
    expect(page.locator(f'#photos tr[data-path="{NO_GPS}"]')).to_have_attribute(
        "data-valid", "false"
    )

    # The map: one marker per readable photo with a position, where the document puts it.
    located = [i for i in document["images"] if i["error"] is None and i["lat"] is not None]
    assert len(located) == len(document["images"]) - 2  # not the GPS-less one, not the non-JPEG
    drawn = drawn_map(page)
    assert sorted((round(m["lat"], 6), round(m["lon"], 6)) for m in drawn["markers"]) == sorted(
        (round(i["lat"], 6), round(i["lon"], 6)) for i in located
    )
    assert all(m["in_view"] for m in drawn["markers"])

    # A row of the table shows its preview: a small JPEG the server made from the upload.
    page.locator(f'#photos tr[data-path="{DARK}"]').click()
    expect(page.locator("#preview-name")).to_have_text(DARK)
    image = page.locator("#preview-img")
    expect(image).to_be_visible()
    assert image.evaluate("img => img.complete && img.naturalWidth > 0")
    expect(page.locator("#preview-failures")).to_contain_text("Exposure")
    # A photo without GPS has no marker, but its row still shows it.
    page.locator(f'#photos tr[data-path="{NO_GPS}"]').click()
    expect(page.locator("#preview-name")).to_have_text(NO_GPS)
    expect(page.locator("#preview-failures")).to_contain_text("No GPS")
    expect(page.locator("#preview-img")).to_be_visible()

    # A re-fly folder leaves only its photos to fly again in the table; "Show all" undoes it.
    page.locator('#refly-list button[data-folder="Base"]').click()
    visible = page.locator("#photos tbody tr:visible")
    base = [p for p in verdict["invalid"] if p.startswith("Base/")]
    expect(visible).to_have_count(len(base))
    page.locator("#photos-all").click()
    expect(visible).to_have_count(len(document["images"]))
    page.screenshot(path=output_dir / "upload-result.png", full_page=True)
    watch.assert_clean()


def test_at_390_px_the_results_page_does_not_scroll_sideways(
    browser: Browser,
    context: BrowserContext,
    page: Page,
    live_app: LiveApp,
    watch: Watch,
    output_dir: Path,
) -> None:
    uploaded(page, live_app)
    phone = browser.new_context(
        base_url=live_app.url, viewport=PHONE, is_mobile=True, service_workers="block"
    )
    watch.attach(phone)
    try:
        phone.add_cookies(context.cookies())  # the same login
        small = phone.new_page()
        small.goto(page.url)
        expect(small.locator("#verdict-decision")).to_have_text("Re-fly needed")
        expect(small.locator("#refly-list button.refly-folder")).to_have_count(2)  # drawn by JS
        drawn_map(small)
        small.locator(f'#photos tr[data-path="{DARK}"]').click()
        expect(small.locator("#preview-img")).to_be_visible()
        width: int = small.evaluate("() => document.documentElement.scrollWidth")
        small.screenshot(path=output_dir / "upload-result-390-map.png", full_page=True)
    finally:
        phone.close()
    assert width <= PHONE["width"]
    watch.assert_clean()
