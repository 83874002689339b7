"""Uploaded ZIPs of photos: inspected and unpacked in the request, checked in the background.

Each upload is owned by the session that sent it; only that owner can see it. Its photos live
in a private temporary folder (mode 0700) until its results are ready; then the sorted ZIP is
all that stays on disk. Everything is deleted when the upload expires, when its owner has too
many, or when the store closes; what a killed process left is deleted by the next store made.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from qc_tool.domain.models import Progress
from qc_tool.domain.paths import safe_name
from qc_tool.domain.structure import StructureProfile
from qc_tool.errors import (
    BadRequest,
    InsufficientStorage,
    NotFound,
    PathRejected,
    QCError,
    TooManyRequests,
    UploadRefused,
)
from qc_tool.services.checks.options import CheckOptions
from qc_tool.services.checks.result import result_document
from qc_tool.services.checks.run import CheckProgress
from qc_tool.services.exports import images_csv
from qc_tool.services.jobs import Packed
from qc_tool.services.ports import Connector
from qc_tool.services.previews import PreviewService
from qc_tool.services.progress import Rate
from qc_tool.services.scan.overview import site_structure
from qc_tool.services.uploads.checks import (
    check_unpacked,
    read_sorted_csv,
    sorted_photo_source,
    write_sorted_zip,
)
from qc_tool.services.uploads.zip_safety import MB, CheckedZip, ZipLimits, ZipPlan

log = logging.getLogger(__name__)

# Where the pixel work runs, and how many workers that is (the web app's shared pool).
ExecutorSource = Callable[[], tuple[Executor, int]]

PHOTOS_DIR = "photos"
SORTED_ZIP = "sorted.zip"
DEFAULT_SITE = "upload"
RUNNERS = 2  # uploads checked at once; more wait their turn
MAX_WAITING = 8  # uploads waiting or running before new ones are refused
MAX_PER_OWNER = 3  # a fourth upload of one user drops that user's oldest
DISK_RESERVE = 256 * MB  # free space left on the temporary disk after unpacking
BASE_PREFIX = "qc-uploads-"  # a store's folder: qc-uploads-<pid>-<random>, beside its .lock
LOCK_SUFFIX = ".lock"
# A folder of the older kind, with no lock file beside it, is taken for abandoned once
# untouched this long (a live store touches its folder at every upload and expiry).
UNLOCKED_STALE_SECONDS = 24 * 3600.0


@dataclass(eq=False)
class Upload:
    """One uploaded ZIP: who sent it, how far its checks got, and its result document.

    Once done it keeps only the document, packed (compressed JSON, as a finished QC job
    does), and a few counts for lists; the page, the API, checks.csv and the sorted ZIP
    all render that document's verdict.
    """

    id: str
    owner: str
    filename: str  # as the browser named it: shown, never used as a path
    site: str  # the name the results carry
    folder: Path  # private: photos/ while checking, then sorted.zip
    plan: ZipPlan
    damaged: dict[str, str]
    whole_files: bool = False
    state: str = "running"  # running | done | failed
    phase: str = "waiting"  # waiting | reading headers | checking photos | sorting | done
    progress: Rate = field(default_factory=Rate)  # of the current phase
    unpack_seconds: float = 0.0
    packed: Packed | None = None  # the result document, once done
    decision: str | None = None  # the verdict's, once done
    valid: int = 0  # photos the verdict calls valid
    invalid: int = 0  # ... and invalid
    error: str | None = None
    created: float = field(default_factory=time.time)
    finished: float | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)

    @property
    def sorted_zip(self) -> Path:
        return self.folder / SORTED_ZIP

    @property
    def done(self) -> int:
        return self.progress.done

    @property
    def total(self) -> int:
        return self.progress.total

    def document(self) -> dict[str, Any] | None:
        """The result document (``check_report.result_document``), None until done."""
        if self.packed is None:
            return None
        document: dict[str, Any] = self.packed.unpack()
        return document

    def state_json(self) -> bytes:
        """``{"id", "state", "done", "total", "result"}`` as JSON; the packed document is
        spliced in as it is, never parsed and written again."""
        state, packed = self.state, self.packed  # in this order: see ``finish``
        head = json.dumps(
            {"id": self.id, "state": state, "done": self.done, "total": self.total},
            separators=(",", ":"),
        )
        result = packed.json_bytes() if state == "done" and packed is not None else b"null"
        return head[:-1].encode() + b',"result":' + result + b"}"

    def checks_csv(self) -> bytes:
        """``checks.csv``: ``images_csv`` of the document, as the sorted ZIP holds it."""
        return read_sorted_csv(self._finished_zip())

    def preview(self, path: str, previews: PreviewService, max_edge: int) -> bytes:
        """A small upright JPEG of one photo of the sorted ZIP, made as View QC makes one.

        Only a photo the ZIP holds (a photo of the document) can be asked for; the key names
        this upload, which only its owner can reach.
        """
        if not path:
            raise BadRequest("which photo? the path parameter is missing")
        archive = self._finished_zip()
        return previews.preview_of(
            ("upload", self.id, path, max_edge),
            lambda: sorted_photo_source(archive, path, previews.max_file_bytes),
            max_edge,
        )

    def _finished_zip(self) -> Path:
        if self.state != "done":
            raise NotFound("the results of this upload are not ready")
        return self.sorted_zip

    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def scan_progress(self, p: Progress) -> None:
        self._progress("reading headers", p.done, p.total)

    def checks_progress(self, p: CheckProgress) -> None:
        self._progress("checking photos", p.done, p.total)

    def _progress(self, phase: str, done: int, total: int) -> None:
        if phase != self.phase:  # a new pass: its rate starts from nothing
            self.phase, self.progress = phase, Rate(clock=self.progress.clock)
        self.progress.update(done, total)

    def finish(self, document: dict[str, Any]) -> None:
        """Keep the document (packed) and the verdict's counts; the upload is done."""
        verdict = document["verdict"]
        total = verdict["photos"]["total"]
        self.progress.update(total, total)  # every photo has its verdict
        self.decision = verdict["decision"]
        self.valid, self.invalid = verdict["photos"]["valid"], verdict["photos"]["invalid"]
        self.packed = Packed.of(document)
        self.phase, self.state = "done", "done"  # after the document: a reader of "done" has it


class UploadStore:
    """The uploads of one app: accepted, checked by ``RUNNERS`` threads, kept ``keep_seconds``."""

    def __init__(
        self,
        limits: ZipLimits,
        *,
        open_folder: Callable[[Path], Connector],  # reads an unpacked upload (LocalConnector)
        keep_seconds: float = 3600.0,
        parent_dir: Path | None = None,  # where its temporary folder goes (default: TMPDIR)
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.limits = limits
        self.keep_seconds = keep_seconds
        self._open_folder = open_folder
        self._clock = clock
        self._parent = parent_dir
        self._base: Path | None = None  # made at the first upload, so an idle app leaves nothing
        self._lock_fd: int | None = None  # held (flock) while the folder is ours
        self._runner = ThreadPoolExecutor(RUNNERS, thread_name_prefix="qc-upload")
        self._uploads: dict[str, Upload] = {}
        self._lock = threading.Lock()
        self._closed = False
        remove_stale_folders(Path(parent_dir or tempfile.gettempdir()))

    @property
    def base_dir(self) -> Path | None:
        """This store's private temporary folder (mode 0700); None until the first upload."""
        return self._base

    def _folder(self) -> Path:
        """A new private folder for one upload, inside the store's own."""
        with self._lock:
            if self._base is None:
                self._base, self._lock_fd = _locked_base(
                    Path(self._parent or tempfile.gettempdir())
                )
            base = self._base
        return Path(tempfile.mkdtemp(prefix="upload-", dir=base))

    def accept(
        self,
        owner: str,
        filename: str,
        fileobj: IO[bytes],
        *,
        executor: ExecutorSource,
        options: CheckOptions,
        whole_files: bool = False,
        site_profile: StructureProfile | None = None,
    ) -> Upload:
        """Inspect and unpack the ZIP now (refusals are immediate), check it in the background.

        The checks and the verdict are View QC's: the same options, and the same site
        profile (``QC_SITE_PROFILE``) for the folders the ZIP holds.
        """
        self.expire()
        with self._lock:
            if self._closed:
                raise QCError("the app is shutting down")
            if sum(u.state == "running" for u in self._uploads.values()) >= MAX_WAITING:
                raise TooManyRequests("Many uploads are being checked right now; try again soon.")
        folder = self._folder()
        try:
            started = time.perf_counter()
            site = site_name(filename)
            with CheckedZip(fileobj, self.limits) as checked:
                self._refuse_if_disk_full(checked.plan)
                (folder / PHOTOS_DIR).mkdir(mode=0o700)
                damaged = _unpack(checked, folder / PHOTOS_DIR / site)
            upload = Upload(
                id=secrets.token_urlsafe(12),
                owner=owner,
                filename=display_name(filename),
                site=site,
                folder=folder,
                plan=checked.plan,
                damaged=damaged,
                whole_files=whole_files,
                created=self._clock(),
            )
            upload.unpack_seconds = time.perf_counter() - started
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        with self._lock:
            self._uploads[upload.id] = upload
            dropped = self._over_quota(owner)
        for old in dropped:
            self._discard(old)
        options = replace(options, whole_file=whole_files)
        try:
            self._runner.submit(self._run, upload, executor, options, site_profile)
        except RuntimeError:  # closed since the check above: close() deletes the files
            upload.state, upload.error, upload.finished = "failed", "the app closed", self._clock()
        log.info(
            "upload %s: %d photos, %d skipped, %d damaged, unpacked in %.2f s",
            upload.id,
            len(upload.plan.photos),
            len(upload.plan.skipped),
            len(damaged),
            upload.unpack_seconds,
        )
        return upload

    def get(self, upload_id: str, owner: str) -> Upload:
        """The upload, if ``owner`` sent it; anyone else's is reported as not found."""
        self.expire()
        with self._lock:
            upload = self._uploads.get(upload_id)
        if upload is None or upload.owner != owner:
            raise NotFound("no such upload (results are kept for a limited time)")
        return upload

    def mine(self, owner: str) -> list[Upload]:
        """The owner's uploads, newest first."""
        self.expire()
        with self._lock:
            found = [u for u in self._uploads.values() if u.owner == owner]
        return sorted(found, key=lambda u: u.created, reverse=True)

    def drop_owner(self, owner: str) -> None:
        """Forget every upload of ``owner`` (at logout) and delete its files."""
        with self._lock:
            gone = [u for u in self._uploads.values() if u.owner == owner]
            for upload in gone:
                del self._uploads[upload.id]
        for upload in gone:
            self._discard(upload)

    def expire(self) -> int:
        """Delete uploads finished more than ``keep_seconds`` ago; returns how many."""
        now = self._clock()
        with self._lock:
            old = [
                u
                for u in self._uploads.values()
                if u.finished is not None and now - u.finished > self.keep_seconds
            ]
            for upload in old:
                del self._uploads[upload.id]
        for upload in old:
            self._discard(upload)
        return len(old)

    def close(self) -> None:
        """Cancel running checks, wait for them, and delete every upload's files."""
        with self._lock:
            self._closed = True
            uploads = list(self._uploads.values())
            self._uploads.clear()
            base, self._base = self._base, None
            lock_fd, self._lock_fd = self._lock_fd, None
        for upload in uploads:
            upload.cancel_event.set()
        self._runner.shutdown(wait=True, cancel_futures=True)
        for upload in uploads:
            if upload.finished is None:  # still waiting for a runner: it never started
                upload.state, upload.error = "failed", "the upload was cancelled"
                upload.finished = self._clock()
        if base is not None:
            shutil.rmtree(base, ignore_errors=True)
            Path(str(base) + LOCK_SUFFIX).unlink(missing_ok=True)
        if lock_fd is not None:
            os.close(lock_fd)

    # -- internals --------------------------------------------------------------------------

    def _run(
        self,
        upload: Upload,
        executor: ExecutorSource,
        options: CheckOptions,
        site_profile: StructureProfile | None,
    ) -> None:
        try:
            if upload.cancelled():
                raise QCError("cancelled before it started")
            pool, workers = executor()
            upload.phase = "reading headers"
            scan, report = check_unpacked(
                self._open_folder(upload.folder / PHOTOS_DIR),
                upload.site,
                pool,
                workers=workers,
                options=options,
                damaged=upload.damaged,
                on_scan=upload.scan_progress,
                on_checks=upload.checks_progress,
                cancelled=upload.cancelled,
            )
            if upload.cancelled():
                raise QCError("cancelled while checking")
            upload.phase = "sorting"
            structure = site_structure(site_profile, scan) if site_profile is not None else None
            document = result_document(scan, report, structure)
            del scan, report  # the document is all that is kept
            planned = {p.path: p for p in upload.plan.photos}
            photos = upload.folder / PHOTOS_DIR / upload.site
            write_sorted_zip(upload.sorted_zip, photos, planned, document, images_csv(document))
            shutil.rmtree(upload.folder / PHOTOS_DIR)  # the sorted ZIP holds them now
            upload.finish(document)
        except QCError as exc:
            upload.state = "failed"
            upload.error = "the upload was cancelled" if upload.cancelled() else exc.message
        except Exception as exc:  # a bug fails this upload, not the runner thread
            log.exception("upload %s failed", upload.id)
            upload.error, upload.state = f"internal error: {type(exc).__name__}", "failed"
        finally:
            upload.finished = self._clock()
            if upload.state == "failed" or upload.cancelled():
                shutil.rmtree(upload.folder / PHOTOS_DIR, ignore_errors=True)
            with self._lock:
                forgotten = upload.id not in self._uploads
            if forgotten:  # dropped while it ran: nobody can ask for it any more
                shutil.rmtree(upload.folder, ignore_errors=True)

    def _over_quota(self, owner: str) -> list[Upload]:
        """Forget the oldest uploads of ``owner`` beyond MAX_PER_OWNER (call with the lock held)."""
        mine = sorted(
            (u for u in self._uploads.values() if u.owner == owner), key=lambda u: u.created
        )
        dropped = mine[: max(0, len(mine) - MAX_PER_OWNER)]
        for upload in dropped:
            del self._uploads[upload.id]
        return dropped

    def _discard(self, upload: Upload) -> None:
        upload.cancel_event.set()
        if upload.finished is not None:
            shutil.rmtree(upload.folder, ignore_errors=True)
        # else: the running job deletes its folder when it sees it was forgotten

    def _refuse_if_disk_full(self, plan: ZipPlan) -> None:
        free = shutil.disk_usage(self._base or tempfile.gettempdir()).free
        # Photos once unpacked, once in the sorted ZIP (briefly both).
        needed = 2 * plan.photo_bytes + DISK_RESERVE
        if free < needed:
            raise InsufficientStorage(
                "The server does not have enough free disk space for this upload right now."
            )


def _locked_base(parent: Path) -> tuple[Path, int]:
    """A new private folder for a store, and the open lock file beside it, held (flock).

    The lock is made and taken before the folder exists, so a folder whose lock is free
    belongs to nobody: the kernel drops a flock when its process dies, however it dies.
    """
    while True:
        fd, lock_path = tempfile.mkstemp(
            prefix=f"{BASE_PREFIX}{os.getpid()}-", suffix=LOCK_SUFFIX, dir=parent
        )
        base = Path(lock_path.removesuffix(LOCK_SUFFIX))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            base.mkdir(mode=0o700)
            return base, fd
        except FileExistsError:  # that name is a folder already: take another
            pass
        except BaseException:
            _release(fd, lock_path)
            raise
        _release(fd, lock_path)


def _release(fd: int, lock_path: str) -> None:
    Path(lock_path).unlink(missing_ok=True)
    os.close(fd)


def remove_stale_folders(parent: Path, now: float | None = None) -> list[Path]:
    """Delete the upload folders in ``parent`` that no live store owns; returns them.

    A folder is abandoned when its lock file can be locked (its owner died without running
    ``close``: killed, say, by the out-of-memory killer), or, for a folder with no lock file
    (made by an older version), when it was untouched for ``UNLOCKED_STALE_SECONDS``. Only this
    user's entries are looked at, links are never followed, and a folder whose lock is held is
    never touched.
    """
    now = time.time() if now is None else now
    try:
        entries = [e for e in os.scandir(parent) if e.name.startswith(BASE_PREFIX) and _mine(e)]
    except OSError:
        return []
    names = {e.name for e in entries}
    removed = []
    for entry in entries:
        if entry.name.endswith(LOCK_SUFFIX) and entry.is_file(follow_symlinks=False):
            fd = _take_abandoned_lock(entry.path)
            if fd is None:
                continue
            folder = Path(entry.path.removesuffix(LOCK_SUFFIX))
            shutil.rmtree(folder, ignore_errors=True)
            _release(fd, entry.path)
            removed.append(folder)
        elif _old_unlocked(entry, names, now):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
    for folder in removed:
        log.warning("upload folder %s was left by a process that ended: removed", folder)
    return removed


def _old_unlocked(entry: os.DirEntry[str], names: set[str], now: float) -> bool:
    """A folder with no lock beside it (an older version's), untouched for long enough.
    (A folder being made right now has its lock already, and is new anyway.)"""
    if not entry.is_dir(follow_symlinks=False) or entry.name + LOCK_SUFFIX in names:
        return False
    return now - entry.stat(follow_symlinks=False).st_mtime > UNLOCKED_STALE_SECONDS


def _mine(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.stat(follow_symlinks=False).st_uid == os.getuid()
    except OSError:
        return False


def _take_abandoned_lock(lock_path: str) -> int | None:
    """The lock file's descriptor, locked, if nobody held it (a live store always does)."""
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # held (BlockingIOError), or no locks on this file system: leave it
        os.close(fd)
        return None
    return fd


def _unpack(checked: CheckedZip, dest: Path) -> dict[str, str]:
    try:
        return checked.unpack(dest)
    except OSError as exc:  # writing failed: the server's problem, not the ZIP's
        log.error("upload: unpacking failed: %s", exc)
        if exc.errno == errno.ENOSPC:
            raise InsufficientStorage(
                "The server ran out of disk space while unpacking this upload."
            ) from exc
        raise QCError("The upload could not be stored on the server.") from exc


def site_name(filename: str) -> str:
    """The name the results carry: the ZIP's name without ``.zip``, if it is a plain name."""
    stem = display_name(filename)
    if stem.lower().endswith(".zip"):
        stem = stem[:-4]
    try:
        return safe_name(stem.strip()[:100], "site")
    except PathRejected:
        return DEFAULT_SITE


def display_name(filename: str) -> str:
    """The browser's file name without any directory part (some browsers send a full path)."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name[:200] or "upload.zip"


__all__ = ["InsufficientStorage", "Upload", "UploadRefused", "UploadStore"]
