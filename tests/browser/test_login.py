"""Logging in and out in a real browser."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from browser.support import MAIN_SITE, OTHER_SITE, LiveApp, Watch, expect, log_in

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

pytestmark = pytest.mark.browser


def test_wrong_password_shows_the_error_and_the_right_one_lands_on_the_sites(
    page: Page, live_app: LiveApp, watch: Watch
) -> None:
    log_in(page, live_app.username, "not-the-password")

    expect(page.get_by_role("alert")).to_contain_text("Wrong username or password.")
    assert page.url == f"{live_app.url}/login"
    expect(page.get_by_label("Username")).to_have_value(live_app.username)
    expect(page.get_by_label("Password")).to_have_value("")  # never sent back
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)

    page.get_by_label("Password").fill(live_app.password)
    page.get_by_role("button", name="Log in").click()

    expect(page).to_have_url(f"{live_app.url}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sites")
    expect(page.locator("header .user")).to_have_text(live_app.username)
    for site in (MAIN_SITE, OTHER_SITE):
        row = page.get_by_role("row").filter(has=page.get_by_role("cell", name=site, exact=True))
        expect(row.get_by_role("button", name="View QC")).to_be_visible()
    watch.assert_clean()


def test_logout_ends_the_session(
    page: Page, context: BrowserContext, live_app: LiveApp, watch: Watch
) -> None:
    log_in(page, live_app.username, live_app.password)
    expect(page.get_by_role("heading", level=1)).to_have_text("Sites")
    cookies_while_logged_in = context.cookies()

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(f"{live_app.url}/login")
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in")

    # Back to the sites page: the browser asks again (no-store) and is sent to the login.
    page.go_back()
    expect(page).to_have_url(f"{live_app.url}/login")
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in")
    expect(page.get_by_role("button", name="View QC")).to_have_count(0)

    # The old cookie, replayed, opens nothing: the login is gone on the server, not only here.
    context.clear_cookies()
    context.add_cookies(cookies_while_logged_in)  # type: ignore[arg-type]
    assert context.request.get("/api/sites").status == 401
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login$"))
    watch.assert_clean()
