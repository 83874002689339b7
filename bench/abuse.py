"""Abuse: the inputs that used to kill the worker, run through gunicorn as production runs it.

    python -m bench.abuse [--only zip|folder] [--zip-photos 5000] [--folder-photos 15000]
                          [--deadline 1800] [--set QC_NAME=VALUE ...] [--json OUT]

1. zip: a ZIP of N copies of one small JPEG (64x48, same GPS and capture time, the EXIF Make
   differing, so no two files are byte-identical), uploaded through the web form, checked,
   sorted; every photo must be in the results CSV with a verdict.
2. folder: one folder of N small photos (one shared picture, shots 2-3 s and ~0.2 m apart:
   every photo a look-alike of every other, most of them hovering) on the built-in SFTP
   server, in its own process; View QC scans and checks it; every photo must be in the
   result document with its checks.

Each case runs in a fresh gunicorn (start_qc_tool.sh's command and config: one worker), so
the worker's peak RSS (VmHWM, exact) is that case's. Also reported: the peak RSS of the
worker with its child processes (sampled every 0.1 s), wall time, photos judged. Everything
listens on 127.0.0.1; each case is bounded by the deadline.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import secrets
import shutil
import sys
import threading
import time
import uuid
import zipfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from qc_tool.demo.imagegen import ImageSpec, build_jpeg
from qc_tool.demo.scene import encode_body, encode_jpeg
from qc_tool.demo.sites import SiteLayout, generate_site, make_body

from bench.load import (
    _FORM_TOKEN,
    _META_TOKEN,
    OUT,
    Browser,
    Gunicorn,
    LoadError,
    Reply,
    Sampler,
    ServerProcess,
    UserSpec,
    _expect,
    _token,
    _vm_hwm_mb,
    app_settings,
    setting_overrides,
    start_gunicorn,
    worker_figures,
)

WORK = OUT / "abuse"
SITE = "ABUSE-FOLDER"
FOLDER = "Tower-Scans"
DEFAULT_ZIP_PHOTOS = 5000  # QC_UPLOAD_MAX_FILES, the most a ZIP may hold by default
DEFAULT_FOLDER_PHOTOS = 15_000
DEFAULT_DEADLINE_S = 1800.0
POLL_EVERY_S = 1.0
# The CSV has each photo's failure messages, not their names: how the duplicate kinds begin.
DUPLICATE_TEXT = (
    ("duplicate", "Byte-identical copy of"),
    ("near_duplicate", "Near-duplicate of"),
    ("hovering", "Taken while hovering"),
)
LIMIT_MB = 1024.0  # what the worker must stay under (docs/reliability.md)


@dataclass
class CaseResult:
    """One abusive input, judged (or not) by a fresh app."""

    case: str
    photos: int
    judged: int = 0  # photos with a verdict in what the user downloads
    invalid: int = 0
    failures: dict[str, int] = field(default_factory=dict)  # outcome name -> photos
    input_mb: float = 0.0
    wall_s: float = 0.0  # the upload sent (or View QC posted) .. the results fetched
    worker_vm_hwm_mb: float = 0.0
    tree_rss_peak_mb: float = 0.0  # the worker and its processes, sampled
    children_vm_hwm_mb: list[float] = field(default_factory=list)
    worker_cpu_s: float = 0.0
    children_cpu_s: float = 0.0
    longest_message: int = 0
    # folder only: the worker's RSS after each View QC of the same site (finished jobs are kept)
    rss_after_each_mb: list[float] = field(default_factory=list)
    # folder only: the worker's peak RSS before and after K GETs of the result document at once
    documents_at_once: int = 0
    hwm_before_documents_mb: float = 0.0
    hwm_after_documents_mb: float = 0.0
    document_mb: float = 0.0
    problems: list[str] = field(default_factory=list)


# --- the inputs -------------------------------------------------------------------------------


def look_alike_zip(path: Path, count: int) -> None:
    """``count`` copies of one 64x48 JPEG, same place and time, each with its own EXIF Make."""
    body = encode_body(64, 48, seed=7)
    thumbnail = encode_jpeg(32, 24, seed=7, quality=80)
    taken = datetime(2024, 5, 14, 9, 30, 0)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(count):
            spec = ImageSpec(taken=taken, gps=(52.37, 4.89, 40.0), make=f"DJI-{i:05d}")
            archive.writestr(
                f"DJI_{i + 1:05d}.JPG", build_jpeg(spec, body, thumbnail_jpeg=thumbnail)
            )


def big_folder(root: Path, count: int) -> None:
    """``count`` photos in one folder of site SITE (kept between runs when intact)."""
    marker = root / f".{SITE}-{count}"
    if marker.exists():
        return
    shutil.rmtree(root, ignore_errors=True)
    layout = SiteLayout(folders=((FOLDER, count),))
    generate_site(root / "sites", SITE, layout, body=make_body(layout))
    marker.touch()


# --- the two cases ----------------------------------------------------------------------------


def _log_in(b: Browser, user: UserSpec) -> str:
    page = _expect(b.request("GET", "/login"), 200, "GET /login")
    form = {"username": user.username, "password": user.password}
    form["csrf_token"] = _token(page, _FORM_TOKEN, "/login")
    _expect(b.request("POST", "/login", form=form), 303, "POST /login")
    return _token(_expect(b.request("GET", "/"), 200, "the sites page"), _META_TOKEN, "/")


def _post_file(b: Browser, path: str, token: str, name: str, data: bytes) -> Reply:
    """A multipart form as the upload page sends it: the CSRF token and one file."""
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="zip"; filename="{name}"\r\n'
            "Content-Type: application/zip\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    conn, response = b._open("POST", path, body, headers)
    try:
        return Reply(response.status, response.headers, response.read())
    finally:
        conn.close()


def run_zip(b: Browser, user: UserSpec, zip_path: Path, result: CaseResult) -> None:
    _log_in(b, user)
    form = _expect(b.request("GET", "/uploads"), 200, "the upload page")
    token = _token(form, _FORM_TOKEN, "the upload page")
    started = time.monotonic()
    sent = _post_file(b, "/uploads", token, "ABUSE.zip", zip_path.read_bytes())
    page = _expect(sent, 303, "POST /uploads")
    location = page.headers["Location"]
    upload = location.rsplit("/", 1)[-1]
    while True:
        page = _expect(b.request("GET", f"/uploads/{upload}"), 200, "the upload's page")
        state = re.search(r'id="upload" data-state="(\w+)"', page.text)
        if state is None:
            raise LoadError("the upload page shows no state")
        if state.group(1) != "running":
            break
        time.sleep(POLL_EVERY_S)
    if state.group(1) != "done":
        raise LoadError(f"the upload ended {state.group(1)}")
    text = _expect(b.request("GET", f"/uploads/{upload}/checks.csv"), 200, "checks.csv").text
    result.wall_s = time.monotonic() - started
    rows = list(csv.DictReader(io.StringIO(text)))
    result.judged = sum(row["valid"] in ("True", "False") for row in rows)
    result.invalid = sum(row["valid"] == "False" for row in rows)
    # images_csv's columns: "failures" holds the verdict's kinds, "reasons" their messages.
    result.longest_message = max((len(row["reasons"]) for row in rows), default=0)
    result.failures = {
        kind: sum(prefix in row["reasons"] for row in rows) for kind, prefix in DUPLICATE_TEXT
    }
    if len(rows) != result.photos:
        result.problems.append(f"{len(rows)} rows in checks.csv, {result.photos} photos sent")


def run_folder(
    b: Browser, user: UserSpec, result: CaseResult, app: Gunicorn, repeat: int, documents: int
) -> None:
    token = _log_in(b, user)
    worker = app.worker()
    for run in range(repeat):
        started = time.monotonic()
        job = _view_qc(b, token)
        reply = _expect(b.request("GET", f"/api/jobs/{job}"), 200, "the result")
        result.rss_after_each_mb.append(round(worker.memory_info().rss / 2**20, 1))
        if run == 0:
            result.wall_s = time.monotonic() - started
            result.document_mb = len(reply.body) / 2**20
            _judged(reply.json(), result)
    if documents > 1:
        result.documents_at_once = documents
        result.hwm_before_documents_mb = _vm_hwm_mb(worker.pid)
        threads = [threading.Thread(target=_fetch, args=(b, job)) for _ in range(documents)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        result.hwm_after_documents_mb = _vm_hwm_mb(worker.pid)


def _view_qc(b: Browser, token: str) -> str:
    """Start View QC of SITE and wait for its end; the job's id."""
    reply = b.request("POST", f"/api/sites/{SITE}/qc", headers={"X-CSRFToken": token})
    job: str = _expect(reply, 202, "POST View QC").json()["job"]
    while True:
        state = _expect(b.request("GET", f"/api/jobs/{job}/state"), 200, "the state").json()
        if state["state"] != "running":
            return job
        time.sleep(POLL_EVERY_S)


def _fetch(b: Browser, job: str) -> None:
    """One more GET of the document, with the same login (its own connection)."""
    other = Browser(b.host, b.port, b.deadline)
    other.cookies = dict(b.cookies)
    other.request("GET", f"/api/jobs/{job}")


def _judged(document: dict[str, Any], result: CaseResult) -> None:
    if document.get("checks_state") != "done":
        raise LoadError(f"the checks ended {document.get('checks_state')}: {document}"[:300])
    images = document["result"]["images"]
    checked = [i for i in images if i.get("checks")]
    result.judged = len(checked)
    result.invalid = sum(not i["checks"]["valid"] for i in checked)
    kinds: Counter[str] = Counter()
    longest = 0
    for image in checked:
        failed = [o for o in image["checks"]["outcomes"] if not o["ok"]]
        kinds.update({o["name"] for o in failed})
        longest = max([longest, *(len(o["message"]) for o in failed)])
    result.failures, result.longest_message = dict(kinds), longest
    if len(images) != result.photos:
        result.problems.append(f"{len(images)} images in the result, {result.photos} on the server")


def run_case(
    case: str,
    photos: int,
    server: ServerProcess,
    user: UserSpec,
    overrides: dict[str, str],
    args: argparse.Namespace,
) -> CaseResult:
    result = CaseResult(case, photos)
    zip_path = WORK / "abuse.zip"
    if case == "zip":
        look_alike_zip(zip_path, photos)
        result.input_mb = zip_path.stat().st_size / 2**20
    known_hosts = WORK / "known_hosts"
    known_hosts.write_text(server.host_key_line + "\n")
    shutil.rmtree(WORK / "cache", ignore_errors=True)
    settings = app_settings(server.port, "/sites", known_hosts, WORK / "cache", **overrides)
    app: Gunicorn = start_gunicorn(settings, WORK / f"gunicorn-{case}.log")
    try:
        b = Browser(app.host, app.port, time.monotonic() + args.deadline)
        with Sampler(app.worker(), server.port) as sampler:
            try:
                if case == "zip":
                    run_zip(b, user, zip_path, result)
                else:
                    run_folder(b, user, result, app, args.repeat, args.documents)
            except (LoadError, OSError) as exc:
                result.problems.append(f"{type(exc).__name__}: {exc}")
        if app.process.poll() is None and _worker_alive(app):
            figures = worker_figures(app)
            result.worker_vm_hwm_mb = figures.vm_hwm_mb
            result.children_vm_hwm_mb = figures.children_vm_hwm_mb
            result.worker_cpu_s, result.children_cpu_s = figures.cpu_s, figures.children_cpu_s
        else:
            result.problems.append("the gunicorn worker is gone (killed?)")
        result.tree_rss_peak_mb = sampler.peaks.tree_rss_mb
        result.worker_vm_hwm_mb = max(result.worker_vm_hwm_mb, sampler.peaks.worker_rss_mb)
    finally:
        app.stop()
        zip_path.unlink(missing_ok=True)
    if result.judged != photos:
        result.problems.append(f"{result.judged} of {photos} photos got a verdict")
    if max(result.worker_vm_hwm_mb, result.tree_rss_peak_mb) >= LIMIT_MB:
        result.problems.append(f"peak memory reached {LIMIT_MB:.0f} MB")
    return result


def _worker_alive(app: Gunicorn) -> bool:
    try:
        app.worker()
    except (RuntimeError, OSError):
        return False
    return True


def render(r: CaseResult) -> str:
    lines = [
        f"{r.case}: {r.photos:,} photos" + (f" ({r.input_mb:.1f} MB ZIP)" if r.input_mb else ""),
        f"  judged {r.judged:,} ({r.invalid:,} invalid) in {r.wall_s:.1f} s; failures {r.failures}",
        (
            f"  worker peak RSS (VmHWM) {r.worker_vm_hwm_mb:.1f} MiB; with its processes "
            f"{r.tree_rss_peak_mb:.1f} MiB (sampled); processes' own peaks {r.children_vm_hwm_mb}"
        ),
        (
            f"  CPU: worker {r.worker_cpu_s:.1f} s, its processes {r.children_cpu_s:.1f} s; "
            f"longest failure text {r.longest_message} characters"
        ),
    ]
    if r.rss_after_each_mb:
        lines.append(
            f"  result document {r.document_mb:.1f} MiB; worker RSS after each View QC "
            f"{r.rss_after_each_mb} MiB"
        )
    if r.documents_at_once:
        lines.append(
            f"  {r.documents_at_once} GETs of the document at once: worker peak "
            f"{r.hwm_before_documents_mb:.1f} -> {r.hwm_after_documents_mb:.1f} MiB"
        )
    lines += [f"  PROBLEM: {p}" for p in r.problems]
    return "\n".join(lines)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.abuse", description=__doc__.split("\n")[0])
    p.add_argument("--only", choices=["zip", "folder"])
    p.add_argument("--zip-photos", type=int, default=DEFAULT_ZIP_PHOTOS)
    p.add_argument("--folder-photos", type=int, default=DEFAULT_FOLDER_PHOTOS)
    p.add_argument("--deadline", type=float, default=DEFAULT_DEADLINE_S, help="seconds a case")
    p.add_argument(
        "--repeat", type=int, default=1, help="folder: View QC this many times (finished jobs stay)"
    )
    p.add_argument(
        "--documents",
        type=int,
        default=1,
        help="folder: then GET the result this many times at once",
    )
    p.add_argument("--set", action="append", default=[], metavar="QC_NAME=VALUE")
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    args.overrides = setting_overrides(p, args.set)  # a bad one stops here, before any start
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    overrides = args.overrides
    WORK.mkdir(parents=True, exist_ok=True)
    cases = [c for c in ("zip", "folder") if args.only in (None, c)]
    root = WORK / "root"
    if "folder" in cases:
        print(f"Generating {args.folder_photos:,} photos in one folder ...", flush=True)
        big_folder(root, args.folder_photos)
    else:
        (root / "sites").mkdir(parents=True, exist_ok=True)
    user = UserSpec("pilot", secrets.token_urlsafe(16), SITE)
    server = ServerProcess(root, [user], "/sites")
    results = []
    try:
        for case in cases:
            photos = args.zip_photos if case == "zip" else args.folder_photos
            print(f"Running {case} ({photos:,} photos) ...", flush=True)
            results.append(run_case(case, photos, server, user, overrides, args))
            print(render(results[-1]), flush=True)
    finally:
        server.stop()
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1))
    return 0 if all(not r.problems for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
