"""The upload store: one owner per upload, checks in the background, outputs, clean-up on expiry."""

from __future__ import annotations

import csv
import io
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from qc_tool.adapters.local import LocalConnector
from qc_tool.domain.models import Progress
from qc_tool.errors import InsufficientStorage, NotFound, UploadRefused
from qc_tool.services.checks.options import CheckOptions
from qc_tool.services.checks.run import CheckProgress
from qc_tool.services.exports import images_csv
from qc_tool.services.progress import Rate
from qc_tool.services.uploads.store import (
    MAX_PER_OWNER,
    Upload,
    UploadStore,
    remove_stale_folders,
    site_name,
)
from qc_tool.services.uploads.zip_safety import ZipLimits, ZipPlan
from qc_tool.web.errors import status_of
from waiting import wait_until
from zips import BATCH_INVALID, BATCH_VALID, make_zip, photo, site_batch

OWNER, OTHER = "session-a", "session-b"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def batch() -> dict[str, bytes]:
    return site_batch()


@pytest.fixture(scope="module")
def batch_zip(batch: dict[str, bytes]) -> bytes:
    return make_zip(batch)


@pytest.fixture
def measuring() -> Iterator[ThreadPoolExecutor]:
    """Pixel work in threads: the same measuring code, without starting processes."""
    with ThreadPoolExecutor(2) as pool:
        yield pool


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[UploadStore]:
    made = UploadStore(
        ZipLimits(), open_folder=LocalConnector, keep_seconds=600, parent_dir=tmp_path, clock=clock
    )
    yield made
    made.close()


def send(store: UploadStore, pool: Executor, data: bytes, owner: str = OWNER) -> Upload:
    return store.accept(
        owner, "SITE-9.zip", io.BytesIO(data), executor=lambda: (pool, 2), options=CheckOptions()
    )


def finished(upload: Upload, timeout: float = 30.0) -> Upload:
    wait_until(lambda: upload.finished is not None, timeout=timeout, message="the upload to end")
    return upload


def images(upload: Upload) -> dict[str, dict[str, Any]]:
    """The upload's result document, image by image."""
    document = upload.document()
    assert document is not None, (upload.state, upload.error)
    return {image["path"]: image for image in document["images"]}


def csv_rows(upload: Upload) -> dict[str, dict[str, str]]:
    text = upload.checks_csv().decode()
    return {row["path"]: row for row in csv.DictReader(io.StringIO(text))}


def test_every_photo_gets_a_verdict_with_its_reasons(
    store: UploadStore, measuring: ThreadPoolExecutor, batch_zip: bytes
) -> None:
    upload = finished(send(store, measuring, batch_zip))
    assert (upload.state, upload.error, upload.site) == ("done", None, "SITE-9")
    found = images(upload)
    assert sorted(found) == sorted([*BATCH_INVALID, *BATCH_VALID])
    for name, kind in BATCH_INVALID.items():
        assert found[name]["valid"] is False
        assert kind in found[name]["problems"], found[name]
    for name in BATCH_VALID:
        assert found[name]["valid"] is True, found[name]["reasons"]
    assert found["Tower/DJI_0003.JPG"]["checks"]["source"] == "preview"
    assert found["Base/DJI_0010.JPG"]["problems"] == ["unreadable"]
    assert found["Base/DJI_0010.JPG"]["reasons"][0].startswith("not a JPEG")
    assert [(s.entry, s.reason) for s in upload.plan.skipped] == [
        ("SITE-9/Base/notes.txt", "not a photo (JPEG, HEIC, HEIF or DNG)")
    ]
    document = upload.document()
    assert document is not None
    verdict = document["verdict"]
    assert (verdict["decision"], upload.decision) == ("refly", "refly")
    assert (upload.valid, upload.invalid) == (len(BATCH_VALID), len(BATCH_INVALID))
    assert {r["folder"]: len(r["photos"]) for r in verdict["refly"]} == {"Tower": 2, "Base": 3}


def test_the_sorted_zip_holds_the_csv_and_the_uploaded_bytes(
    store: UploadStore, measuring: ThreadPoolExecutor, batch_zip: bytes, batch: dict[str, bytes]
) -> None:
    upload = finished(send(store, measuring, batch_zip))
    with zipfile.ZipFile(upload.sorted_zip) as archive:
        names = archive.namelist()
        assert names[0] == "checks.csv"
        document = upload.document()
        assert document is not None
        assert archive.read("checks.csv").decode() == images_csv(document)
        assert sorted(names[1:]) == sorted(
            [f"invalid/{n}" for n in BATCH_INVALID] + [f"valid/{n}" for n in BATCH_VALID]
        )
        for name in names[1:]:
            _, path = name.split("/", 1)
            assert archive.read(name) == batch[f"SITE-9/{path}"], name
            assert archive.getinfo(name).compress_type == zipfile.ZIP_STORED
    assert not (upload.folder / "photos").exists()  # only the sorted ZIP stays on disk
    assert {path: row["valid"] for path, row in csv_rows(upload).items()} == {
        **{n: "False" for n in BATCH_INVALID},
        **{n: "True" for n in BATCH_VALID},
    }


def test_a_photo_without_gps_is_invalid_everywhere_and_sorted_into_invalid(
    store: UploadStore, measuring: ThreadPoolExecutor, batch: dict[str, bytes]
) -> None:
    """The bug of issue 11: such a photo passed every pixel check, so the upload called it
    valid (and sorted it into valid/) while View QC, the report and the CLI failed it."""
    files = dict(batch)
    files["SITE-9/Tower/DJI_0004.JPG"] = photo(4, gps=False)
    upload = finished(send(store, measuring, make_zip(files)))
    image = images(upload)["Tower/DJI_0004.JPG"]
    assert (image["valid"], image["problems"]) == (False, ["missing_gps"])
    assert (image["checks"]["valid"], image["reasons"]) == (True, ["no GPS tags"])
    document = upload.document()
    assert document is not None and "Tower/DJI_0004.JPG" in document["verdict"]["invalid"]
    assert csv_rows(upload)["Tower/DJI_0004.JPG"]["valid"] == "False"
    with zipfile.ZipFile(upload.sorted_zip) as archive:
        assert "invalid/Tower/DJI_0004.JPG" in archive.namelist()
        assert "valid/Tower/DJI_0004.JPG" not in archive.namelist()


def test_a_photo_damaged_in_the_zip_is_reported_and_the_rest_is_checked(
    store: UploadStore, measuring: ThreadPoolExecutor, batch: dict[str, bytes]
) -> None:
    from zips import local_data_offset

    data = make_zip(batch, zipfile.ZIP_STORED)
    names = list(batch)
    at = local_data_offset(data, names.index("SITE-9/Tower/DJI_0004.JPG")) + 3000
    data = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]
    upload = finished(send(store, measuring, data))
    assert upload.state == "done"
    found = images(upload)
    assert len(found) == 10
    damaged = found["Tower/DJI_0004.JPG"]
    assert (damaged["valid"], damaged["problems"]) == (False, ["unreadable"])
    assert damaged["reasons"] == ["damaged in the ZIP: its data fails the CRC check"]
    assert found["Tower/DJI_0005.JPG"]["valid"] is True
    with zipfile.ZipFile(upload.sorted_zip) as archive:
        assert "invalid/Tower/DJI_0004.JPG" not in archive.namelist()  # only in checks.csv
    assert csv_rows(upload)["Tower/DJI_0004.JPG"]["valid"] == "False"


def test_whole_files_are_read_when_asked(
    store: UploadStore, measuring: ThreadPoolExecutor, batch_zip: bytes
) -> None:
    upload = store.accept(
        OWNER,
        "SITE-9.zip",
        io.BytesIO(batch_zip),
        executor=lambda: (measuring, 2),
        options=CheckOptions(),
        whole_files=True,
    )
    finished(upload)
    # It has a preview, but the file was decoded.
    assert images(upload)["Tower/DJI_0003.JPG"]["checks"]["source"] == "full"
    document = upload.document()
    assert document is not None and document["check_stats"]["preview_images"] == 0


def test_an_upload_the_disk_cannot_hold_is_refused_before_unpacking(
    store: UploadStore,
    measuring: ThreadPoolExecutor,
    batch_zip: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    almost_full = SimpleNamespace(total=100 * 2**30, used=100 * 2**30 - 1000, free=1000)
    monkeypatch.setattr(shutil, "disk_usage", lambda _: almost_full)
    with pytest.raises(InsufficientStorage) as caught:
        send(store, measuring, batch_zip)
    assert status_of(caught.value) == 507
    assert store.base_dir is not None and list(store.base_dir.iterdir()) == []


def test_only_the_owner_sees_an_upload(
    store: UploadStore, measuring: ThreadPoolExecutor, batch_zip: bytes
) -> None:
    upload = send(store, measuring, batch_zip)
    assert store.get(upload.id, OWNER) is upload
    with pytest.raises(NotFound):
        store.get(upload.id, OTHER)
    assert store.mine(OTHER) == []
    finished(upload)


def test_a_refused_zip_leaves_nothing_behind(
    store: UploadStore, measuring: ThreadPoolExecutor
) -> None:
    with pytest.raises(UploadRefused, match="appears twice|holds no photos"):
        send(store, measuring, make_zip({"notes.txt": b"x"}))
    assert store.base_dir is not None and list(store.base_dir.iterdir()) == []
    assert store.mine(OWNER) == []


def test_an_expired_upload_is_deleted(
    store: UploadStore, measuring: ThreadPoolExecutor, batch_zip: bytes, clock: Clock
) -> None:
    upload = finished(send(store, measuring, batch_zip))
    clock.now += 600
    assert store.get(upload.id, OWNER) is upload  # kept for exactly keep_seconds
    clock.now += 1
    with pytest.raises(NotFound):
        store.get(upload.id, OWNER)
    assert not upload.folder.exists()


def test_a_fourth_upload_drops_the_owners_oldest(
    store: UploadStore, measuring: ThreadPoolExecutor, batch_zip: bytes, clock: Clock
) -> None:
    small = make_zip({"a.jpg": site_batch()["SITE-9/Tower/DJI_0002.JPG"]})
    uploads = []
    for _ in range(MAX_PER_OWNER + 1):
        clock.now += 1
        uploads.append(finished(send(store, measuring, small)))
    other = finished(send(store, measuring, small, owner=OTHER))
    assert [u.id for u in store.mine(OWNER)] == [u.id for u in reversed(uploads[1:])]
    assert not uploads[0].folder.exists()
    assert store.get(other.id, OTHER) is other


def test_dropping_an_owner_and_closing_delete_the_files(
    tmp_path: Path, measuring: ThreadPoolExecutor, batch_zip: bytes
) -> None:
    store = UploadStore(ZipLimits(), open_folder=LocalConnector, parent_dir=tmp_path)
    mine = finished(send(store, measuring, batch_zip))
    theirs = finished(send(store, measuring, batch_zip, owner=OTHER))
    store.drop_owner(OWNER)
    assert not mine.folder.exists() and theirs.folder.exists()
    base = store.base_dir
    store.close()
    assert base is not None and not base.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_store_that_was_never_used_leaves_no_folder(tmp_path: Path) -> None:
    UploadStore(ZipLimits(), open_folder=LocalConnector, parent_dir=tmp_path).close()
    assert list(tmp_path.iterdir()) == []


def test_closing_cancels_a_running_upload_and_deletes_its_files(
    tmp_path: Path, batch_zip: bytes
) -> None:
    store = UploadStore(ZipLimits(), open_folder=LocalConnector, parent_dir=tmp_path)
    gate, busy = ThreadPoolExecutor(1), threading.Event()
    gate.submit(busy.wait)  # the measuring pool stays busy until the upload is cancelled
    upload = send(store, gate, batch_zip)
    threading.Thread(target=lambda: (upload.cancel_event.wait(), busy.set())).start()
    store.close()
    assert upload.finished is not None
    assert (upload.state, upload.error) == ("failed", "the upload was cancelled")
    assert list(tmp_path.iterdir()) == []
    gate.shutdown()


@pytest.mark.parametrize(
    ("filename", "site"),
    [
        ("SITE-9.zip", "SITE-9"),
        ("C:\\Users\\pilot\\Tower 12.ZIP", "Tower 12"),
        ("../../etc/passwd.zip", "passwd"),
        (".hidden.zip", "upload"),
        ("\x07.zip", "upload"),
    ],
)
def test_the_site_name_comes_from_the_file_name_when_it_is_safe(filename: str, site: str) -> None:
    assert site_name(filename) == site


def test_the_csv_neutralises_formulas_from_names_but_keeps_negative_numbers(
    store: UploadStore, measuring: ThreadPoolExecutor
) -> None:
    upload = finished(
        send(store, measuring, make_zip({"=HYPERLINK(x)/-1.jpg": photo(1, lat=-33.9, lon=-70.6)}))
    )
    rows = csv_rows(upload)
    assert list(rows) == ["'=HYPERLINK(x)/-1.jpg"]
    row = rows["'=HYPERLINK(x)/-1.jpg"]
    assert (row["folder"], row["file"]) == ("'=HYPERLINK(x)", "'-1.jpg")
    assert (row["lat"], row["lon"]) == ("-33.9", "-70.6")


def test_a_batch_too_small_for_the_site_relative_blur_rule_says_so(
    store: UploadStore, measuring: ThreadPoolExecutor
) -> None:
    upload = finished(send(store, measuring, make_zip({f"T/{i}.jpg": photo(i) for i in range(3)})))
    document = upload.document()
    assert document is not None
    notes = document["verdict"]["notes"]
    assert any(n.startswith("The site-relative blur rule was not applied") for n in notes), notes
    assert not any("outside-the-site rule" in n for n in notes), notes


def test_the_progress_rate_comes_from_the_one_rate_helper() -> None:
    """Each pass's rate and ETA are ``progress.Rate``'s, started afresh for the checks."""
    readings = iter([10.0, 12.0, 50.0, 54.0])
    upload = Upload("u", OWNER, "a.zip", "a", Path("/nonexistent"), ZipPlan((), (), 0, 0), {})
    upload.progress = Rate(clock=lambda: next(readings))
    upload.scan_progress(Progress(0, 40, 0))
    upload.scan_progress(Progress(20, 40, 0))
    assert (upload.phase, upload.progress.rate, upload.progress.eta_s) == (
        "reading headers",
        10.0,
        2.0,
    )
    upload.checks_progress(CheckProgress(0, 40))  # a new pass: 0 done, no rate yet
    assert (upload.phase, upload.progress.rate, upload.progress.eta_s) == (
        "checking photos",
        0.0,
        None,
    )
    upload.checks_progress(CheckProgress(10, 40))
    assert (upload.done, upload.total, upload.progress.rate) == (10, 40, 2.5)
    assert upload.progress.eta_s == 12.0


# -- folders left by a process that died ---------------------------------------------------

CHILD = """
import os, signal, sys
from pathlib import Path
from qc_tool.adapters.local import LocalConnector
from qc_tool.services.uploads.store import UploadStore
from qc_tool.services.uploads.zip_safety import ZipLimits
store = UploadStore(ZipLimits(), open_folder=LocalConnector, parent_dir=Path(sys.argv[1]))
folder = store._folder()  # what accepting an upload makes first
(folder / "DJI_0001.JPG").write_bytes(b"photo" * 100)
print(store.base_dir, flush=True)
if sys.argv[2] == "die":
    os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer does: no clean-up
sys.stdin.read()  # alive until the test closes stdin
store.close()
"""


def _child(parent: Path, how: str) -> tuple[subprocess.Popen[str], Path]:
    """Another app process with an upload in progress; returns it and its store's folder."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(parent), how],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    base = Path(proc.stdout.readline().strip())
    assert base.is_dir() and base.name.startswith("qc-uploads-"), base
    return proc, base


def test_the_folder_of_a_killed_process_is_removed_when_the_next_store_starts(
    tmp_path: Path,
) -> None:
    proc, base = _child(tmp_path, "die")
    assert proc.wait(timeout=30) == -signal.SIGKILL
    assert (base / next(base.iterdir()).name / "DJI_0001.JPG").exists()  # left behind
    UploadStore(ZipLimits(), open_folder=LocalConnector, parent_dir=tmp_path).close()
    assert list(tmp_path.iterdir()) == []


def test_the_folder_of_a_live_store_is_never_removed(tmp_path: Path) -> None:
    proc, theirs = _child(tmp_path, "live")
    try:
        here = UploadStore(ZipLimits(), open_folder=LocalConnector, parent_dir=tmp_path)
        mine = here._folder().parent  # a store of this process, live too
        UploadStore(ZipLimits(), open_folder=LocalConnector, parent_dir=tmp_path).close()
        assert [p.name for p in theirs.rglob("*.JPG")] == ["DJI_0001.JPG"]
        assert mine.is_dir()
        here.close()
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)
    assert list(tmp_path.iterdir()) == []  # each closed store removed its own


def test_an_old_folder_without_a_lock_is_removed_after_a_day_and_nothing_else(
    tmp_path: Path,
) -> None:
    old, recent = tmp_path / "qc-uploads-old", tmp_path / "qc-uploads-recent"
    for folder in (old, recent):
        (folder / "upload-1").mkdir(parents=True)
        (folder / "upload-1" / "a.jpg").write_bytes(b"x")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "keep.jpg").write_bytes(b"x")
    (tmp_path / "qc-uploads-link").symlink_to(outside)
    (tmp_path / "qc-uploads-note.txt").write_text("not a folder")
    (tmp_path / "unrelated").mkdir()
    two_days_ago = time.time() - 2 * 24 * 3600
    for path in (old, outside):
        os.utime(path, (two_days_ago, two_days_ago))
    assert remove_stale_folders(tmp_path) == [old]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "elsewhere",
        "qc-uploads-link",
        "qc-uploads-note.txt",
        "qc-uploads-recent",
        "unrelated",
    ]
    assert (outside / "keep.jpg").exists() and (recent / "upload-1" / "a.jpg").exists()
