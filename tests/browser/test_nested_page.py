"""A drone card copied as it is, in a real browser: the QC page's folder table says how many
photos came from subfolders, and lists the other files and what was not searched on demand."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from integration.test_nested_folders import OTHERS, PHOTOS, SITE, add_links, make_card

from browser.support import LiveApp, Watch, expect, live_tree, log_in

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    """This module's app on 127.0.0.1, serving the card site."""
    base = tmp_path_factory.mktemp("nested-app")
    make_card(base / "sftp-root" / "sites" / SITE)
    add_links(base / "sftp-root" / "sites" / SITE)
    with live_tree(base, "nested-test-secret-key") as live:
        yield live


def test_the_folder_table_shows_subfolder_photos_and_other_files_on_demand(
    page: Page, live_app: LiveApp, watch: Watch
) -> None:
    log_in(page, live_app.username, live_app.password)
    row = page.get_by_role("row").filter(has=page.get_by_role("cell", name=SITE, exact=True))
    row.get_by_role("button", name="View QC").click()
    expect(page).to_have_url(re.compile(rf"/sites/{SITE}/qc/[^/]+$"))
    card = page.locator('#folders tbody tr[data-folder="Card"]')
    expect(card.locator("td.num").nth(0)).to_have_text(str(len(PHOTOS)))
    expect(card.locator("td.subfolders")).to_have_text(str(len(PHOTOS) - 1))
    others = card.locator("td.others details")
    expect(others.locator("summary")).to_have_text("3 files, 3 not searched")
    listed = others.locator("li")
    expect(listed.first).not_to_be_visible()  # on demand: closed until asked
    others.locator("summary").click()
    expect(listed).to_have_count(len(OTHERS) + 3)
    for path in OTHERS:
        expect(others).to_contain_text(path)
    expect(others).to_contain_text("Card/DCIM/100MEDIA/Loop: not searched, a symbolic link")
    plain = page.locator('#folders tbody tr[data-folder="Plain"]')
    expect(plain.locator("td.subfolders")).to_have_text("")
    expect(plain.locator("td.others")).to_have_text("")
    # The photo table names a photo by its path inside the folder, subfolders and all.
    deep = page.locator('#images tbody tr[data-path="Card/DCIM/100MEDIA/DJI_0001.JPG"]')
    expect(deep.locator("td.path")).to_have_text("DCIM/100MEDIA/DJI_0001.JPG")
    watch.assert_clean()
