"""Photos at any depth below a site's top-level folder: the walk both adapters list by.

A drone card copied as it is holds ``DCIM/100MEDIA/DJI_0001.JPG``: its photos belong to the
top-level folder they sit under, with paths ``<folder>/<sub>/<file>``. The adapters list
directories level by level (SFTP: every directory of a level in flight at once) and hand each
listing to ``FolderWalk.add``, which sorts the entries into photos, other files, directories
to list next and entries not searched (with why). The walk is bounded: ``MAX_DEPTH`` levels
below the folder (a deeper directory is reported, not listed), and the entries of the whole
tree counted against one budget (``paths.EntryBudget``, QC_MAX_LISTING). Links are never
followed: entries are taken as the server's READDIR gives them (lstat on OpenSSH and
asyncssh), where a link is a link, not the directory it points to, so a walk descends only
into real directories, each reached from its one parent: each is listed once and a link loop
is never entered. (A server whose READDIR followed links would show a loop as directories;
the depth bound would end it.)
"""

from __future__ import annotations

import stat
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from qc_tool.domain.models import FolderListing, NotSearched, OtherFile, RemoteFile
from qc_tool.domain.paths import is_image_name, name_problem

# Directory levels listed below a top-level folder: DCIM/100MEDIA is 2; a copied card inside
# a dated folder inside a pilot's folder is 4. Deeper ones are reported, not listed.
MAX_DEPTH = 8
# Other files and entries not searched kept by name per folder (all are counted): a folder of
# thousands of video frames must not make the result document thousands of rows longer.
MAX_SHOWN = 100

LINK = "a symbolic link: not followed"


class Kind(Enum):
    DIR = "dir"
    FILE = "file"
    LINK = "link"
    OTHER = "other"  # a device, pipe or socket: never read


def kind_of(mode: int | None) -> Kind:
    """An entry's kind from its lstat mode (a mode the server did not send: OTHER)."""
    mode = mode or 0
    if stat.S_ISDIR(mode):
        return Kind.DIR
    if stat.S_ISREG(mode):
        return Kind.FILE
    return Kind.LINK if stat.S_ISLNK(mode) else Kind.OTHER


@dataclass(frozen=True, slots=True)
class Entry:
    """One listed entry, as the adapter saw it without following links (lstat)."""

    name: str  # as paths.display_name shows it
    kind: Kind
    size: int = 0
    mtime: int = 0


class FolderWalk:
    """One top-level folder's tree, as its directories are listed.

    Directories are named by their path inside the site (``<folder>/<sub>``); ``add`` returns
    the subdirectories to list next, none deeper than ``max_depth``.
    """

    def __init__(self, folder: str, max_depth: int = MAX_DEPTH) -> None:
        self.folder = folder
        self.max_depth = max_depth
        self._photos: list[RemoteFile] = []
        self._others: list[OtherFile] = []
        self._not_searched: list[NotSearched] = []
        self._directories = 0

    def add(self, directory: str, entries: Iterable[Entry]) -> list[str]:
        """Take one directory's listing; return the subdirectories to list next."""
        self._directories += 1
        depth = directory.count("/")  # the folder itself is level 0
        below: list[str] = []
        for e in entries:
            if e.name.startswith("."):  # hidden (.DS_Store, ._ files, .Trash): as at the top
                continue
            path = f"{directory}/{e.name}"
            if e.kind is Kind.FILE:
                if is_image_name(e.name):
                    self._photos.append(RemoteFile(path, e.size, e.mtime))
                else:
                    self._others.append(OtherFile(path, e.size))
            elif e.kind is Kind.DIR:
                problem = name_problem(e.name)
                if problem is not None:  # a name shown escaped is never sent back as a path
                    self.not_searched(path, problem)
                elif depth + 1 > self.max_depth:
                    self.not_searched(
                        path, f"more than {self.max_depth} folder levels below {self.folder}"
                    )
                else:
                    below.append(path)
            elif e.kind is Kind.LINK:
                self.not_searched(path, LINK)
            else:
                self._others.append(OtherFile(path, e.size))
        return sorted(below)

    def not_searched(self, path: str, reason: str) -> None:
        """A directory or link left out, with why (also: the server refused to list it)."""
        self._not_searched.append(NotSearched(path, reason))

    def listing(self) -> FolderListing:
        others = sorted(self._others, key=lambda o: o.path)
        return FolderListing(
            photos=sorted(self._photos, key=lambda f: f.path),
            others=others[:MAX_SHOWN],
            other_files=len(others),
            not_searched=sorted(self._not_searched, key=lambda n: n.path)[:MAX_SHOWN],
            directories=self._directories,
        )
