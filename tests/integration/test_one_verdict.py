"""One site, one verdict: View QC, its report and rejected list, a ZIP upload and the CLI agree.

Issue 11: a photo without GPS was failed on the QC page, in the report and in the rejected
list, but valid in the ZIP upload's results (and sorted into ``valid/``). Here one generated
site, holding photos without GPS, unreadable files (empty, a PNG named .JPG, truncated), blurred
and badly exposed photos, goes through all three surfaces:

1. View QC in the web app against the in-process SFTP server, with the printable report and
   the rejected list exported from it;
2. a ZIP of the same folders uploaded to the same app: ``GET /api/uploads/<id>``, its
   ``checks.csv`` and its sorted ZIP;
3. ``qc-tool scan LOCAL_DIR --checks --json --csv`` on the same folders.

Each gives the same decision, the same invalid photos and the same ``valid`` per photo; the
sorted ZIP's ``invalid/`` holds exactly the invalid photos; the three CSVs are one writer's.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from qc_tool import create_app
from qc_tool.cli import main
from qc_tool.demo.sftp_server import start_sftp_server
from qc_tool.demo.sites import (
    SiteLayout,
    SiteTruth,
    add_broken_files,
    generate_site,
    make_body,
    with_defects,
)
from waiting import wait_until
from web.support import api_token, context, csrf_token, log_in, wait_for_job

SITE = "40071111"
USER, PASSWORD = "tech", "one-verdict-pw-7"
LAYOUT = with_defects(
    SiteLayout(
        folders=(("Tower-Scans", 12), ("Antenna-Sector-A", 10)),
        without_gps=3,
        previews=True,
        preview_size=(480, 360),
        distinct_scenes=True,
    ),
    rate=0.05,
    kinds=("focus_blur", "dark", "bright"),
)


@dataclass(frozen=True)
class Surfaces:
    """What each surface said about the site."""

    truth: SiteTruth
    qc: dict[str, Any]  # the QC job's result document
    report: str  # the printable report's HTML
    rejected: list[dict[str, str]]  # the rejected list's rows
    qc_csv: list[dict[str, str]]
    upload: dict[str, Any]  # GET /api/uploads/<id>
    upload_csv: list[dict[str, str]]
    sorted_names: list[str]  # the sorted ZIP's entries
    cli: dict[str, Any]  # qc-tool scan --json
    cli_csv: list[dict[str, str]]
    cli_exit: int


@pytest.fixture(scope="module")
def site_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SiteTruth]:
    root = tmp_path_factory.mktemp("one-verdict")
    sites = root / "sites"
    body = make_body(LAYOUT)
    truth = generate_site(sites, SITE, LAYOUT, body=body)
    broken = add_broken_files(sites, SITE, "Antenna-Sector-A", 11, body)
    return root, replace(truth, images=truth.images + broken)


@pytest.fixture(scope="module")
def surfaces(
    site_root: tuple[Path, SiteTruth], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Surfaces]:
    root, truth = site_root
    work = tmp_path_factory.mktemp("one-verdict-work")
    with start_sftp_server(root, {USER: PASSWORD}, sites_root="/sites") as server:
        app = create_app(
            {
                "TESTING": True,
                "QC_SFTP_HOST": server.host,
                "QC_SFTP_PORT": server.port,
                "QC_SITES_ROOT": server.sites_root,
                "QC_KNOWN_HOSTS": server.write_known_hosts(work / "known_hosts"),
                "QC_CACHE_DIR": work / "cache",
                "QC_SECRET_KEY": "one-verdict-secret-key",
                "QC_PRODUCTION": 0,
                "QC_PARSE_WORKERS": 0,
                "QC_CHECK_WORKERS": 0,  # measured in threads: the same code, no processes
            }
        )
        try:
            client = app.test_client()
            assert log_in(client, USER, PASSWORD).status_code == 303
            qc, report, rejected, qc_csv = _view_qc(client)
            upload, upload_csv, sorted_names = _upload(client, root / "sites" / SITE)
        finally:
            context(app).close()
    cli_exit, cli, cli_csv = _cli(root / "sites" / SITE, work)
    yield Surfaces(
        truth,
        qc,
        report,
        rejected,
        qc_csv,
        upload,
        upload_csv,
        sorted_names,
        cli,
        cli_csv,
        cli_exit,
    )


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _view_qc(
    client: FlaskClient,
) -> tuple[dict[str, Any], str, list[dict[str, str]], list[dict[str, str]]]:
    """Press View QC (as the sites page's script does), wait, export the report and lists."""
    response = client.post(f"/api/sites/{SITE}/qc", headers={"X-CSRFToken": api_token(client)})
    assert response.status_code == 202, response.get_data(as_text=True)
    job_id = response.get_json()["job"]
    job = wait_for_job(client, job_id, timeout=120)
    assert (job["state"], job["checks_state"]) == ("done", "done"), job
    base = f"/sites/{SITE}/qc/{job_id}/export"
    exported = {}
    for kind in ("report", "rejected", "csv"):
        answer = client.get(f"{base}/{kind}")
        assert answer.status_code == 200, (kind, answer.get_data(as_text=True))
        exported[kind] = answer.get_data(as_text=True)
    return job["result"], exported["report"], _rows(exported["rejected"]), _rows(exported["csv"])


def _upload(
    client: FlaskClient, site_dir: Path
) -> tuple[dict[str, Any], list[dict[str, str]], list[str]]:
    """Upload a ZIP of the site's folders; wait for its checks through the API."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted(site_dir.rglob("*")):
            if path.is_file():
                z.write(path, f"{SITE}/{path.relative_to(site_dir).as_posix()}")
    form = {
        "zip": (io.BytesIO(archive.getvalue()), f"{SITE}.zip"),
        "csrf_token": csrf_token(client, "/uploads"),
    }
    response = client.post("/uploads", data=form, content_type="multipart/form-data")
    assert response.status_code == 303, response.get_data(as_text=True)
    url = response.headers["Location"]

    def ended() -> dict[str, Any] | None:
        state = client.get("/api" + url)
        assert state.status_code == 200
        answer: dict[str, Any] = state.get_json()
        return answer if answer["state"] != "running" else None

    body = wait_until(ended, timeout=120, message="the upload's checks to end")
    assert body["state"] == "done", body
    checks_csv = client.get(f"{url}/checks.csv").get_data(as_text=True)
    with client.get(f"{url}/sorted.zip") as answer:
        assert answer.status_code == 200
        names = zipfile.ZipFile(io.BytesIO(answer.get_data())).namelist()
    return body, _rows(checks_csv), names


def _cli(site_dir: Path, work: Path) -> tuple[int, dict[str, Any], list[dict[str, str]]]:
    out, csv_out = work / "cli.json", work / "cli.csv"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("QC_CHECK_WORKERS", "0")
        code = main(
            [
                "scan",
                str(site_dir),
                "--checks",
                "--no-cache",
                "--json",
                str(out),
                "--csv",
                str(csv_out),
            ]
        )
    return code, json.loads(out.read_text()), _rows(csv_out.read_text())


def _valid(document: dict[str, Any]) -> dict[str, bool | None]:
    return {image["path"]: image["valid"] for image in document["images"]}


# -- the site holds what the issue is about ---------------------------------------------------


def test_the_site_holds_each_kind_of_trouble(surfaces: Surfaces) -> None:
    truth = surfaces.truth.images
    assert sum(i.gps in ("absent", "zero_denominator") for i in truth) == 3
    assert {i.error for i in truth if i.error} == {"empty", "truncated", "not_jpeg"}
    defects = {d for i in truth for d in i.defects}
    assert {"focus_blur", "dark", "bright"} <= defects


# -- the three surfaces agree -----------------------------------------------------------------


def test_view_qc_the_upload_and_the_cli_give_one_decision(surfaces: Surfaces) -> None:
    decisions = {
        "View QC": surfaces.qc["verdict"]["decision"],
        "upload": surfaces.upload["result"]["verdict"]["decision"],
        "CLI": surfaces.cli["verdict"]["decision"],
    }
    assert set(decisions.values()) == {"refly"}, decisions
    assert surfaces.cli_exit == 1  # the CLI's exit code for a re-fly
    report_decision = re.search(r'<p class="verdict-decision">([^<]+)</p>', surfaces.report)
    assert report_decision is not None and report_decision.group(1) == "Re-fly needed"


def test_each_surface_names_the_same_invalid_photos(surfaces: Surfaces) -> None:
    invalid = set(surfaces.qc["verdict"]["invalid"])
    assert len(invalid) >= 3 + 3 + 3  # no GPS, unreadable, and the pixel defects at least
    assert set(surfaces.upload["result"]["verdict"]["invalid"]) == invalid
    assert set(surfaces.cli["verdict"]["invalid"]) == invalid
    assert {row["path"] for row in surfaces.rejected} == invalid
    report_rows = re.search(r'<table class="rejected">(.*?)</table>', surfaces.report, re.DOTALL)
    assert report_rows is not None
    in_report = {html.unescape(p) for p in re.findall(r"<tr><td>([^<]+)</td>", report_rows[1])}
    assert in_report == invalid


def test_each_photo_has_the_same_valid_everywhere(surfaces: Surfaces) -> None:
    qc = _valid(surfaces.qc)
    assert len(qc) == len(surfaces.truth.images)
    assert _valid(surfaces.upload["result"]) == qc
    assert _valid(surfaces.cli) == qc
    shown = {True: "True", False: "False", None: ""}
    for rows in (surfaces.qc_csv, surfaces.upload_csv, surfaces.cli_csv):
        assert {row["path"]: row["valid"] for row in rows} == {p: shown[v] for p, v in qc.items()}


def test_photos_without_gps_unreadable_files_and_pixel_defects_are_invalid_everywhere(
    surfaces: Surfaces,
) -> None:
    expected: dict[str, str] = {}
    for image in surfaces.truth.images:
        if image.error is not None:
            expected[image.path] = "unreadable"
        elif image.gps != "ok":
            expected[image.path] = "missing_gps"
        elif image.defects & {"focus_blur"}:
            expected[image.path] = "blur"
        elif image.defects & {"dark", "bright"}:
            expected[image.path] = "exposure"
    for name, document in (
        ("View QC", surfaces.qc),
        ("upload", surfaces.upload["result"]),
        ("CLI", surfaces.cli),
    ):
        by_path = {image["path"]: image for image in document["images"]}
        for path, kind in expected.items():
            image = by_path[path]
            assert image["valid"] is False and kind in image["problems"], (name, path, image)


def test_the_sorted_zip_puts_exactly_the_invalid_photos_in_invalid(surfaces: Surfaces) -> None:
    invalid = set(surfaces.qc["verdict"]["invalid"])
    photos = {n.split("/", 1)[1]: n.split("/", 1)[0] for n in surfaces.sorted_names[1:]}
    assert surfaces.sorted_names[0] == "checks.csv"
    assert {path for path, where in photos.items() if where == "invalid"} == invalid
    assert {path for path, where in photos.items() if where == "valid"} == {
        path for path, valid in _valid(surfaces.qc).items() if valid is True
    }
    no_gps = [i.path for i in surfaces.truth.images if i.error is None and i.gps != "ok"]
    assert no_gps and all(photos[path] == "invalid" for path in no_gps)


def test_the_three_csvs_are_one_writers(surfaces: Surfaces) -> None:
    headers = [list(rows[0]) for rows in (surfaces.qc_csv, surfaces.upload_csv, surfaces.cli_csv)]
    assert headers[0] == headers[1] == headers[2]
    assert headers[0][:3] == ["path", "folder", "file"] and "valid" in headers[0]
    for rows in (surfaces.qc_csv, surfaces.upload_csv, surfaces.cli_csv):
        failures = {row["path"]: row["failures"] for row in rows}
        assert failures == {
            image["path"]: " ".join(image["problems"]) for image in surfaces.qc["images"]
        }


def test_the_upload_api_answers_exactly_its_fields(surfaces: Surfaces) -> None:
    assert list(surfaces.upload) == ["id", "state", "done", "total", "result"]
    total = len(surfaces.truth.images)
    assert (surfaces.upload["done"], surfaces.upload["total"]) == (total, total)
