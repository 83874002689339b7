"""Names of sites, folders and files: how they are shown, and which may be sent to the server.

A name comes from a listing as bytes (SFTP READDIR, a local folder). ``display_name`` turns it
into the text the tool keys, shows and exports it by: the name itself when it is plain UTF-8
text, else the name with backslash escapes. The escaping is one-to-one, so two names never show
alike, and an escaped name always holds a backslash; a name that was escaped (or holds a
backslash of its own) is never sent back to the server as a path, because the server knows it
by bytes the tool does not hold exactly. ``name_problem`` says why such a name cannot be used.
"""

from __future__ import annotations

import re

from qc_tool.errors import PathRejected, RemoteError

MAX_NAME = 255
# The one rule for which file names are photos (any case): the scan reads them, uploads unpack
# them; every other file of a folder is listed as an "other file". A file's format is decided
# by its bytes when it is read, never by this name.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".heic", ".heif", ".dng")
# The same, as messages name them: ".jpg, .jpeg, .heic, .heif or .dng".
IMAGE_SUFFIXES_TEXT = ", ".join(IMAGE_SUFFIXES[:-1]) + " or " + IMAGE_SUFFIXES[-1]
# Entries one listing may hold (QC_MAX_LISTING). A site folder holds hundreds of photos; a
# folder of tens of thousands is a mistake (a whole archive uploaded into one folder) or
# hostile, and listing it whole would hold every entry's attributes in memory.
MAX_LISTING = 20_000

# Characters a name is never shown with: C0 controls, DEL, C1 controls (a terminal reads
# U+009B as CSI), the line and paragraph separators, the bidirectional embeddings, overrides
# and isolates (they reorder what a reader sees), and lone surrogates (undecodable bytes, as
# Python's surrogateescape holds them, or text no encoder accepts).
_CONTROL = "\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_SHOWN_ESCAPED = re.compile(f"[{_CONTROL}]")
_NAME_ESCAPED = re.compile(f"[{_CONTROL}\\\\/]")
_ESCAPE = re.compile(r"\\(?:x([0-9a-f]{2})|u[0-9a-f]{4}|U[0-9a-f]{8}|\\)")

NOT_UTF8 = "the name is not UTF-8 (shown escaped)"
CONTROL_CHARACTERS = "the name holds control characters (shown escaped)"
BACKSLASH = "the name holds a backslash"
SLASH = "the name holds a slash (shown escaped)"


def _escape(char: str) -> str:
    code = ord(char)
    if char == "\\":
        return "\\\\"
    if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8, as surrogateescape holds it
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x80:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def display_text(text: str) -> str:
    """``text`` safe to show on a terminal or write into a line of a file: control characters
    (and line breaks) escaped, nothing else changed. For messages; names use ``display_name``."""
    return _SHOWN_ESCAPED.sub(lambda m: _escape(m.group()), text)


def display_name(raw: bytes | str) -> str:
    """One name as the tool holds and shows it: itself when it is plain UTF-8 text, else escaped.

    Bytes that are not UTF-8 become ``\\xNN``; control characters ``\\xNN`` (below 0x80) or
    ``\\uNNNN``; a backslash ``\\\\`` and a slash ``\\x2f``. A ``str`` is taken as
    ``os.fsdecode`` gives it (surrogateescape for undecodable bytes).
    """
    text = raw.decode("utf-8", "surrogateescape") if isinstance(raw, bytes) else raw
    return _NAME_ESCAPED.sub(lambda m: _escape(m.group()), text)


def name_problem(name: str) -> str | None:
    """Why ``name`` (a name as ``display_name`` gave it, or from a request) cannot be sent to
    the server as one path component, or None when it can."""
    if not name:
        return f"empty or longer than {MAX_NAME} characters"
    if _NAME_ESCAPED.search(name.replace("\\", "")):
        return "separators and control characters are not allowed"
    if "\\" in name:
        return _escaped_problem(name)
    if len(name) > MAX_NAME:
        return f"empty or longer than {MAX_NAME} characters"
    if name in (".", "..") or name.startswith("."):
        return "hidden and relative names are not allowed"
    return None


def _escaped_problem(name: str) -> str:
    """What ``display_name`` escaped in ``name``, as the reason it is not used as a path."""
    found = list(_ESCAPE.finditer(name))
    if any(m.group(1) and int(m.group(1), 16) >= 0x80 for m in found):
        return NOT_UTF8
    escapes = [m.group() for m in found]
    if any(e not in ("\\\\", "\\x2f") for e in escapes):
        return CONTROL_CHARACTERS
    return SLASH if "\\x2f" in escapes else BACKSLASH


def path_problem(path: str) -> str | None:
    """Why a path inside a site (``<folder>/<file>``) cannot be sent to the server, or None."""
    return next((p for p in map(name_problem, path.split("/")) if p is not None), None)


def safe_name(name: str, what: str = "name") -> str:
    """Return ``name`` if it is one plain path component; refuse anything that could leave the root."""
    problem = name_problem(name)
    if problem is not None:
        raise PathRejected(f"invalid {what} {name!r}: {problem}")
    return name


def join_remote(root: str, *names: str) -> str:
    """An absolute server path under ``root``; every name must already be a safe component."""
    base = root.rstrip("/") or ""
    return "/".join([base, *names]) if base else "/" + "/".join(names)


def is_image_name(name: str) -> bool:
    """Whether a listed file is a photo (JPEG, HEIC/HEIF, DNG by its name; hidden ones never)."""
    return name.lower().endswith(IMAGE_SUFFIXES) and not name.startswith(".")


class EntryBudget:
    """Entries a listing may hold, counted across every directory it spans: one top-level
    folder's whole tree shares one budget, so a tree of many folders is bounded as one."""

    def __init__(self, limit: int, path: str) -> None:
        self.limit = limit
        self.path = path
        self.used = 0

    @property
    def exceeded(self) -> bool:
        return self.used > self.limit

    def take(self, count: int) -> None:
        self.used += count
        check_listing(self.used, self.limit, self.path)


def check_listing(count: int, limit: int, path: str) -> None:
    """Refuse a listing that has grown past ``limit`` entries: a clear error, never a silent cut."""
    if count > limit:
        raise RemoteError(
            f"{path} holds more than {limit:,} entries, more than a site folder should "
            f"(QC_MAX_LISTING); split it into smaller folders"
        )
