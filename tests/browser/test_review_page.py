"""The live QC review page in a real browser: progress from the job's events, the linked map,
table and preview, filters, sorting, the altitude profile and gaps, and every export.

This module serves its own site, with photo defects planted (blur, under-exposure, a near
duplicate, a photo far outside the site, a truncated file) and one photo removed from a
folder's numbering, so every part of the review has something to show. It overrides
``live_app``; the shared fixtures (``browser``, ``context``, ``page``, ``watch``) then drive it.
A gate in front of the job runner holds a started job until a test lets it go, so a test can
open the page of a job that has certainly not finished yet, without depending on timing.
"""

from __future__ import annotations

import csv
import io
import json
import re
import threading
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
from qc_tool.demo.sftp_server import start_sftp_server
from qc_tool.demo.sites import SiteLayout, SiteTruth, generate_site, make_body, with_defects
from qc_tool.services.jobs import JobManager

from browser.support import LiveApp, Watch, browser_app, drawn_map, expect, log_in, serving

if TYPE_CHECKING:
    from playwright.sync_api import Page, Route

pytestmark = pytest.mark.browser

SITE = "30050001"
LAYOUT = with_defects(
    SiteLayout(
        folders=(("Tower-Scans", 16), ("Antenna-Sector-A", 10), ("Cable-Ladder", 6)),
        without_gps=2,
        distinct_scenes=True,
    ),
    rate=0.03,  # one photo per kind
    kinds=("focus_blur", "dark", "near_duplicate", "outside", "truncated"),
)
USERNAME = "reviewer"
PASSWORD = "review-password-3"
GATE_WAIT_S = 30.0  # a held job waits at most this long for its test to let it go
EXPORTS = ("csv", "geojson", "kml", "gpx", "odm", "odm-folders", "rejected", "report")
STATUSES = {"invalid": False, "unchecked": None, "valid": True}


def has_gps(image: dict[str, Any]) -> bool:
    return image["lat"] is not None and image["lon"] is not None


class Gate:
    """Holds each job the app starts until ``open()``; open unless a test closes it."""

    def __init__(self) -> None:
        self._open = threading.Event()
        self._open.set()

    def close(self) -> None:
        self._open.clear()

    def open(self) -> None:
        self._open.set()

    def hold(self, start: Callable[..., Any]) -> Callable[..., Any]:
        """``JobManager.start`` with every runner made to wait at the gate first."""

        def gated_start(owner: str, site: str, runner: Callable[..., None], **kw: Any) -> Any:
            def wait_then_run(job: Any) -> None:
                self._open.wait(GATE_WAIT_S)
                runner(job)

            return start(owner, site, wait_then_run, **kw)

        return gated_start


@pytest.fixture(scope="module")
def gate() -> Gate:
    return Gate()


@pytest.fixture(scope="module")
def live_app(tmp_path_factory: pytest.TempPathFactory, gate: Gate) -> Iterator[LiveApp]:
    """This module's app on 127.0.0.1: one site with defects and a numbering gap."""
    base = tmp_path_factory.mktemp("review-app")
    sites_dir = base / "sftp-root" / "sites"
    sites_dir.mkdir(parents=True)
    truth = generate_site(sites_dir, SITE, LAYOUT, body=make_body(LAYOUT))
    removed = numbering_gap(truth)
    (sites_dir / SITE / removed).unlink()
    truth = replace(truth, images=[i for i in truth.images if i.path != removed])

    sftp = start_sftp_server(base / "sftp-root", {USERNAME: PASSWORD}, sites_root="/sites")
    app = browser_app(sftp, base, "review-test-secret-key")
    jobs: JobManager = app.extensions["qc"].jobs
    jobs.start = gate.hold(jobs.start)  # type: ignore[method-assign]
    try:
        with serving(app) as url:
            try:
                yield LiveApp(url=url, username=USERNAME, password=PASSWORD, sites={SITE: truth})
            finally:
                gate.open()  # before the server stops: no request stays held
    finally:
        app.extensions["qc"].close()
        sftp.stop()


def numbering_gap(truth: SiteTruth) -> str:
    """A clean photo in the middle of the first folder whose removal leaves only a gap."""
    images = truth.images
    for before, image, after in zip(images, images[1:], images[2:], strict=False):
        same_folder = (
            before.path.split("/")[0] == image.path.split("/")[0] == (after.path.split("/")[0])
        )
        if same_folder and not (before.defects or image.defects or after.defects):
            return image.path
    raise AssertionError("no clean photo to remove")


# -- helpers ------------------------------------------------------------------------------------


def start_qc(page: Page, live_app: LiveApp) -> str:
    """Log in, press the site's View QC; returns the job id of the QC page it opens."""
    log_in(page, live_app.username, live_app.password)
    row = page.get_by_role("row").filter(has=page.get_by_role("cell", name=SITE, exact=True))
    row.get_by_role("button", name="View QC").click()
    expect(page).to_have_url(re.compile(rf"/sites/{SITE}/qc/[^/]+$"))
    return page.url.rsplit("/", 1)[1]


def wait_until_done(page: Page) -> None:
    """The job ended and the review is complete: progress gone, verdict shown, downloads offered."""
    expect(page.locator("#progress")).to_have_count(0)
    expect(page.locator("#exports")).to_be_visible()
    expect(page.locator("#verdict")).not_to_have_attribute("data-decision", "checking")


def finished_review(page: Page, live_app: LiveApp) -> dict[str, Any]:
    """Run QC of the site to the end; returns the job with its result document."""
    job_id = start_qc(page, live_app)
    wait_until_done(page)
    job: dict[str, Any] = page.request.get(f"/api/jobs/{job_id}").json()
    assert job["state"] == "done" and job["checks_state"] == "done", job["state"]
    return job


def visible_paths(page: Page) -> list[str]:
    paths: list[str] = page.locator("#images tbody tr:not([hidden])").evaluate_all(
        "rows => rows.map(row => row.dataset.path)"
    )
    return paths


def gps_paths(document: dict[str, Any]) -> set[str]:
    """Readable photos with a position: the document's GPS points, one map marker each."""
    return {i["path"] for i in document["images"] if has_gps(i) and not i["error"]}


def place(lat: Any, lon: Any) -> tuple[float, float]:
    return round(float(lat), 7), round(float(lon), 7)


MAP_STATE = """
() => {
  try {
    const s = window.__qcTest.mapSummary();
    return s === null ? null : { markers: s.markers.length, lines: s.lines };
  } catch (e) {
    return null;  // no view yet: Leaflet has no bounds before the first point
  }
}
"""

# Marker styles on the page's (first) map: the selected marker is drawn larger, and markers the
# table's filters hide are faded.
MARKER_STYLES = """
() => {
  const out = [];
  window.__qcTest.maps[0].eachLayer((layer) => {
    if (layer instanceof L.CircleMarker) {
      const at = layer.getLatLng();
      out.push({ lat: at.lat, lon: at.lng, radius: layer.options.radius,
                 fillOpacity: layer.options.fillOpacity });
    }
  });
  return out;
}
"""

# Records every value the progress bar shows, with the pass it belongs to, from the first
# paint on; and whether the page was made while the job was running.
PROGRESS_RECORDER = """
window.__progress = [];
document.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("qc");
  window.__madeRunning = root !== null && root.dataset.state === "running";
  const bar = document.getElementById("progress-bar");
  const title = document.getElementById("progress-title");
  if (!bar) { return; }
  const text = document.getElementById("progress-text");
  const record = () => window.__progress.push({
    pass: title.textContent.startsWith("Reading") ? "gps" : "checks",
    value: Number(bar.getAttribute("value")), max: Number(bar.getAttribute("max")),
    text: text.textContent });
  record();
  new MutationObserver(record).observe(bar, { attributes: true });
  new MutationObserver(record).observe(text, { childList: true, characterData: true });
});
"""


# -- tests --------------------------------------------------------------------------------------


def test_the_page_fills_in_live_and_ends_as_the_review(
    page: Page, live_app: LiveApp, gate: Gate, watch: Watch, output_dir: Path
) -> None:
    truth = live_app.sites[SITE]
    located = {i.path for i in truth.images if i.lat is not None and i.error is None}
    page.add_init_script(PROGRESS_RECORDER)
    # The result document is held back, so what the page shows meanwhile came from the events.
    held: list[Route] = []

    def is_document(url: str) -> bool:
        return re.fullmatch(r"/api/jobs/[^/]+", urlsplit(url).path) is not None

    holding = True

    def hold(route: Route) -> None:
        if holding:
            held.append(route)
        else:
            route.fallback()

    page.route(is_document, hold)
    gate.close()
    try:
        start_qc(page, live_app)
        expect(page.locator("#progress-title")).to_have_text("Reading photo headers…")
        made_running = page.wait_for_function("() => window.__madeRunning !== undefined")
        assert made_running.json_value() is True
        # No decision while the job runs: the banner says it is checking.
        expect(page.locator("#verdict")).to_have_attribute("data-decision", "checking")
        expect(page.locator("#verdict-decision")).to_have_text("Checking…")
    finally:
        gate.open()

    # Every photo arrives as an event: a row each, a marker per located photo, live.
    expect(page.locator("#images tbody tr")).to_have_count(len(truth.images))
    page.wait_for_function(
        f"() => {{ const s = ({MAP_STATE})(); return s && s.markers === {len(located)}; }}"
    )
    expect(page.locator("#images-count")).to_have_text(f"({len(truth.images)})")
    expect(page.locator("#verdict")).to_have_attribute("data-decision", "checking")
    assert page.locator("#verdict-counts li").count() == 0, "the counts come with the verdict"

    holding = False
    for route in held:
        route.fallback()
    wait_until_done(page)

    # The progress bar advanced through both passes to their ends, never backwards.
    recorded: list[dict[str, Any]] = page.evaluate("() => window.__progress")
    for name, total in (("gps", len(truth.images)), ("checks", None)):
        values = [r["value"] for r in recorded if r["pass"] == name]
        assert values, f"no progress shown for the {name} pass: {recorded}"
        assert values == sorted(values), f"{name} progress went backwards: {values}"
        last = [r for r in recorded if r["pass"] == name][-1]
        assert last["value"] == last["max"] > 0
        if total is not None:
            assert last["max"] == total
    gps_values = [r["value"] for r in recorded if r["pass"] == "gps"]
    assert gps_values[0] < gps_values[-1], "the GPS pass advanced on the page"
    assert not [r["text"] for r in recorded if "?" in r["text"]], "never '0 of ?'"

    # The review: one marker per GPS point at its place, one path per folder, the site in view
    # (the photo planted kilometres away is listed beside the map, not fitted).
    job = page.request.get(page.url.replace(f"/sites/{SITE}/qc/", "/api/jobs/")).json()
    document = job["result"]
    assert gps_paths(document) == located
    drawn = drawn_map(page)
    assert len(drawn["markers"]) == sum(f["gps_points"] for f in document["folders"])
    by_place = {place(i["lat"], i["lon"]) for i in document["images"] if i["path"] in located}
    assert {place(m["lat"], m["lon"]) for m in drawn["markers"]} == by_place
    far = {o["path"] for o in document["site_area"]["outside"]}
    assert len(far) == 1, "the site was made with one photo outside it"
    far_places = {place(i["lat"], i["lon"]) for i in document["images"] if i["path"] in far}
    assert all(m["in_view"] != (place(m["lat"], m["lon"]) in far_places) for m in drawn["markers"])
    expect(page.locator("#far-list li")).to_have_count(1)
    assert sorted(drawn["lines"]) == sorted(f["gps_points"] for f in document["folders"])
    legend = page.locator("#legend li").all_text_contents()
    assert sorted(legend) == sorted(f"{f['name']} ({f['gps_points']})" for f in document["folders"])
    expect(page.locator("#images tbody tr")).to_have_count(len(truth.images))
    verdict = document["verdict"]
    expect(page.locator("#verdict")).to_have_attribute("data-decision", verdict["decision"])
    expect(page.locator("#verdict-headline")).to_contain_text(verdict["headline"].split(": ")[1])
    invalid = [i for i in document["images"] if i["valid"] is False]
    assert len(invalid) == verdict["photos"]["invalid"] == len(verdict["invalid"])
    expect(page.locator("#images tbody tr.failed")).to_have_count(len(invalid))

    page.screenshot(path=output_dir / "review-page.png", full_page=True)
    watch.assert_clean()


def test_clicking_a_row_shows_the_preview_and_highlights_the_marker(
    page: Page, live_app: LiveApp, watch: Watch
) -> None:
    document = finished_review(page, live_app)["result"]
    image = next(i for i in document["images"] if has_gps(i) and i["valid"] is True)
    row = page.locator(f'#images tbody tr[data-path="{image["path"]}"]')

    row.click()

    expect(row).to_have_class(re.compile(r"\bselected\b"))
    expect(page.locator("#preview-name")).to_have_text(image["path"])
    preview = page.locator("#preview-img")
    expect(preview).to_be_visible()
    assert preview.evaluate("img => img.complete && img.naturalWidth > 0")
    src = urlsplit(preview.get_attribute("src") or "")
    assert src.path.endswith("/preview") and "size=large" in src.query
    expect(page.locator("#preview-facts")).to_contain_text(f"{image['lat']:.6f}")
    expect(page.locator("#preview-failures")).to_contain_text("every check passed")
    # On the map: a popup names the photo, and its marker is the one drawn larger.
    expect(page.locator(".leaflet-popup-content strong")).to_have_text(image["path"])
    styles = page.evaluate(MARKER_STYLES)
    chosen = [s for s in styles if place(s["lat"], s["lon"]) == place(image["lat"], image["lon"])]
    others = [s for s in styles if s not in chosen]
    assert len(chosen) == 1 and all(chosen[0]["radius"] > s["radius"] for s in others)
    watch.assert_clean()


def test_a_photo_without_a_preview_says_why(page: Page, live_app: LiveApp, watch: Watch) -> None:
    document = finished_review(page, live_app)["result"]
    broken = next(i for i in document["images"] if i["error"])

    page.locator(f'#images tbody tr[data-path="{broken["path"]}"]').click()

    expect(page.locator("#preview-name")).to_have_text(broken["path"])
    expect(page.locator("#preview-error")).to_be_visible()
    expect(page.locator("#preview-error")).to_contain_text("No preview of this photo:")
    expect(page.locator("#preview-img")).to_be_hidden()
    expect(page.locator("#preview-failures")).to_contain_text("Unreadable")
    # The refused preview (and the page's request for the reason) are the only failed loads.
    assert watch.failed_loads and all("/preview?" in load for load in watch.failed_loads)
    watch.failed_loads.clear()
    watch.assert_clean()


def test_clicking_a_marker_highlights_and_scrolls_to_its_row(
    page: Page, live_app: LiveApp, watch: Watch
) -> None:
    document = finished_review(page, live_app)["result"]
    order = {i["path"]: n for n, i in enumerate(document["images"])}
    at_place = {place(i["lat"], i["lon"]): i["path"] for i in document["images"] if has_gps(i)}
    drawn = drawn_map(page)
    # The clickable marker whose row is furthest down the table: the table must scroll to it.
    marker = max(
        (m for m in drawn["markers"] if m["clickable"] and m["in_view"]),
        key=lambda m: order[at_place[place(m["lat"], m["lon"])]],
    )
    path = at_place[place(marker["lat"], marker["lon"])]
    row = page.locator(f'#images tbody tr[data-path="{path}"]')
    box = page.locator("#images-box")
    assert not inside(row.bounding_box(), box.bounding_box()), "the row starts out of view"
    page.locator("#map").scroll_into_view_if_needed()  # as the click would (the banner is above)
    page_scroll = page.evaluate("() => window.scrollY")

    page.locator("#map").click(position={"x": marker["x"], "y": marker["y"]})

    expect(row).to_have_class(re.compile(r"\bselected\b"))
    expect(page.locator("#preview-name")).to_have_text(path)
    page.wait_for_function(
        """([row, box]) => {
             const r = document.querySelector(row).getBoundingClientRect();
             const b = document.querySelector(box).getBoundingClientRect();
             return r.top >= b.top && r.bottom <= b.bottom;
           }""",
        arg=[f'#images tbody tr[data-path="{path}"]', "#images-box"],
    )
    assert page.evaluate("() => window.scrollY") == page_scroll, "the page itself stays put"
    watch.assert_clean()


def searchable(image: dict[str, Any]) -> str:
    """What the table's search box looks in: the path and the messages of the row's problems."""
    texts = [image["path"], image["error"] or ""]
    if not has_gps(image) and not image["error"]:
        texts.append(image["gps_note"] or "no GPS position")
    texts += [o["message"] for o in (image.get("checks") or {}).get("outcomes", []) if not o["ok"]]
    return " ".join(texts).lower()


def inside(inner: Any, outer: Any) -> bool:
    return bool(
        inner
        and outer
        and inner["y"] >= outer["y"]
        and inner["y"] + inner["height"] <= outer["y"] + outer["height"]
    )


def test_problem_filters_leave_only_matching_rows(
    page: Page, live_app: LiveApp, watch: Watch
) -> None:
    truth = live_app.sites[SITE]
    document = finished_review(page, live_app)["result"]
    images = document["images"]
    everything = [i["path"] for i in images]
    assert sorted(visible_paths(page)) == sorted(everything)
    found_kinds = set()
    # One option per kind of the verdict, and the statuses; each leaves exactly its photos.
    kinds = [k["kind"] for k in document["verdict"]["kinds"]]
    rules = {kind: (lambda i, k=kind: k in i["problems"]) for kind in kinds}
    rules |= {s: (lambda i, v=v: i["valid"] is v) for s, v in STATUSES.items()}
    for kind, rule in rules.items():
        page.locator("#filter-kind").select_option(kind)
        expected = sorted(i["path"] for i in images if rule(i))
        assert sorted(visible_paths(page)) == expected, kind
        expect(page.locator("#images-empty")).to_be_visible(visible=not expected)
        if expected:
            found_kinds.add(kind)
            expect(page.locator("#images-count")).to_have_text(
                f"({len(expected)} of {len(images)})"
            )
    # The site was made with each of these; the checks find them.
    planted = {"missing_gps", "blur", "exposure", "near_duplicate", "outside_site", "unreadable"}
    assert planted <= found_kinds
    missing = sorted(i.path for i in truth.images if i.lat is None and i.error is None)
    page.locator("#filter-kind").select_option("missing_gps")
    assert sorted(visible_paths(page)) == missing

    # While filtered, the map fades the markers of the rows left out.
    page.locator("#filter-kind").select_option("near_duplicate")
    shown = {
        place(i["lat"], i["lon"])
        for i in images
        if "near_duplicate" in i["problems"] and has_gps(i) and not i["error"]
    }
    bright = {
        place(s["lat"], s["lon"]) for s in page.evaluate(MARKER_STYLES) if s["fillOpacity"] > 0.5
    }
    assert bright == shown

    # Folder and text filters combine with it; clearing all shows every row again.
    page.locator("#filter-kind").select_option("")
    page.locator("#filter-folder").select_option("Cable-Ladder")
    assert sorted(visible_paths(page)) == sorted(
        p for p in everything if p.startswith("Cable-Ladder/")
    )
    page.locator("#filter-folder").select_option("")
    # The search box finds a text in the path or in any problem's message (case aside).
    page.locator("#filter-text").fill("dji_0003")
    expected = sorted(i["path"] for i in images if "dji_0003" in searchable(i))
    assert any("DJI_0003" not in p for p in expected), "some rows match by message only"
    expect(page.locator("#images tbody tr:not([hidden])")).to_have_count(len(expected))
    assert sorted(visible_paths(page)) == expected
    page.locator("#filter-text").fill("")
    expect(page.locator("#images tbody tr:not([hidden])")).to_have_count(len(everything))
    watch.assert_clean()


def test_sorting_by_a_column_orders_the_rows(page: Page, live_app: LiveApp, watch: Watch) -> None:
    document = finished_review(page, live_app)["result"]
    taken = {i["path"]: i["taken"] for i in document["images"]}
    alt = {i["path"]: i["alt"] for i in document["images"]}
    time_header = page.locator("#images thead th", has=page.get_by_role("button", name="Time"))

    page.get_by_role("button", name="Time", exact=True).click()
    expect(time_header).to_have_attribute("aria-sort", "ascending")
    order = [taken[p] for p in visible_paths(page)]
    timed = [t for t in order if t is not None]
    assert timed == sorted(timed) and order == timed + [None] * (len(order) - len(timed))
    first_cell = page.locator("#images tbody tr").first.locator("td.time")
    expect(first_cell).to_have_text(min(timed).replace("T", " "))

    page.get_by_role("button", name="Time", exact=True).click()
    expect(time_header).to_have_attribute("aria-sort", "descending")
    order = [taken[p] for p in visible_paths(page)]
    timed = [t for t in order if t is not None]
    assert timed == sorted(timed, reverse=True), "newest first, photos without a time last"

    page.get_by_role("button", name="Alt (m)").click()
    expect(time_header).to_have_attribute("aria-sort", "none")
    heights = [alt[p] for p in visible_paths(page) if alt[p] is not None]
    assert heights == sorted(heights), "altitudes sort as numbers"
    watch.assert_clean()


def test_every_export_downloads_and_parses(page: Page, live_app: LiveApp, watch: Watch) -> None:
    document = finished_review(page, live_app)["result"]
    images = document["images"]
    # A GPS point is a position in a readable file: the truncated photo's header position is
    # on neither the map nor the geo files (it is in the rejected list, as unreadable).
    located = {i["path"]: (i["lon"], i["lat"]) for i in images if has_gps(i) and not i["error"]}
    links = page.locator("#exports a[data-kind]")
    kinds = links.evaluate_all("links => links.map(a => a.dataset.kind)")
    assert kinds[0] == "report" and sorted(kinds) == sorted(EXPORTS)

    files: dict[str, bytes] = {}
    for kind in EXPORTS[:-1]:
        with page.expect_download() as info:
            page.locator(f'#exports a[data-kind="{kind}"]').click()
        download = info.value
        assert download.failure() is None, kind
        assert download.suggested_filename.startswith(f"{SITE}-"), download.suggested_filename
        files[kind] = Path(download.path()).read_bytes()

    rows = list(csv.reader(io.StringIO(files["csv"].decode("utf-8"))))
    assert len(rows) == len(images) + 1
    assert sorted(r[0] for r in rows[1:]) == sorted(i["path"] for i in images)

    geo = json.loads(files["geojson"])
    assert geo["type"] == "FeatureCollection"
    points = [f for f in geo["features"] if f["geometry"]["type"] == "Point"]
    assert len(points) == len(located), "one Point feature per GPS photo"
    for feature in points:
        lon, lat = feature["geometry"]["coordinates"][:2]
        assert (lon, lat) == located[feature["properties"]["path"]]

    kml = ET.fromstring(files["kml"])
    ns = {"k": "http://www.opengis.net/kml/2.2"}
    assert kml.tag == "{http://www.opengis.net/kml/2.2}kml"
    assert len(kml.findall(".//k:Placemark/k:Point", ns)) == len(located)
    folders = {f.findtext("k:name", namespaces=ns) for f in kml.findall(".//k:Folder", ns)}
    assert {f["name"] for f in document["folders"]} <= folders

    gpx = ET.fromstring(files["gpx"])
    assert gpx.tag.endswith("}gpx") and len(gpx.findall(".//{*}trkpt")) == len(located)

    geo_txt = files["odm"].decode("utf-8").splitlines()
    assert geo_txt[0] == "EPSG:4326"
    assert any(line.split()[0] in {p.rsplit("/", 1)[1] for p in located} for line in geo_txt[1:])

    with zipfile.ZipFile(io.BytesIO(files["odm-folders"])) as archive:
        per_folder = {
            f"{name.split('/')[0]}/{line.split()[0]}"
            for name in archive.namelist()
            for line in archive.read(name).decode("utf-8").splitlines()[1:]
            if line and not line.startswith("#")
        }
    assert per_folder == set(located), "every located photo, in its own folder's geo.txt"

    rejected = list(csv.reader(io.StringIO(files["rejected"].decode("utf-8"))))
    # The rejected list is the verdict's invalid photos, the page's red rows.
    assert {r[0] for r in rejected[1:]} == set(document["verdict"]["invalid"])

    report_link = page.locator('#exports a[data-kind="report"]')
    assert report_link.get_attribute("target") == "_blank"
    report = page.request.get(report_link.get_attribute("href") or "")
    assert report.ok and report.headers["content-type"].startswith("text/html")
    assert report.headers["content-disposition"].startswith("inline")
    assert f"site {SITE}" in report.text()
    watch.assert_clean()


def test_the_altitude_profile_and_the_gaps_in_the_sequence(
    page: Page, live_app: LiveApp, watch: Watch
) -> None:
    document = finished_review(page, live_app)["result"]
    # Height above take-off when the photos carry it (DJI XMP), else the GPS altitude.
    key = "height_m" if any(i.get("height_m") is not None for i in document["images"]) else "alt"
    flown = {
        i["path"].split("/")[0]
        for i in document["images"]
        if i[key] is not None and i["taken"] and not i["error"]
    }
    lines = page.locator("#profile svg polyline")
    expect(lines).to_have_count(len(flown))
    assert sorted(lines.evaluate_all("ls => ls.map(l => l.dataset.folder)")) == sorted(flown)
    # Each folder's line has a point per photo with a time and an altitude.
    for line in lines.all():
        folder = line.get_attribute("data-folder")
        count = len((line.get_attribute("points") or "").split())
        assert count == sum(
            1
            for i in document["images"]
            if i["path"].startswith(f"{folder}/")
            and i[key] is not None
            and i["taken"]
            and not i["error"]
        )
    # The folders were flown 25 minutes apart: the axis cuts the pauses out and says so.
    expect(page.locator("#profile .axis-break-label")).to_have_count(len(flown) - 1)

    # The removed photo left a numbering gap, listed with the photos on either side.
    gaps = document["gaps"]
    assert any(g["kind"] == "numbering" for g in gaps)
    items = page.locator("#gaps li")
    expect(items).to_have_count(len(gaps))
    gap = next(g for g in gaps if g["kind"] == "numbering")
    item = items.filter(has_text=gap["detail"])
    expect(item).to_have_count(1)
    item.get_by_role("button", name=gap["after"].rsplit("/", 1)[1]).click()
    expect(page.locator("#preview-name")).to_have_text(gap["after"])
    expect(page.locator("#profile .profile-mark")).to_have_count(1)
    watch.assert_clean()


def test_cancel_stops_the_job_and_the_page_says_so(
    page: Page, live_app: LiveApp, gate: Gate, watch: Watch
) -> None:
    gate.close()
    try:
        job_id = start_qc(page, live_app)
        cancel = page.get_by_role("button", name="Cancel")
        expect(cancel).to_be_visible()
        with page.expect_response(lambda r: r.url.endswith(f"/api/jobs/{job_id}/cancel")) as sent:
            cancel.click()
        assert sent.value.ok and sent.value.request.headers.get("x-csrftoken")
    finally:
        gate.open()

    expect(page.locator("#ended")).to_be_visible()
    expect(page.locator("#ended-title")).to_have_text("The scan was cancelled")
    expect(page.locator("#progress")).to_have_count(0)
    expect(page.locator("#exports")).to_be_hidden()
    expect(page.get_by_role("button", name="Scan again")).to_be_visible()
    watch.assert_clean()


def test_without_event_source_the_page_polls_to_the_end(
    page: Page, live_app: LiveApp, gate: Gate, watch: Watch
) -> None:
    page.add_init_script("delete window.EventSource;")
    asked: list[str] = []
    page.on("request", lambda request: asked.append(urlsplit(request.url).path))
    gate.close()
    try:
        start_qc(page, live_app)
        expect(page.locator("#progress")).to_be_visible()
    finally:
        gate.open()

    wait_until_done(page)
    expect(page.locator("#images tbody tr")).to_have_count(len(live_app.sites[SITE].images))
    assert any(path.endswith("/state") for path in asked), "it polled the job's state"
    assert not any(path.endswith("/events") for path in asked)
    watch.assert_clean()
