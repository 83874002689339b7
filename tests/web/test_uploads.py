"""Upload a ZIP of photos: the form, the results page, the CSV, the sorted ZIP, and the refusals."""

from __future__ import annotations

import csv
import io
import re
import stat
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from qc_tool.services.exports import images_csv
from qc_tool.services.uploads.store import UploadStore
from waiting import wait_until
from zips import (
    BATCH_INVALID,
    BATCH_VALID,
    CD_FLAGS,
    Dup,
    info,
    make_zip,
    patch_central,
    photo,
    site_batch,
)

from web.support import OTHER_PASSWORD, OTHER_USERNAME, MakeApp, context, csrf_token, log_in


def store_of(app: Flask) -> UploadStore:
    found = context(app).uploads
    assert isinstance(found, UploadStore)
    return found


def kept_files(app: Flask) -> list[str]:
    """Whatever the app's uploads left on disk."""
    base = store_of(app).base_dir
    return [] if base is None else [str(p) for p in base.rglob("*")]


@pytest.fixture
def app(make_app: MakeApp) -> Iterator[Flask]:
    """The app with the pixel work in threads (QC_PARSE_WORKERS=0): no processes to start."""
    made = make_app(QC_PARSE_WORKERS=0)
    yield made
    store_of(made).close()


@pytest.fixture(scope="module")
def batch() -> dict[str, bytes]:
    return site_batch()


@pytest.fixture(scope="module")
def batch_zip(batch: dict[str, bytes]) -> bytes:
    return make_zip(batch)


def post_zip(
    client: FlaskClient, data: bytes, filename: str = "SITE-9.zip", token: str | None = "page"
) -> Any:
    form: dict[str, Any] = {"zip": (io.BytesIO(data), filename)}
    if token is not None:
        form["csrf_token"] = csrf_token(client, "/uploads") if token == "page" else token
    return client.post("/uploads", data=form, content_type="multipart/form-data")


def uploaded(client: FlaskClient, data: bytes) -> str:
    """Upload ``data``; the URL of its results page."""
    response = post_zip(client, data)
    assert response.status_code == 303, response.get_data(as_text=True)
    location: str = response.headers["Location"]
    assert re.fullmatch(r"/uploads/[\w-]+", location), location
    return location


def results_page(client: FlaskClient, url: str, timeout: float = 60.0) -> str:
    """The results page once the checks are over (it refreshes itself while they run)."""

    def finished_page() -> str | None:
        response = client.get(url)
        assert response.status_code == 200
        page: str = response.get_data(as_text=True)
        if 'data-state="running"' not in page:
            return page
        assert '<meta http-equiv="refresh" content="2">' in page
        return None

    return wait_until(finished_page, timeout=timeout, message="the checks to end")


def upload_state(client: FlaskClient, url: str) -> dict[str, Any]:
    """``GET /api/uploads/<id>`` for the results page at ``url``."""
    response = client.get("/api" + url)
    assert response.status_code == 200 and response.mimetype == "application/json"
    body: dict[str, Any] = response.get_json()
    return body


def test_the_upload_page_needs_a_login(client: FlaskClient) -> None:
    response = client.get("/uploads")
    assert response.status_code == 302 and response.headers["Location"] == "/login"


def test_the_sites_page_links_the_upload_form(logged_in: FlaskClient) -> None:
    page = logged_in.get("/").get_data(as_text=True)
    assert 'href="/uploads" id="upload-link"' in page
    form = logged_in.get("/uploads").get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in form and 'name="zip"' in form
    assert "At most 2,048 MB per ZIP, 5,000 entries" in form
    assert "Photos (.jpg, .jpeg, .heic, .heif or .dng) are checked" in form


def test_a_zip_is_checked_and_served_as_a_page_a_csv_and_a_sorted_zip(
    make_app: MakeApp,
    batch_zip: bytes,
    batch: dict[str, bytes],
    sftp_username: str,
    sftp_password: str,
) -> None:
    app = make_app()  # the default: the app's shared process pool measures the pixels
    try:
        client = app.test_client()
        assert log_in(client, sftp_username, sftp_password).status_code == 303
        url = uploaded(client, batch_zip)
        page = results_page(client, url)
    finally:
        store_of(app).close()  # also proves close() after use works
    totals = {
        label: value
        for value, label in re.findall(
            r'<span class="value">([^<]+)</span><span class="label">([^<]+)</span>', page
        )
    }
    assert (totals["photos"], totals["valid"], totals["invalid"]) == ("10", "5", "5")
    assert totals["not judged"] == "0" and totals["skipped files"] == "1"
    assert {"check time", "photos/s", "per photo", "parallel speed-up", "memory (RSS)"} <= set(
        totals
    )
    assert '<section class="card verdict" id="verdict" data-decision="refly"' in page
    assert '<p class="verdict-decision" id="verdict-decision">Re-fly needed</p>' in page
    verdicts = dict(re.findall(r'<tr data-path="([^"]+)" data-valid="(true|false|null)"', page))
    assert verdicts == {
        **{name: "false" for name in BATCH_INVALID},
        **{name: "true" for name in BATCH_VALID},
    }
    assert "Under-exposed" in page and "Blurred: focus" in page
    assert "not a JPEG" in page
    assert "SITE-9/Base/notes.txt" in page and "not a photo (JPEG, HEIC, HEIF or DNG)" in page
    assert '<tr data-folder="Tower">' in page and '<tr data-folder="Base">' in page
    assert '<li data-folder="Base">' in page  # the re-fly list


def test_the_csv_and_the_sorted_zip_hold_every_photo(
    logged_in: FlaskClient, batch_zip: bytes, batch: dict[str, bytes]
) -> None:
    url = uploaded(logged_in, batch_zip)
    results_page(logged_in, url)
    response = logged_in.get(f"{url}/checks.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "filename=SITE-9-checks.csv" in response.headers["Content-Disposition"]
    text = response.get_data(as_text=True)
    rows = {r["path"]: r for r in csv.DictReader(io.StringIO(text))}
    assert sorted(rows) == sorted([*BATCH_INVALID, *BATCH_VALID])
    assert rows["Tower/DJI_0007.JPG"]["valid"] == "False"
    assert rows["Tower/DJI_0007.JPG"]["failures"] == "exposure"
    assert "Under-exposed" in rows["Tower/DJI_0007.JPG"]["reasons"]
    assert float(rows["Tower/DJI_0002.JPG"]["blur_value"]) > 80
    assert text == images_csv(upload_state(logged_in, url)["result"])  # the one CSV writer

    with logged_in.get(f"{url}/sorted.zip") as response:  # a file response: close it
        assert response.status_code == 200 and response.mimetype == "application/zip"
        assert "filename=SITE-9-sorted.zip" in response.headers["Content-Disposition"]
        body = response.get_data()
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert archive.read("checks.csv").decode() == text
        photos = [n for n in archive.namelist() if n != "checks.csv"]
        assert sorted(photos) == sorted(
            [f"invalid/{n}" for n in BATCH_INVALID] + [f"valid/{n}" for n in BATCH_VALID]
        )
        for name in photos:
            assert archive.read(name) == batch["SITE-9/" + name.split("/", 1)[1]], name


def test_another_user_cannot_see_an_upload(
    logged_in: FlaskClient, app: Flask, batch_zip: bytes
) -> None:
    url = uploaded(logged_in, batch_zip)
    results_page(logged_in, url)
    other = app.test_client()
    assert log_in(other, OTHER_USERNAME, OTHER_PASSWORD).status_code == 303
    for path in (url, f"{url}/checks.csv", f"{url}/sorted.zip"):
        response = other.get(path)
        assert response.status_code == 404, path
        assert b"PK" not in response.get_data()[:2]
    assert url not in other.get("/uploads").get_data(as_text=True)
    assert url in logged_in.get("/uploads").get_data(as_text=True)  # the owner's list


def test_an_upload_without_the_csrf_token_is_refused(
    logged_in: FlaskClient, app: Flask, batch_zip: bytes
) -> None:
    for token in (None, "forged-token"):
        response = post_zip(logged_in, batch_zip, token=token)
        assert response.status_code == 400
        assert "The form expired or did not come from this site" in response.get_data(as_text=True)
    assert kept_files(app) == []


def test_an_anonymous_upload_goes_to_the_login_without_its_body_being_read(
    client: FlaskClient, app: Flask
) -> None:
    response = post_zip(client, bytes(200_000), token="whatever")  # past the app's 64 KB limit
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert kept_files(app) == []


def test_an_upload_over_the_limit_is_refused_as_too_large(
    make_app: MakeApp, sftp_username: str, sftp_password: str
) -> None:
    app = make_app(QC_UPLOAD_MAX_MB=0.05, QC_PARSE_WORKERS=0)  # 51.2 KB
    try:
        client = app.test_client()
        log_in(client, sftp_username, sftp_password)
        response = post_zip(client, make_zip({f"{i}.jpg": photo(i) for i in range(4)}))
        assert response.status_code == 413
        page = response.get_data(as_text=True)
        assert "The upload is larger than 51.2 KB, the most accepted." in page
        assert 'name="zip"' in page  # the form again, to choose another file
        assert kept_files(app) == []
    finally:
        store_of(app).close()


def test_other_forms_still_refuse_large_bodies(client: FlaskClient) -> None:
    token = csrf_token(client)
    response = client.post("/login", data={"csrf_token": token, "username": "x" * 100_000})
    assert response.status_code == 413


HOSTILE = {
    "traversal": (
        {"a.jpg": b"x", info("../../evil.jpg"): b"x"},
        "Refused: the entry '../../evil.jpg' points outside the folder it would be unpacked into",
    ),
    "absolute": (
        {info("/tmp/evil.jpg"): b"x"},
        "Refused: the entry '/tmp/evil.jpg' has an absolute",
    ),
    "symlink": (
        {"a.jpg": b"x", info("link.jpg", mode=stat.S_IFLNK | 0o777): b"/etc/passwd"},
        "Refused: the entry 'link.jpg' is a symbolic link.",
    ),
    "duplicate": (
        {"a.jpg": b"x", Dup("a.jpg"): b"y"},
        "Refused: the entry 'a.jpg' appears twice in the ZIP.",
    ),
    "bomb": (
        {"a.jpg": b"x", "bomb.jpg": bytes(20 * 2**20)},
        "Refused: the entry 'bomb.jpg' expands 1,0",
    ),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_a_hostile_zip_is_refused_with_the_reason_and_nothing_is_kept(
    logged_in: FlaskClient, app: Flask, kind: str
) -> None:
    entries, message = HOSTILE[kind]
    response = post_zip(logged_in, make_zip(entries))
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert message.replace("'", "&#39;") in page, page
    assert 'id="upload-problem"' in page
    assert kept_files(app) == []


def test_an_encrypted_zip_is_refused(logged_in: FlaskClient) -> None:
    data = patch_central(make_zip({"a.jpg": b"x", "b.jpg": b"y"}), 1, CD_FLAGS, 0x1)
    response = post_zip(logged_in, data)
    assert response.status_code == 400
    assert "is encrypted (password-protected ZIPs are not accepted)" in response.get_data(
        as_text=True
    )


def test_a_file_that_is_not_a_zip_is_a_clear_400(logged_in: FlaskClient) -> None:
    response = post_zip(logged_in, photo(1), filename="DJI_0001.JPG")
    assert response.status_code == 400
    assert "This file is not a ZIP archive" in response.get_data(as_text=True)


def test_choosing_no_file_is_a_clear_400(logged_in: FlaskClient) -> None:
    token = csrf_token(logged_in, "/uploads")
    response = logged_in.post("/uploads", data={"csrf_token": token})
    assert response.status_code == 400
    assert "Choose a ZIP file of photos to upload." in response.get_data(as_text=True)


def test_an_unknown_upload_is_a_404(logged_in: FlaskClient) -> None:
    for path in ("/uploads/nope", "/uploads/nope/checks.csv", "/uploads/nope/sorted.zip"):
        assert logged_in.get(path).status_code == 404


# -- the upload's result document: the API, the banner, previews ---------------------------


def test_the_api_answers_the_owner_with_the_result_document(
    logged_in: FlaskClient, batch_zip: bytes
) -> None:
    url = uploaded(logged_in, batch_zip)
    upload_id = url.rsplit("/", 1)[1]
    first = upload_state(logged_in, url)
    assert list(first) == ["id", "state", "done", "total", "result"]
    assert first["id"] == upload_id and first["state"] in ("running", "done")
    assert (first["result"] is None) == (first["state"] == "running")
    results_page(logged_in, url)
    body = upload_state(logged_in, url)
    assert list(body) == ["id", "state", "done", "total", "result"]
    assert (body["id"], body["state"], body["done"], body["total"]) == (upload_id, "done", 10, 10)
    document = body["result"]
    assert document["site"] == "SITE-9"
    verdict = document["verdict"]
    assert verdict["decision"] == "refly"
    assert sorted(verdict["invalid"]) == sorted(BATCH_INVALID)
    assert {i["path"]: i["valid"] for i in document["images"]} == {
        **{name: False for name in BATCH_INVALID},
        **{name: True for name in BATCH_VALID},
    }
    for name, kind in BATCH_INVALID.items():
        image = next(i for i in document["images"] if i["path"] == name)
        assert kind in image["problems"], image
    assert document["site_area"]["centre"] is not None


def test_the_api_hides_an_upload_from_everyone_but_its_owner(
    logged_in: FlaskClient, app: Flask, batch_zip: bytes
) -> None:
    url = uploaded(logged_in, batch_zip)
    results_page(logged_in, url)
    other = app.test_client()
    assert log_in(other, OTHER_USERNAME, OTHER_PASSWORD).status_code == 303
    theirs = other.get("/api" + url)
    assert theirs.status_code == 404 and theirs.get_json()["error"] == "not_found"
    assert b"DJI_" not in theirs.get_data()
    anonymous = app.test_client().get("/api" + url)
    assert anonymous.status_code == 401 and anonymous.get_json()["error"] == "not_logged_in"
    assert logged_in.get("/api/uploads/no-such-upload").status_code == 404


def test_a_small_batch_shows_the_banner_and_names_the_rule_it_could_not_apply(
    logged_in: FlaskClient,
) -> None:
    small = make_zip({f"SITE-3/Tower/DJI_{i:04d}.JPG": photo(i) for i in range(1, 4)})
    url = uploaded(logged_in, small)
    page = results_page(logged_in, url)
    assert '<section class="card verdict" id="verdict" data-decision="pass"' in page
    assert '<p class="verdict-decision" id="verdict-decision">Passed</p>' in page
    assert '<h2 id="verdict-headline">All 3 photos are good</h2>' in page
    notes = re.search(r'<ul class="verdict-notes" id="verdict-notes">(.*?)</ul>', page, re.DOTALL)
    assert notes is not None
    assert (
        "<li>The site-relative blur rule was not applied: it needs at least 8 photos with a "
        "focus score and 3 had one" in notes.group(1)
    )
    verdict = upload_state(logged_in, url)["result"]["verdict"]
    assert any(
        n.startswith("The site-relative blur rule was not applied") for n in verdict["notes"]
    )
    # The page brings the QC page's map and preview panes, and the script that fills them.
    for needle in (
        'id="map"',
        'id="preview-img"',
        f'data-preview-url="{url}/preview"',
        f'data-result-url="/api{url}"',
        "/static/js/upload/main.js",
    ):
        assert needle in page, needle


def test_a_preview_of_an_uploaded_photo_is_a_small_jpeg_for_the_owner_only(
    logged_in: FlaskClient, app: Flask, batch_zip: bytes
) -> None:
    url = uploaded(logged_in, batch_zip)
    results_page(logged_in, url)
    for path in ("Tower/DJI_0002.JPG", "Tower/DJI_0003.JPG", "Tower/DJI_0007.JPG"):
        response = logged_in.get(f"{url}/preview", query_string={"path": path, "size": "thumb"})
        assert response.status_code == 200 and response.mimetype == "image/jpeg", path
        with Image.open(io.BytesIO(response.get_data())) as shown:
            assert max(shown.size) <= 320 and shown.format == "JPEG"
    other = app.test_client()
    assert log_in(other, OTHER_USERNAME, OTHER_PASSWORD).status_code == 303
    theirs = other.get(f"{url}/preview", query_string={"path": "Tower/DJI_0002.JPG"})
    assert theirs.status_code == 404 and theirs.mimetype != "image/jpeg"


UNLISTED_PHOTOS = [
    "",
    "Tower/DJI_9999.JPG",
    "Base/notes.txt",  # skipped in the ZIP: not a photo of the document
    "Base/DJI_0010.JPG",  # listed, but not a JPEG: no preview to make
    "checks.csv",
    "valid/Tower/DJI_0002.JPG",
    "../Tower/DJI_0002.JPG",
    "Tower/../Tower/DJI_0002.JPG",
    "/Tower/DJI_0002.JPG",
    "SITE-9/Tower/DJI_0002.JPG",
    "Tower\\DJI_0002.JPG",
    "Tower/DJI_0002.JPG\x00",
]


def test_the_upload_preview_serves_only_photos_the_document_lists(
    logged_in: FlaskClient, batch_zip: bytes
) -> None:
    url = uploaded(logged_in, batch_zip)
    results_page(logged_in, url)
    for path in UNLISTED_PHOTOS:
        response = logged_in.get(f"{url}/preview", query_string={"path": path})
        assert response.status_code in (400, 404, 422), (path, response.status_code)
        assert response.mimetype != "image/jpeg", path
    listed = logged_in.get(f"{url}/preview", query_string={"path": "Tower/DJI_0002.JPG"})
    assert listed.status_code == 200 and listed.mimetype == "image/jpeg"


def test_the_upload_api_and_preview_need_a_login(client: FlaskClient) -> None:
    api = client.get("/api/uploads/anything")
    assert api.status_code == 401 and api.get_json()["error"] == "not_logged_in"
    preview = client.get("/uploads/anything/preview", query_string={"path": "a/b.jpg"})
    assert preview.status_code == 302 and preview.headers["Location"] == "/login"


def test_a_page_asked_for_as_the_checks_end_shows_the_progress_not_an_error(
    logged_in: FlaskClient, app: Flask, batch_zip: bytes
) -> None:
    """The runner may finish while the page is being made: a page that saw it running must
    not then render the results without a document (it answered 500 in the browser test)."""
    url = uploaded(logged_in, batch_zip)
    results_page(logged_in, url)
    found = store_of(app)._uploads[url.rsplit("/", 1)[1]]
    found.state = "running"  # as it was a moment before the end

    def document_as_it_ends() -> None:
        found.state = "done"  # the runner finishes between the two reads

    found.document = document_as_it_ends  # type: ignore[method-assign]
    response = logged_in.get(url)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'data-state="running"' in page or 'id="verdict"' in page
    api = logged_in.get("/api" + url).get_json()
    assert (api["state"] == "done") == (api["result"] is not None)
