"""Photos below a site's folders: a drone card copied as it is (DCIM/100MEDIA/DJI_0001.JPG),
a symlink loop, a tree deeper than the bound, and the other files a card holds (videos, flight
logs, notes), through the in-process SFTP server, OpenSSH's sshd and a local folder alike."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from qc_tool.adapters.local import LocalConnector
from qc_tool.demo.sftp_server import SftpServerHandle
from qc_tool.domain import paths
from qc_tool.domain.listing import MAX_DEPTH
from qc_tool.domain.models import ScanResult
from qc_tool.errors import QCError
from qc_tool.services.ports import NoCache
from qc_tool.services.scan.site_analysis_service import scan_site
from scan_support import connector
from unit.test_bad_input import REAL, TRUTH

from integration.test_bad_input_sftp import ServerRequests, requests_seen  # noqa: F401

SITE = "CARD-SITE"
USER, PASSWORD = "tester", "tester-password-1"  # the sftp_server fixture's user
DEEP = "/".join(f"d{i}" for i in range(1, MAX_DEPTH + 1))  # MAX_DEPTH levels below the folder

# Photos of "Card", with the paths the scan must report.
PHOTOS = [
    "Card/TOP_0001.JPG",
    "Card/DCIM/100MEDIA/DJI_0001.JPG",
    "Card/DCIM/100MEDIA/DJI_0002.JPG",
    "Card/DCIM/101MEDIA/DJI_0003.jpeg",
    "Card/Phone/IMG_0001.HEIC",
    "Card/Phone/IMG_0002.heif",
    "Card/Phone/IMG_0003.dng",
    f"Card/{DEEP}/DEEP_0001.JPG",  # at the bound: found
]
OTHERS = {
    "Card/DCIM/100MEDIA/DJI_0001.MP4": 5_000,
    "Card/DCIM/100MEDIA/DJI_0001.SRT": 700,
    "Card/notes.txt": 12,
}


def make_card(site_dir: Path) -> None:
    """The regular files and folders of the card site (links are added by ``add_links``)."""
    for path in PHOTOS:
        _put(site_dir / path, REAL)
    for path, size in OTHERS.items():
        _put(site_dir / path, b"x" * size)
    _put(site_dir / f"Card/{DEEP}/d9/TOO_DEEP.JPG", REAL)  # past the bound: reported
    _put(site_dir / "Card/.Trashes/DJI_0009.JPG", REAL)  # hidden: left out as at the top
    _put(site_dir / "Card/DCIM/100MEDIA/._DJI_0001.JPG", b"\0" * 80)  # macOS AppleDouble
    _put(site_dir / "Plain/DJI_0001.JPG", REAL)


def add_links(site_dir: Path) -> None:
    """A loop (back up to the folder) and a link to a photo: neither is ever followed."""
    (site_dir / "Card/DCIM/100MEDIA/Loop").symlink_to("../..")
    (site_dir / "Card/LINK.JPG").symlink_to("DCIM/100MEDIA/DJI_0001.JPG")


def _put(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _card(result: ScanResult) -> dict[str, Any]:
    return next(f.to_json() for f in result.folders if f.name == "Card")


def _check(result: ScanResult) -> None:
    """What every adapter must report about the card site."""
    assert sorted(i.path for i in result.images) == sorted([*PHOTOS, "Plain/DJI_0001.JPG"])
    jpegs = [i for i in result.images if i.path.lower().endswith((".jpg", ".jpeg"))]
    assert all((i.lat, i.lon, i.alt) == TRUTH and i.error is None for i in jpegs)
    card = _card(result)
    assert (card["images"], card["in_subfolders"]) == (len(PHOTOS), len(PHOTOS) - 1)
    assert card["other_files"] == len(OTHERS)
    assert card["others"] == [{"path": p, "size": s} for p, s in sorted(OTHERS.items())]
    assert card["not_searched"] == [
        {"path": "Card/DCIM/100MEDIA/Loop", "reason": "a symbolic link: not followed"},
        {"path": "Card/LINK.JPG", "reason": "a symbolic link: not followed"},
        {
            "path": f"Card/{DEEP}/d9",
            "reason": f"more than {MAX_DEPTH} folder levels below Card",
        },
    ]
    plain = next(f.to_json() for f in result.folders if f.name == "Plain")
    assert (plain["images"], plain["in_subfolders"], plain["other_files"]) == (1, 0, 0)
    assert plain["others"] == plain["not_searched"] == []


@pytest.fixture
def card_site(sftp_root: Path) -> Path:
    site_dir = sftp_root / "sites" / SITE
    make_card(site_dir)
    add_links(site_dir)
    return site_dir


def _sftp(server: SftpServerHandle, tmp_path: Path) -> Any:
    kh = server.write_known_hosts(tmp_path / "known_hosts")
    return connector(server.host, server.port, kh, server.sites_root, USER, PASSWORD)


def test_a_card_copied_as_it_is_gives_every_photo_under_its_folder(
    sftp_server: SftpServerHandle,
    card_site: Path,
    tmp_path: Path,
    requests_seen: ServerRequests,  # noqa: F811
) -> None:
    result = scan_site(_sftp(sftp_server, tmp_path), NoCache(), SITE)
    _check(result)
    # Each directory listed once; nothing through a link, nothing past the bound, nothing hidden.
    listed = Counter(requests_seen.paths)
    assert max(listed.values()) == 1
    for never in ("Loop", "LINK.JPG", "/d9", ".Trashes", "._DJI"):
        assert not any(never in p for p in listed), never
    opened = {p.removeprefix(f"/sites/{SITE}/") for p in listed if "." in p.rsplit("/", 1)[-1]}
    assert opened == {*PHOTOS, "Plain/DJI_0001.JPG"}  # photos only: other files are not read


def test_the_local_adapter_reports_the_card_site_exactly_as_sftp(
    sftp_server: SftpServerHandle, card_site: Path, tmp_path: Path
) -> None:
    over_sftp = scan_site(_sftp(sftp_server, tmp_path), NoCache(), SITE)
    local = scan_site(LocalConnector(card_site.parent), NoCache(), SITE)
    _check(local)
    assert [f.to_json() for f in local.folders] == [f.to_json() for f in over_sftp.folders]
    assert [i.to_json() for i in local.images] == [i.to_json() for i in over_sftp.images]


def test_a_tree_past_the_listing_cap_fails_the_scan_though_each_folder_is_under_it(
    sftp_server: SftpServerHandle, sftp_root: Path, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setattr(paths, "MAX_LISTING", 50)
    for sub in ("100MEDIA", "101MEDIA"):  # 30 entries each, 62 with the two folders themselves
        for i in range(30):
            _put(sftp_root / "sites" / "WIDE" / "Card" / sub / f"DJI_{i:04d}.JPG", b"")
    with pytest.raises(QCError, match="Card holds more than 50 entries"):
        scan_site(_sftp(sftp_server, tmp_path), NoCache(), "WIDE")
    with pytest.raises(QCError, match="Card holds more than 50 entries"):
        scan_site(LocalConnector(sftp_root / "sites"), NoCache(), "WIDE")


def test_nested_folders_links_and_depth_through_openssh(sshd: Any, tmp_path: Path) -> None:
    data = tmp_path / "sshd-data"
    make_card(data / SITE)
    _put(data / SITE / "Card/Locked/DJI_0100.JPG", REAL)
    server = sshd(data)
    site_dir = Path(server.sites_root) / SITE
    add_links(site_dir)  # after the copy, which would follow them
    os.chmod(site_dir / "Card/Locked", 0)  # the test user may not list it
    conn = connector(
        server.host,
        server.port,
        Path(server.known_hosts),
        server.sites_root,
        server.username,
        server.password,
    )
    result = scan_site(conn, NoCache(), SITE)
    locked = {"path": "Card/Locked", "reason": "cannot list it: permission denied by the server"}
    assert locked in _card(result)["not_searched"]
    for folder in result.folders:
        if folder.name == "Card":
            folder.not_searched = [n for n in folder.not_searched if n.path != "Card/Locked"]
    _check(result)
