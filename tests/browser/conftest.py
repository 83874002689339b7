"""Fixtures of the browser tests: the real app over HTTP on 127.0.0.1, and Debian's chromium.

One live app (and one chromium) serves the whole session: starting them is most of the cost of
a browser test. Each test gets a fresh browser context (no cookies, its own watch), so logins
do not leak between tests. The app talks to the in-process SFTP server, which serves two small
generated sites whose truth the tests compare the pages against.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from qc_tool.demo.sftp_server import start_sftp_server
from qc_tool.demo.sites import add_broken_files, generate_site, make_body

from browser.support import (
    CHROMIUM_ARGS,
    MAIN_LAYOUT,
    MAIN_SITE,
    OTHER_LAYOUT,
    OTHER_SITE,
    REQUIRE_ENV,
    WAIT,
    LiveApp,
    Watch,
    browser_app,
    browser_required,
    chromium_path,
    expect,
    serving,
    unavailable_reason,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

USERNAME = "tech"
PASSWORD = "tech-password-1"

_CALL_FAILED = pytest.StashKey[bool]()


@pytest.fixture(scope="session")
def output_dir(pytestconfig: pytest.Config) -> Path:
    """test-output/browser/ in the repository: screenshots of the pages (ignored by git).

    Failure screenshots of an earlier run are removed, so what is there belongs to this run.
    """
    path = pytestconfig.rootpath / "test-output" / "browser"
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*-failed.png"):
        old.unlink()
    return path


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's chromium, headless, driven by Playwright.

    Skips when playwright or chromium is missing, unless QC_REQUIRE_BROWSER=1 (CI), where that
    is a failure instead.
    """
    reason = unavailable_reason()
    if reason is not None:
        if browser_required():
            pytest.fail(
                f"{REQUIRE_ENV}=1 but the browser tests cannot run: {reason}", pytrace=False
            )
        pytest.skip(f"browser unavailable: {reason}")
    from playwright.sync_api import sync_playwright

    expect.set_options(timeout=WAIT.total_seconds() * 1000)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path(), args=list(CHROMIUM_ARGS), headless=True
        )
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def live_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    """The app from ``create_app`` served by werkzeug on a free port of 127.0.0.1."""
    base = tmp_path_factory.mktemp("browser-app")
    sites_dir = base / "sftp-root" / "sites"
    sites_dir.mkdir(parents=True)
    body = make_body(MAIN_LAYOUT)
    main = generate_site(sites_dir, MAIN_SITE, MAIN_LAYOUT, body=body)
    main.images += add_broken_files(sites_dir, MAIN_SITE, "Site-Sign", 5, body)
    other = generate_site(sites_dir, OTHER_SITE, OTHER_LAYOUT, body=body, seed=1)

    sftp = start_sftp_server(base / "sftp-root", {USERNAME: PASSWORD}, sites_root="/sites")
    try:
        app = browser_app(sftp, base, "browser-test-secret-key")
        try:
            with serving(app) as url:
                yield LiveApp(
                    url=url,
                    username=USERNAME,
                    password=PASSWORD,
                    sites={MAIN_SITE: main, OTHER_SITE: other},
                )
        finally:
            app.extensions["qc"].close()  # cancel and wait for the scans still running
    finally:
        sftp.stop()


@pytest.fixture
def watch(live_app: LiveApp) -> Watch:
    return Watch(origin=live_app.url)


@pytest.fixture
def context(browser: Browser, live_app: LiveApp, watch: Watch) -> Iterator[BrowserContext]:
    """A fresh browser context (no cookies) whose pages are watched and kept on 127.0.0.1."""
    ctx = browser.new_context(
        base_url=live_app.url, viewport={"width": 1280, "height": 900}, service_workers="block"
    )
    ctx.set_default_timeout(WAIT.total_seconds() * 1000)
    watch.attach(ctx)
    yield ctx
    ctx.close()


@pytest.fixture
def page(
    context: BrowserContext, output_dir: Path, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A page of ``context``; when the test fails, its screenshot goes to test-output/browser/."""
    opened = context.new_page()
    yield opened
    if request.node.stash.get(_CALL_FAILED, False) and not opened.is_closed():
        opened.screenshot(path=output_dir / f"{request.node.name}-failed.png", full_page=True)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    """Remember whether the test body failed, for the ``page`` fixture's screenshot."""
    report = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    return report
