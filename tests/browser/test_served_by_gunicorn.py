"""The QC page in chromium, served as start_qc_tool.sh serves it: gunicorn, its threads.

The other browser tests use werkzeug's server, which is enough for what a page shows; here the
threads matter. A page's previews arrive on whichever of gunicorn's threads is free, and every
one must reach the login's SFTP connection (issue 11, item 6).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect
from qc_tool.demo.sftp_server import start_sftp_server
from qc_tool.demo.sites import SiteLayout, generate_site, make_body

from bench.load import app_settings, start_gunicorn
from browser.support import LiveApp, log_in

SITE = "50000001"
LAYOUT = SiteLayout(folders=(("Tower-Scans", 16), ("Antenna-Sector-A", 8)), without_gps=1)
USERNAME, PASSWORD = "gunicorn-tech", "gunicorn-tech-password-3"
PREVIEWS, AT_ONCE = 48, 8


@pytest.fixture(scope="module")
def live_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    """The app under gunicorn with start_qc_tool.sh's config, on the in-process SFTP server."""
    base = tmp_path_factory.mktemp("gunicorn-app")
    sites = base / "sftp-root" / "sites"
    sites.mkdir(parents=True)
    truth = generate_site(sites, SITE, LAYOUT, body=make_body(LAYOUT))
    with start_sftp_server(base / "sftp-root", {USERNAME: PASSWORD}, sites_root="/sites") as sftp:
        settings = app_settings(
            sftp.port,
            sftp.sites_root,
            sftp.write_known_hosts(base / "known_hosts"),
            base / "cache",
            QC_PRODUCTION="0",  # plain http on loopback: cookies without Secure
            QC_TILE_URL="",
        )
        app = start_gunicorn(settings, base / "gunicorn.log")
        try:
            yield LiveApp(app.url, USERNAME, PASSWORD, {SITE: truth})
        finally:
            app.stop()


def test_the_page_states_its_verdict_and_48_previews_8_at_a_time_all_succeed(
    page: Page, live_app: LiveApp
) -> None:
    log_in(page, live_app.username, live_app.password)
    row = page.get_by_role("row").filter(has=page.get_by_role("cell", name=SITE, exact=True))
    row.get_by_role("button", name="View QC").click()
    expect(page).to_have_url(re.compile(rf"/sites/{SITE}/qc/[^/]+$"))
    job_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("#verdict")).not_to_have_attribute("data-decision", "checking")
    document = page.request.get(f"/api/jobs/{job_id}").json()["result"]
    decision = document["verdict"]["decision"]
    expect(page.locator("#verdict")).to_have_attribute("data-decision", decision)
    expect(page.locator("#verdict-decision")).to_have_text(document["verdict"]["label"])

    # 48 different previews (two sizes of 24 photos), fetched by the page 8 at a time.
    paths = [i["path"] for i in document["images"]]
    urls = [
        f"/sites/{SITE}/qc/{job_id}/preview?path={path}&size={size}"
        for path in paths
        for size in ("thumb", "large")
    ][:PREVIEWS]
    assert len(urls) == PREVIEWS
    statuses = page.evaluate(
        """async ([urls, atOnce]) => {
            const statuses = new Array(urls.length);
            let next = 0;
            async function worker() {
              while (next < urls.length) {
                const i = next++;
                const reply = await fetch(encodeURI(urls[i]));
                statuses[i] = reply.status;
              }
            }
            await Promise.all(Array.from({ length: atOnce }, worker));
            return statuses;
        }""",
        [urls, AT_ONCE],
    )
    assert [s for s in statuses if s != 200] == [], statuses
