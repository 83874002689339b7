"""Odd names in a real browser: the sites page offers no View QC for a site whose name is not
UTF-8, and the QC page's folder table shows each skipped folder, escaped, with its reason."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from names_support import BAD_FILES, BAD_FOLDERS, BAD_SITE_SHOWN, SITE, make_odd_sites

from browser.support import LiveApp, Watch, expect, live_tree, log_in

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    """This module's app on 127.0.0.1, serving the odd-names tree."""
    base = tmp_path_factory.mktemp("names-app")
    make_odd_sites(base / "sftp-root" / "sites")
    with live_tree(base, "names-test-secret-key") as live:
        yield live


def test_odd_names_are_shown_escaped_and_cost_only_their_own_rows(
    page: Page, live_app: LiveApp, watch: Watch
) -> None:
    log_in(page, live_app.username, live_app.password)
    bad = page.get_by_role("row").filter(
        has=page.get_by_role("cell", name=BAD_SITE_SHOWN, exact=True)
    )
    expect(bad).to_contain_text("the name is not UTF-8 (shown escaped)")
    expect(bad.get_by_role("button")).to_have_count(0)

    row = page.get_by_role("row").filter(has=page.get_by_role("cell", name=SITE, exact=True))
    row.get_by_role("button", name="View QC").click()
    expect(page).to_have_url(re.compile(rf"/sites/{SITE}/qc/[^/]+$"))
    expect(page.locator("#folders-card")).to_be_visible()
    rows = page.locator("#folders tbody tr")
    expect(rows).to_have_count(2 + len(BAD_FOLDERS))
    for shown, reason in BAD_FOLDERS.values():
        skipped = page.locator(f'#folders tbody tr[data-folder="{_css(shown)}"]')
        expect(skipped).to_have_text(f"{shown}skipped {reason}")
    tower = page.locator('#folders tbody tr[data-folder="Tower"] td')
    expect(tower.nth(1)).to_have_text("6")
    expect(tower.last).to_contain_text("Unreadable")  # why the folder has invalid photos
    # Each odd file is an unreadable photo of the table, found by its reason.
    page.locator("#filter-kind").select_option("unreadable")
    for shown, reason in BAD_FILES.values():
        page.locator("#filter-text").fill(reason)
        row = page.locator(f'#images tbody tr[data-path="{_css(f"Tower/{shown}")}"]')
        expect(row).to_be_visible()
    watch.assert_clean()


def _css(value: str) -> str:
    """``value`` inside a double-quoted CSS attribute selector."""
    return value.replace("\\", "\\\\").replace('"', '\\"')
