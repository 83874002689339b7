"""A sites root whose names are bytes a listing must survive: not UTF-8, control characters,
backslashes, line breaks, terminal escapes, and plain non-ASCII UTF-8 that must still be read.

Linux names are bytes, so everything is created with bytes paths. Each odd name sits beside
good photos, so a test can see that an odd name costs only its own entry.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from web.support import gps_jpeg

SITE = "Mast-7"
OK_SITE = "SITE-OK"
BAD_SITE = b"\xe9t\xe9"  # Latin-1 "été": not UTF-8
BAD_SITE_SHOWN = "\\xe9t\\xe9"

# Terminal escapes: clear the screen; set the window title (OSC ... BEL).
CLEAR_SCREEN = b"\x1b[2J"
SET_TITLE = b"\x1b]0;pwned\x07"

GOOD = {  # folder -> file -> (lat, lon): read as usual, whatever the script of the name
    "Tower": {
        "DJI_0001.JPG": (48.1, 11.5),
        "DJI_0002.JPG": (48.2, 11.6),
        "Été_0003.JPG": (48.3, 11.7),
    },
    "Été": {"DJI_0010.JPG": (48.4, 11.8)},
}
# Files beside good ones whose names cannot be sent back: shown name -> reason.
BAD_FILES = {
    b"\xff\xfe\xc0.JPG": ("\\xff\\xfe\\xc0.JPG", "the name is not UTF-8 (shown escaped)"),
    CLEAR_SCREEN + b".JPG": ("\\x1b[2J.JPG", "the name holds control characters (shown escaped)"),
    SET_TITLE + b".JPG": (
        "\\x1b]0;pwned\\x07.JPG",
        "the name holds control characters (shown escaped)",
    ),
}
# Folders whose names cannot be sent back, each holding a good photo: shown name -> reason.
BAD_FOLDERS = {
    b"new\nfolder": ("new\\x0afolder", "the name holds control characters (shown escaped)"),
    b"a\\b": ("a\\\\b", "the name holds a backslash"),
    b"\xe9t\xe9": ("\\xe9t\\xe9", "the name is not UTF-8 (shown escaped)"),
    b"\x1b[31mred": ("\\x1b[31mred", "the name holds control characters (shown escaped)"),
}


@dataclass(frozen=True)
class OddSite:
    root: Path  # the sites root
    good_paths: set[bytes]  # every photo that must be opened, relative to the root

    def good_images(self) -> dict[str, tuple[float, float]]:
        """Path inside SITE -> (lat, lon) of every photo that must be read."""
        return {f"{d}/{f}": pos for d, files in GOOD.items() for f, pos in files.items()}


def _put(path: bytes, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as out:
        out.write(data)


def make_odd_sites(sites_root: Path) -> OddSite:
    """SITE with good and odd folders and files, OK_SITE, and a site whose name is not UTF-8."""
    root = os.fsencode(sites_root)
    site = os.path.join(root, SITE.encode())
    good: set[bytes] = set()
    for folder, files in GOOD.items():
        for name, (lat, lon) in files.items():
            path = os.path.join(site, folder.encode(), name.encode())
            _put(path, gps_jpeg(lat, lon))
            good.add(os.path.relpath(path, root))
    for raw in BAD_FILES:
        _put(os.path.join(site, b"Tower", raw), gps_jpeg(50.0, 10.0))
    for raw in BAD_FOLDERS:
        _put(os.path.join(site, raw, b"DJI_0100.JPG"), gps_jpeg(50.0, 10.0))
    _put(os.path.join(root, OK_SITE.encode(), b"Photos", b"DJI_0001.JPG"), gps_jpeg(1.0, 2.0))
    _put(os.path.join(root, BAD_SITE, b"Photos", b"DJI_0001.JPG"), gps_jpeg(1.0, 2.0))
    return OddSite(sites_root, good)
