"""Photo previews over a real SFTP server: a small range read, never the whole photo, then cached."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from qc_tool.adapters.sftp.connection import SftpConnection, SftpConnector
from qc_tool.demo.sftp_server import SftpServerHandle
from qc_tool.domain.models import RemoteFile
from qc_tool.errors import UnreadableImage
from qc_tool.services.previews import PreviewService, max_edge_for
from scan_support import connector
from unit.test_previews import decoded, photo, red_corner

SITE = "S1"
USER = "tester"  # whose the previews are: the user the sftp fixtures log in as


@functools.cache
def files() -> dict[str, bytes]:
    return {
        # A DJI-sized main image (about 3 MB) with a 960x720 MPF preview, taken in portrait.
        "Tower/DJI_0001.JPG": photo(
            6, preview=(960, 720), body=(2400, 1800), makernote_size=30_000
        ),
        # No embedded preview: the whole file is the only image there is.
        "Tower/DJI_0002.JPG": photo(1, preview=None, body=(800, 600)),
        "Tower/DJI_0003.JPG": b"not a photo, whatever its name says\n" * 100,
    }


@pytest.fixture
def server(make_sftp_server: Callable[..., SftpServerHandle], sftp_root: Path) -> SftpServerHandle:
    for rel, data in files().items():
        path = sftp_root / "sites" / SITE / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return make_sftp_server(sftp_root, sites_root="/sites")


@pytest.fixture
def sftp(
    server: SftpServerHandle, tmp_path: Path, sftp_username: str, sftp_password: str
) -> SftpConnector:
    known_hosts = server.write_known_hosts(tmp_path / "known_hosts")
    return connector(server.host, server.port, known_hosts, "/sites", sftp_username, sftp_password)


@pytest.fixture
def conn(sftp: SftpConnector) -> Iterator[SftpConnection]:
    connection = sftp.connect()
    yield connection
    connection.close()


def _listed(conn: SftpConnection, name: str) -> RemoteFile:
    listing = conn.list_images(SITE, ["Tower"])["Tower"].photos
    return next(f for f in listing if f.path == f"Tower/{name}")


def test_a_preview_reads_a_small_range_and_a_repeat_reads_nothing(
    server: SftpServerHandle, sftp: SftpConnector, conn: SftpConnection
) -> None:
    file = _listed(conn, "DJI_0001.JPG")
    service = PreviewService()
    before = server.bytes_read
    jpeg = service.preview(conn, sftp.server_id, SITE, file, max_edge_for("large"), user=USER)
    read = server.bytes_read - before
    assert read < 0.15 * file.size, f"{read} of {file.size} bytes read"
    image = decoded(jpeg)
    assert image.size == (600, 800) and red_corner(image) == "top-right"  # upright
    assert len(jpeg) < 200_000
    opened = server.files_opened
    assert service.preview(conn, sftp.server_id, SITE, file, 800, user=USER) == jpeg
    assert server.bytes_read - before == read and server.files_opened == opened


def test_without_an_embedded_preview_the_whole_file_is_read_but_a_small_jpeg_is_served(
    server: SftpServerHandle, sftp: SftpConnector, conn: SftpConnection
) -> None:
    file = _listed(conn, "DJI_0002.JPG")
    before = server.bytes_read
    jpeg = PreviewService().preview(
        conn, sftp.server_id, SITE, file, max_edge_for("thumb"), user=USER
    )
    assert server.bytes_read - before >= file.size
    image = decoded(jpeg)
    assert image.size == (320, 240) and red_corner(image) == "top-left"
    assert len(jpeg) < file.size // 4


def test_a_file_with_no_image_is_a_clear_error_and_the_connection_goes_on(
    sftp: SftpConnector, conn: SftpConnection
) -> None:
    service = PreviewService()
    with pytest.raises(UnreadableImage, match="Tower/DJI_0003.JPG: no image to show"):
        service.preview(conn, sftp.server_id, SITE, _listed(conn, "DJI_0003.JPG"), 320, user=USER)
    gone = RemoteFile("Tower/DJI_0009.JPG", 5000, 1)  # listed once, deleted since
    with pytest.raises(UnreadableImage, match="Tower/DJI_0009.JPG: no image to show"):
        service.preview(conn, sftp.server_id, SITE, gone, 320, user=USER)
    jpeg = service.preview(
        conn, sftp.server_id, SITE, _listed(conn, "DJI_0001.JPG"), 320, user=USER
    )
    assert decoded(jpeg).size == (240, 320)
