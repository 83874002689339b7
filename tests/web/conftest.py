"""Fixtures of the web tests: a small site tree on a real in-process SFTP server, and the app."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from qc_tool import create_app
from qc_tool.demo.sftp_server import SftpServerHandle

from web.support import OTHER_PASSWORD, OTHER_USERNAME, MakeApp, context, gps_jpeg, log_in

SECRET_KEY = "test-secret-key"


# SITE-A: 7 images in 2 folders: 5 with GPS, 1 without GPS tags, 1 that is not a JPEG at all.
SITE_A = {
    "Antenna A/DJI_0001.JPG": gps_jpeg(48.1000, 11.5000, "2024:05:01 10:00:02"),
    "Antenna A/DJI_0002.JPG": gps_jpeg(48.1001, 11.5001, "2024:05:01 10:00:01"),
    "Antenna A/DJI_0003.JPG": gps_jpeg(48.1002, 11.5002, "2024:05:01 10:00:03"),
    "Tower base/DJI_0100.JPG": gps_jpeg(48.1010, 11.5010),
    "Tower base/DJI_0101.JPG": gps_jpeg(48.1011, 11.5011),
    "Tower base/DJI_0102.JPG": gps_jpeg(None, None),
    "Tower base/DJI_0103.JPG": b"this is not a jpeg" * 10,
    "Tower base/notes.txt": b"not an image, not counted",
}
SITE_B = {"Folder 1/DJI_0001.JPG": gps_jpeg(-33.9, 151.2)}


@pytest.fixture
def sites_dir(sftp_root: Path) -> Path:
    """``/sites`` on the server: SITE-A (2 folders) and SITE-B (1 folder)."""
    sites = sftp_root / "sites"
    for site, files in (("SITE-A", SITE_A), ("SITE-B", SITE_B)):
        for rel, data in files.items():
            path = sites / site / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    return sites


@pytest.fixture
def server(
    make_sftp_server: Callable[..., SftpServerHandle],
    sftp_root: Path,
    sites_dir: Path,
    sftp_username: str,
    sftp_password: str,
) -> SftpServerHandle:
    """The in-process SFTP server with two users: the default tester and ``other``."""
    users = {sftp_username: sftp_password, OTHER_USERNAME: OTHER_PASSWORD}
    return make_sftp_server(sftp_root, users, sites_root="/sites")


@pytest.fixture
def known_hosts(server: SftpServerHandle, tmp_path: Path) -> Path:
    return server.write_known_hosts(tmp_path / "known_hosts")


@pytest.fixture
def make_app(server: SftpServerHandle, known_hosts: Path, tmp_path: Path) -> Iterator[MakeApp]:
    """Factory: ``make_app(**overrides)`` builds an app pointed at ``server``; closed after."""
    apps: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        config: dict[str, Any] = {
            "TESTING": True,
            "QC_SFTP_HOST": server.host,
            "QC_SFTP_PORT": server.port,
            "QC_SITES_ROOT": server.sites_root,
            "QC_KNOWN_HOSTS": known_hosts,
            "QC_CACHE_DIR": tmp_path / "cache",
            "QC_SECRET_KEY": SECRET_KEY,
            "QC_PRODUCTION": 0,
            "QC_TILE_URL": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        }
        config.update(overrides)
        app = create_app(config)
        apps.append(app)
        return app

    yield make
    for app in apps:
        context(app).close()


@pytest.fixture
def app(make_app: MakeApp) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def logged_in(client: FlaskClient, sftp_username: str, sftp_password: str) -> FlaskClient:
    response = log_in(client, sftp_username, sftp_password)
    assert response.status_code == 303, response.get_data(as_text=True)
    return client
