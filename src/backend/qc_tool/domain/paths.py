"""Site and folder names from requests, confined to the sites root."""

from __future__ import annotations

from qc_tool.errors import PathRejected

MAX_NAME = 255
IMAGE_SUFFIXES = (".jpg", ".jpeg")


def safe_name(name: str, what: str = "name") -> str:
    """Return ``name`` if it is one plain path component; refuse anything that could leave the root."""
    if not name or len(name) > MAX_NAME:
        raise PathRejected(f"invalid {what}: empty or longer than {MAX_NAME} characters")
    if name in (".", "..") or name.startswith("."):
        raise PathRejected(f"invalid {what} {name!r}: hidden and relative names are not allowed")
    if any(c in name for c in "/\\") or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise PathRejected(
            f"invalid {what} {name!r}: separators and control characters are not allowed"
        )
    return name


def join_remote(root: str, *names: str) -> str:
    """An absolute server path under ``root``; every name must already be a safe component."""
    base = root.rstrip("/") or ""
    return "/".join([base, *names]) if base else "/" + "/".join(names)


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES) and not name.startswith(".")
