"""A local folder laid out like the sites root, for `qc-tool scan LOCAL_DIR` and for tests."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from qc_tool.domain import paths
from qc_tool.domain.exif_reader import read_exif_block
from qc_tool.domain.listing import Entry, FolderWalk, kind_of
from qc_tool.domain.models import FolderListing, RemoteFile, SiteInfo
from qc_tool.domain.paths import (
    EntryBudget,
    display_name,
    name_problem,
    path_problem,
    safe_name,
)
from qc_tool.domain.pixel_reader import PixelSource, read_pixels
from qc_tool.domain.sparse import ReadProgram, run_program
from qc_tool.errors import NotFound, QCError, RemoteError
from qc_tool.services.ports import HeaderCallback, PixelCallback, ReadAdmission


class LocalConnector:
    """Connections to a local directory whose subfolders are sites."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    @property
    def server_id(self) -> str:
        return f"file://{self.root}"

    def connect(self) -> LocalConnection:
        if not self.root.is_dir():
            raise NotFound(f"no such folder: {self.root}")
        return LocalConnection(self.root)


class LocalConnection:
    """Reads headers with the same read program as SFTP, through pread."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._opened = 0

    @property
    def files_opened(self) -> int:
        return self._opened

    def list_sites(self) -> list[SiteInfo]:
        sites = {s: name_problem(s) for s in _subdirs(self._root)}
        return [SiteInfo(s, 0 if p else len(_subdirs(self._root / s)), p) for s, p in sites.items()]

    def list_folders(self, site: str) -> list[str]:
        path = self._root / safe_name(site, "site")
        if not path.is_dir():
            raise NotFound(f"no such site: {site}")
        return _subdirs(path)

    def list_images(self, site: str, folders: Sequence[str]) -> dict[str, FolderListing]:
        base = self._root / safe_name(site, "site")
        return {f: _walk(base, safe_name(f, "folder")) for f in folders}

    def read_headers(
        self,
        site: str,
        files: Iterable[RemoteFile],
        on_result: HeaderCallback,
        *,
        pipelined: bool = True,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> None:
        self._read_files(site, files, lambda f: read_exif_block(f.size), on_result, cancelled)

    def read_pixels(
        self,
        site: str,
        files: Iterable[RemoteFile],
        on_result: PixelCallback,
        *,
        whole_file: bool = False,
        cancelled: Callable[[], bool] = lambda: False,
        admission: ReadAdmission | None = None,
    ) -> None:
        def program(f: RemoteFile) -> ReadProgram[PixelSource]:
            return read_pixels(f.size, whole_file=whole_file)

        if admission is None:
            self._read_files(site, files, program, on_result, cancelled)
            return
        # One file at a time: nothing is in flight while waiting for room.
        for f in files:
            if not admission.admit(f):
                return
            try:
                self._read_files(site, [f], program, on_result, cancelled)
            except BaseException:
                admission.abandon(f)
                raise
            admission.finished(f)

    def _read_files(
        self,
        site: str,
        files: Iterable[RemoteFile],
        make_program: Callable[[RemoteFile], ReadProgram[Any]],
        on_result: Callable[[RemoteFile, Any, str | None], None],
        cancelled: Callable[[], bool],
    ) -> None:
        """Run a read program on each file, one after another, through pread."""
        base = self._root / safe_name(site, "site")
        for f in files:
            if cancelled():
                return
            problem = path_problem(f.path)
            if problem is not None:  # a name shown escaped is not the file's name on disk
                on_result(f, None, problem)
                continue
            try:
                fd = os.open(base / f.path, os.O_RDONLY)
            except OSError as exc:
                on_result(f, None, f"cannot open: {exc.strerror}")
                continue
            self._opened += 1
            try:
                value = run_program(make_program(f), _reader(fd))
            except QCError as exc:
                on_result(f, None, exc.message)
            except OSError as exc:
                on_result(f, None, f"read error: {exc.strerror}")
            else:
                on_result(f, value, None)
            finally:
                os.close(fd)

    def release(self) -> None:
        return None

    def close(self) -> None:
        return None


def _walk(base: Path, folder: str) -> FolderListing:
    """One folder's tree, level by level as over SFTP: the same walk, bounds and reports.

    Entries are taken without following links (lstat), as OpenSSH's READDIR gives them.
    """
    walk = FolderWalk(folder)
    budget = EntryBudget(paths.MAX_LISTING, str(base / folder))
    level = [folder]
    while level:
        below: list[str] = []
        for directory in level:
            try:
                entries = _entries(base.joinpath(*directory.split("/")), budget)
            except OSError as exc:
                if directory == folder:  # the folder itself: the scan fails with the reason
                    raise RemoteError(f"cannot list {base / folder}: {exc.strerror}") from exc
                walk.not_searched(directory, f"cannot list it: {exc.strerror}")
                continue
            below += walk.add(directory, entries)
        level = below
    return walk.listing()


def _entries(path: Path, budget: EntryBudget) -> list[Entry]:
    """The entries of one directory, each as lstat sees it, counted against the budget."""
    out = []
    with os.scandir(path) as scan:
        for e in scan:
            budget.take(1)
            st = e.stat(follow_symlinks=False)
            out.append(
                Entry(display_name(e.name), kind_of(st.st_mode), st.st_size, int(st.st_mtime))
            )
    return out


def _subdirs(path: Path) -> list[str]:
    """The folders in ``path``, named as ``display_name`` shows them (hidden ones left out)."""
    try:
        with os.scandir(path) as entries:
            return sorted(
                display_name(e.name)
                for e in entries
                if e.is_dir(follow_symlinks=False) and not e.name.startswith(".")
            )
    except OSError as exc:
        raise RemoteError(f"cannot list {path}: {exc.strerror}") from exc


def _reader(fd: int) -> Callable[[int, int], bytes]:
    def read_at(offset: int, length: int) -> bytes:
        return os.pread(fd, length, offset)

    return read_at
