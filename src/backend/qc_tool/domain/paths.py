"""Site and folder names from requests, confined to the sites root."""

from __future__ import annotations

from qc_tool.errors import PathRejected, RemoteError

MAX_NAME = 255
IMAGE_SUFFIXES = (".jpg", ".jpeg")
# Entries one listing may hold (QC_MAX_LISTING). A site folder holds hundreds of photos; a
# folder of tens of thousands is a mistake (a whole archive uploaded into one folder) or
# hostile, and listing it whole would hold every entry's attributes in memory.
MAX_LISTING = 20_000


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


def check_listing(count: int, limit: int, path: str) -> None:
    """Refuse a listing that has grown past ``limit`` entries: a clear error, never a silent cut."""
    if count > limit:
        raise RemoteError(
            f"{path} holds more than {limit:,} entries, more than a site folder should "
            f"(QC_MAX_LISTING); split it into smaller folders"
        )
