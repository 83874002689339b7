"""The QC page's map shows the tower, each orbit's ring with its hole, and where cameras looked.

A planted tower flight (demo/tower.py) on the in-process SFTP server: three orbits, the 45 m
one with a 50-degree hole, two photos aimed away. Overrides ``live_app``; the shared fixtures
(``browser``, ``context``, ``page``, ``watch``) drive it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from qc_tool.demo.sites import SiteTruth
from qc_tool.demo.tower import AIMED_AWAY, tower_flight, write_tower_site

from browser.support import LiveApp, Watch, drawn_map, expect, live_tree, log_in

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

SITE = "50080001"


@pytest.fixture(scope="module")
def live_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    base = tmp_path_factory.mktemp("coverage-app")
    sites_dir = base / "sftp-root" / "sites"
    write_tower_site(sites_dir, SITE, tower_flight())
    with live_tree(base, "coverage-test-secret-key", {SITE: SiteTruth(SITE)}) as live:
        yield live


def test_the_map_draws_the_tower_the_rings_their_hole_and_the_camera_lines(
    page: Page, live_app: LiveApp, watch: Watch, output_dir: Path
) -> None:
    log_in(page, live_app.username, live_app.password)
    row = page.get_by_role("row").filter(has=page.get_by_role("cell", name=SITE, exact=True))
    row.get_by_role("button", name="View QC").click()
    expect(page).to_have_url(re.compile(rf"/sites/{SITE}/qc/[^/]+$"))
    expect(page.locator("#verdict")).not_to_have_attribute("data-decision", "checking")
    expect(page.locator("#verdict")).to_have_attribute("data-decision", "refly")
    drawn_map(page)
    # The coverage shapes are SVG paths with class names (the photo markers are on canvas).
    expect(page.locator("#map path.tower-marker")).to_have_count(1)
    expect(page.locator("#map path.orbit-ring")).to_have_count(3)
    expect(page.locator("#map path.orbit-gap")).to_have_count(1)
    expect(page.locator("#coverage")).to_be_visible()
    expect(page.locator("#coverage-tower")).to_contain_text("estimated from the orbits")
    expect(page.locator("#coverage-tower")).to_contain_text(f"{len(AIMED_AWAY)} photos aimed away")
    expect(page.locator("#coverage-orbits li.has-gap")).to_have_count(1)
    expect(page.locator("#coverage-orbits li.has-gap")).to_contain_text("at 45 m")
    # The re-fly list names the orbit, its height and the azimuths to fly again.
    expect(page.locator("#refly")).to_contain_text("orbit at 45 m above take-off: fly again")
    # The altitude profile plots height above take-off (the XMP the checks read).
    expect(page.locator("#profile-card")).to_have_attribute("data-measure", "height")
    expect(page.locator("#profile-title")).to_have_text("Height above take-off over time")
    # These photos have no preview: the pane says they were judged on their top rows.
    page.locator("#images tbody tr").first.click()
    expect(page.locator("#preview-facts")).to_contain_text("its top rows, EXIF thumbnail and end")
    page.screenshot(path=output_dir / "coverage-map.png", full_page=True)
    watch.assert_clean()
