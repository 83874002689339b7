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

import pytest
from qc_tool.domain.checks.result import CheckOutcome, ImageChecks
from qc_tool.domain.models import ImageResult, ScanResult
from qc_tool.errors import NotFound
from qc_tool.services.upload_checks import upload_csv
from qc_tool.services.uploads import (
    MAX_PER_OWNER,
    InsufficientStorage,
    Upload,
    UploadStore,
    remove_stale_folders,
    site_name,
)
from qc_tool.services.validation_service import CheckOptions, CheckReport
from qc_tool.services.zip_safety import UploadRefused, ZipLimits
from zips import BATCH_INVALID, BATCH_VALID, make_zip, site_batch

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
    made = UploadStore(ZipLimits(), keep_seconds=600, parent_dir=tmp_path, clock=clock)
    yield made
    made.close()


def send(store: UploadStore, pool: Executor, data: bytes, owner: str = OWNER) -> Upload:
    return store.accept(
        owner, "SITE-9.zip", io.BytesIO(data), executor=lambda: (pool, 2), options=CheckOptions()
    )


def finished(upload: Upload, timeout: float = 30.0) -> Upload:
    deadline = time.monotonic() + timeout
    while upload.finished is None:
        assert time.monotonic() < deadline, f"upload still {upload.phase}"
        time.sleep(0.02)
    return upload


def test_every_photo_gets_a_verdict_with_its_reasons(
    store: UploadStore, measuring: ThreadPoolExecutor, batch_zip: bytes
) -> None:
    upload = finished(send(store, measuring, batch_zip))
    assert (upload.state, upload.error, upload.site) == ("done", None, "SITE-9")
    assert upload.report is not None
    verdicts = {c.name: c for c in upload.report.images}
    assert sorted(verdicts) == sorted([*BATCH_INVALID, *BATCH_VALID])
    for name, kind in BATCH_INVALID.items():
        assert not verdicts[name].valid
        assert kind in {o.name for o in verdicts[name].failures}, verdicts[name]
    for name in BATCH_VALID:
        assert verdicts[name].valid, verdicts[name].failures
    assert verdicts["Tower/DJI_0003.JPG"].source == "preview"
    unreadable = verdicts["Base/DJI_0010.JPG"].failures[0]
    assert unreadable.message.startswith("Unreadable: not a JPEG")
    assert [(s.entry, s.reason) for s in upload.plan.skipped] == [
        ("SITE-9/Base/notes.txt", "not a JPEG photo")
    ]
    assert upload.report.folders["Base"]["integrity"] == 1
    assert upload.invalid_by_folder() == {"Tower": 2, "Base": 3}


def test_the_sorted_zip_holds_the_csv_and_the_uploaded_bytes(
    store: UploadStore, measuring: ThreadPoolExecutor, batch_zip: bytes, batch: dict[str, bytes]
) -> None:
    upload = finished(send(store, measuring, batch_zip))
    with zipfile.ZipFile(upload.sorted_zip) as archive:
        names = archive.namelist()
        assert names[0] == "checks.csv"
        assert archive.read("checks.csv").decode() == upload.csv
        assert sorted(names[1:]) == sorted(
            [f"invalid/{n}" for n in BATCH_INVALID] + [f"valid/{n}" for n in BATCH_VALID]
        )
        for name in names[1:]:
            _, path = name.split("/", 1)
            assert archive.read(name) == batch[f"SITE-9/{path}"], name
            assert archive.getinfo(name).compress_type == zipfile.ZIP_STORED
    assert not (upload.folder / "photos").exists()  # only the sorted ZIP stays on disk
    rows = list(csv.DictReader(io.StringIO(upload.csv or "")))
    assert {r["path"]: r["valid"] for r in rows} == {
        **{n: "False" for n in BATCH_INVALID},
        **{n: "True" for n in BATCH_VALID},
    }


def test_a_photo_damaged_in_the_zip_is_reported_and_the_rest_is_checked(
    store: UploadStore, measuring: ThreadPoolExecutor, batch: dict[str, bytes]
) -> None:
    from zips import local_data_offset

    data = make_zip(batch, zipfile.ZIP_STORED)
    names = list(batch)
    at = local_data_offset(data, names.index("SITE-9/Tower/DJI_0004.JPG")) + 3000
    data = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]
    upload = finished(send(store, measuring, data))
    assert upload.state == "done" and upload.report is not None
    verdicts = {c.name: c for c in upload.report.images}
    assert len(verdicts) == 10
    damaged = verdicts["Tower/DJI_0004.JPG"]
    assert not damaged.valid
    assert damaged.failures[0].message == (
        "Unreadable: damaged in the ZIP: its data fails the CRC check"
    )
    assert verdicts["Tower/DJI_0005.JPG"].valid
    with zipfile.ZipFile(upload.sorted_zip) as archive:
        assert "invalid/Tower/DJI_0004.JPG" not in archive.namelist()  # only in checks.csv
    assert "Tower/DJI_0004.JPG" in (upload.csv or "")


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
    assert upload.report is not None
    sources = {c.name: c.source for c in upload.report.images}
    assert sources["Tower/DJI_0003.JPG"] == "full"  # it has a preview, but the file was decoded
    assert upload.report.stats.preview_images == 0


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
    assert caught.value.status == 507
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
    with pytest.raises(UploadRefused, match="appears twice|no JPEG"):
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
    store = UploadStore(ZipLimits(), parent_dir=tmp_path)
    mine = finished(send(store, measuring, batch_zip))
    theirs = finished(send(store, measuring, batch_zip, owner=OTHER))
    store.drop_owner(OWNER)
    assert not mine.folder.exists() and theirs.folder.exists()
    base = store.base_dir
    store.close()
    assert base is not None and not base.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_store_that_was_never_used_leaves_no_folder(tmp_path: Path) -> None:
    UploadStore(ZipLimits(), parent_dir=tmp_path).close()
    assert list(tmp_path.iterdir()) == []


def test_closing_cancels_a_running_upload_and_deletes_its_files(
    tmp_path: Path, batch_zip: bytes
) -> None:
    store = UploadStore(ZipLimits(), parent_dir=tmp_path)
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


def test_the_csv_neutralises_formulas_from_names_but_keeps_negative_numbers() -> None:
    scan = ScanResult("S")
    scan.images.append(ImageResult("=HYPERLINK(x)/a.jpg", 10, 0, lat=-33.9, lon=-70.6))
    report = CheckReport("S")
    outcome = CheckOutcome("position", True, "+ at the site", -1.5)
    report.images.append(ImageChecks.of("=HYPERLINK(x)/a.jpg", (outcome,), "full", 0.0))
    rows = list(csv.DictReader(io.StringIO(upload_csv(scan, report))))
    assert rows[0]["path"] == "'=HYPERLINK(x)/a.jpg"
    assert (rows[0]["lat"], rows[0]["lon"], rows[0]["position_value"]) == ("-33.9", "-70.6", "-1.5")


# -- folders left by a process that died ---------------------------------------------------

CHILD = """
import os, signal, sys
from pathlib import Path
from qc_tool.services.uploads import UploadStore
from qc_tool.services.zip_safety import ZipLimits
store = UploadStore(ZipLimits(), parent_dir=Path(sys.argv[1]))
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
    UploadStore(ZipLimits(), parent_dir=tmp_path).close()
    assert list(tmp_path.iterdir()) == []


def test_the_folder_of_a_live_store_is_never_removed(tmp_path: Path) -> None:
    proc, theirs = _child(tmp_path, "live")
    try:
        here = UploadStore(ZipLimits(), parent_dir=tmp_path)
        mine = here._folder().parent  # a store of this process, live too
        UploadStore(ZipLimits(), parent_dir=tmp_path).close()
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
