"""Helpers of the browser tests: finding and launching chromium, and watching what pages do.

A ``Watch`` records, per browser context, everything a clean run must not have: JavaScript
errors, console errors, CSP violations, server errors, and requests that tried to leave the
app's origin (those are aborted, so the tests also show the pages work offline apart from map
tiles).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from flask import Flask
from qc_tool import create_app
from qc_tool.demo.sftp_server import SftpServerHandle
from qc_tool.demo.sites import SOUTH_WEST_LAYOUT, SiteLayout, SiteTruth
from werkzeug.serving import make_server

if TYPE_CHECKING:
    from playwright.sync_api import (
        BrowserContext,
        ConsoleMessage,
        Page,
        Request,
        Response,
        Route,
    )

try:
    from playwright.sync_api import expect
except ImportError:  # the ``browser`` fixture then skips (or fails under QC_REQUIRE_BROWSER=1)
    expect = None  # type: ignore[assignment]

REQUIRE_ENV = "QC_REQUIRE_BROWSER"
WAIT = timedelta(seconds=10)  # for any one step; a scan of the main site takes well under 1 s

# Debian's chromium, headless, as root, with no network: without the background-networking
# flags it keeps trying (and failing) to reach Google's services at every start.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
)

# The site the QC tests open: three folders, a few photos without GPS (one in four of those has
# a GPS IFD of 0/0 rationals) and, added by the fixture, three broken files in the last folder.
# Small bodies, so it is written and scanned in well under a second; a scene of its own per
# photo (~0.25 s more), so the photo checks do not call every photo a duplicate of the others.
MAIN_SITE = "10069746"
MAIN_LAYOUT = SiteLayout(
    folders=(("Tower-Scans", 12), ("Antenna-Sector-A", 8), ("Site-Sign", 4)),
    without_gps=3,
    distinct_scenes=True,
)
OTHER_SITE = "20031877"  # so the sites list has more than one row to pick from
OTHER_LAYOUT = SiteLayout(folders=(("Tower-Scans", 3),), origin=SOUTH_WEST_LAYOUT.origin)

# The tile template the live app is given: a real outside host, so the tests see the map draw
# its points while every tile request is blocked.
TILE_URL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
USERNAME, PASSWORD = "tech", "tech-password-1"  # the one user of live_tree's server

# Runs in every document before the page's own scripts (Playwright injects it past the CSP):
# - reports CSP violations to the console, worded so the watch can tell them apart;
# - keeps each Leaflet map the page makes, so the tests can ask what is drawn on it: the QC
#   page draws its markers on a canvas, so there is no DOM element per marker to count.
# ``__qcTest.mapSummary()`` describes the first map: its markers (circle or icon) with their
# place in the map's box and whether a click there reaches them (not another folder's line or
# marker drawn over them), its lines, and how much the overlay pane has painted (canvas pixels
# or SVG paths).
WATCH_SCRIPT = """
(() => {
  const maps = [];
  function mapSummary() {
    const map = maps[0];
    if (!map) { return null; }
    const view = map.getBounds();
    const layers = [];
    map.eachLayer((layer) => { layers.push(layer); });
    // The layer a click at ``point`` reaches: a canvas hands it to the last-drawn layer there.
    function topAt(point) {
      const hits = layers.filter((layer) => layer.options.interactive !== false &&
        typeof layer._containsPoint === "function" &&
        layer._containsPoint(map.latLngToLayerPoint(map.containerPointToLatLng(point))));
      return hits[hits.length - 1];
    }
    const markers = [];
    const lines = [];
    layers.forEach((layer) => {
      if (layer instanceof L.CircleMarker || layer instanceof L.Marker) {
        const at = layer.getLatLng();
        const point = map.latLngToContainerPoint(at);
        const clickable = layer instanceof L.Marker || topAt(point) === layer;
        markers.push({ lat: at.lat, lon: at.lng, in_view: view.contains(at),
                       x: point.x, y: point.y, clickable });
      } else if (layer instanceof L.Polyline) {
        lines.push(layer.getLatLngs().length);
      }
    });
    const overlay = map.getPanes().overlayPane;
    let painted = overlay.querySelectorAll("path").length;
    overlay.querySelectorAll("canvas").forEach((canvas) => {
      const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
      for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] > 0) { painted += 1; } }
    });
    return { markers, lines, painted };
  }
  Object.defineProperty(window, "__qcTest", { value: { maps, mapSummary } });
  document.addEventListener("securitypolicyviolation", (event) => {
    console.error("qc-test CSP violation: " + event.violatedDirective + " blocked " +
      (event.blockedURI || "inline code") + " at " + event.sourceFile + ":" + event.lineNumber);
  });
  let leaflet;
  Object.defineProperty(window, "L", {
    configurable: true,
    get() { return leaflet; },
    set(value) {
      leaflet = value;
      if (value && value.Map && !value.Map.__qcHooked) {
        value.Map.__qcHooked = true;
        value.Map.addInitHook(function () { maps.push(this); });
      }
    },
  });
})();
"""


@dataclass(frozen=True)
class LiveApp:
    """The running app: where it is, who may log in, and what each site holds."""

    url: str
    username: str
    password: str
    sites: dict[str, SiteTruth]


def chromium_path() -> str | None:
    """Debian's chromium on PATH (never a browser build of Playwright's own)."""
    return shutil.which("chromium")


def unavailable_reason() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (pip install -r requirements-dev.txt)"
    if chromium_path() is None:
        return "chromium is not on PATH (apt-get install chromium)"
    return None


def browser_required() -> bool:
    return os.environ.get(REQUIRE_ENV) == "1"


def tile_pattern(template: str = TILE_URL) -> re.Pattern[str]:
    """A regex matching the URLs Leaflet makes from a tile template."""
    pattern = re.escape(template)
    for name, value in (("s", "[a-z]"), ("z", r"\d+"), ("x", r"\d+"), ("y", r"\d+")):
        pattern = pattern.replace(re.escape("{" + name + "}"), value)
    pattern = pattern.replace(re.escape("{r}"), "(@2x)?")
    return re.compile(pattern + r"\Z")


@dataclass
class Watch:
    """What the pages of one browser context did that a clean run must not do."""

    origin: str  # the app's "http://127.0.0.1:PORT": the only place requests may go
    blocked: list[str] = field(default_factory=list)  # every other request, aborted
    console_errors: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)  # app responses with status >= 500
    # Scripts, styles, images and fetches of the app that failed (4xx, or no answer). A page
    # itself may answer 4xx on purpose (a refused login is a 401 page): that is not counted.
    failed_loads: list[str] = field(default_factory=list)

    def attach(self, context: BrowserContext) -> None:
        """Block outside requests in ``context`` and listen to each page it opens."""
        context.add_init_script(WATCH_SCRIPT)
        context.route("**/*", self._route)
        context.on("page", self._listen)

    def outside_requests(self) -> list[str]:
        """Blocked requests other than map tiles (tiles are optional: the map draws without)."""
        tiles = tile_pattern()
        return [url for url in self.blocked if not tiles.match(url)]

    def problems(self) -> dict[str, list[str]]:
        """Everything that should not have happened, by kind; only the kinds that happened."""
        found = {
            "console errors": self.console_errors,
            "CSP violations": self.csp_violations,
            "JavaScript errors": self.page_errors,
            "server errors": self.server_errors,
            "failed loads": self.failed_loads,
            "outside requests (not tiles)": self.outside_requests(),
        }
        return {kind: items for kind, items in found.items() if items}

    def assert_clean(self) -> None:
        assert not self.problems(), f"the pages misbehaved: {self.problems()}"

    def _route(self, route: Route) -> None:
        url = route.request.url
        if _origin(url) == self.origin:
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort("blockedbyclient")

    def _listen(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.page_errors.append(f"{error.name}: {error}"))
        page.on("response", self._response)
        page.on("requestfailed", self._request_failed)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        text = message.text
        source = message.location.get("url", "")
        if text.startswith("Failed to load resource"):
            return  # chromium's echo of a failed load: judged by _response / _request_failed
        if "Content Security Policy" in text or text.startswith("qc-test CSP violation"):
            self.csp_violations.append(text)
        else:
            self.console_errors.append(f"{text} ({source})")

    def _response(self, response: Response) -> None:
        request = response.request
        what = f"{response.status} {request.method} {request.resource_type} {response.url}"
        if response.status >= 500:
            self.server_errors.append(what)
        elif response.status >= 400 and request.resource_type != "document":
            self.failed_loads.append(what)

    def _request_failed(self, request: Request) -> None:
        failure = request.failure or ""
        # Ours (blocked), or cut off by the page moving on (a poll in flight during a reload).
        if request.url in self.blocked or failure == "net::ERR_ABORTED":
            return
        self.failed_loads.append(
            f"{failure} {request.method} {request.resource_type} {request.url}"
        )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def log_in(page: Page, username: str, password: str) -> None:
    """Fill and submit the login form as a person does."""
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def drawn_map(page: Page) -> dict[str, Any]:
    """What the page's first Leaflet map shows, once it exists and has painted something."""
    page.wait_for_function(
        "() => { const s = window.__qcTest.mapSummary(); return s !== null && s.painted > 0; }"
    )
    summary: dict[str, Any] = page.evaluate("() => window.__qcTest.mapSummary()")
    return summary


def browser_app(sftp: SftpServerHandle, base: Path, secret: str) -> Flask:
    """The app the browser tests drive: ``sftp``'s sites, its cache and known_hosts under
    ``base``, offline map tiles. Close it with ``app.extensions["qc"].close()``."""
    return create_app(
        {
            "TESTING": True,
            "QC_SFTP_HOST": sftp.host,
            "QC_SFTP_PORT": sftp.port,
            "QC_SITES_ROOT": sftp.sites_root,
            "QC_KNOWN_HOSTS": sftp.write_known_hosts(base / "known_hosts"),
            "QC_CACHE_DIR": base / "cache",
            "QC_SECRET_KEY": secret,
            "QC_PRODUCTION": 0,
            "QC_TILE_URL": TILE_URL,
            # Parse in the scan's thread: a few dozen headers do not pay for processes.
            "QC_PARSE_WORKERS": 0,
        }
    )


@contextmanager
def live_tree(
    base: Path, secret: str, sites: dict[str, SiteTruth] | None = None
) -> Iterator[LiveApp]:
    """The sites written under ``base/sftp-root/sites`` on an in-process SFTP server (one
    user, ``USERNAME``), and the app serving them on 127.0.0.1; all stopped afterwards."""
    from qc_tool.demo.sftp_server import start_sftp_server

    sftp = start_sftp_server(base / "sftp-root", {USERNAME: PASSWORD}, sites_root="/sites")
    try:
        app = browser_app(sftp, base, secret)
        try:
            with serving(app) as url:
                yield LiveApp(url=url, username=USERNAME, password=PASSWORD, sites=sites or {})
        finally:
            app.extensions["qc"].close()  # cancel and wait for the scans still running
    finally:
        sftp.stop()


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    """Serve ``app`` with werkzeug (threaded) on a free port of 127.0.0.1; yields its URL."""
    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, name="browser-test-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http.server_port}"
    finally:
        http.shutdown()
        thread.join(timeout=10)
        http.server_close()
