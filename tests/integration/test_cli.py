"""qc-tool scan speaks the verdict: exit 0 pass, 1 re-fly, 3 incomplete, 2 could not do its job.

Bad input is one line on stderr, said before anything is read: no traceback, and for an
SFTP target no connection to the server.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from qc_tool.cli import main
from qc_tool.demo.imagegen import ImageSpec, build_jpeg, encode_body, quantise_gps
from qc_tool.demo.scene import render_scene
from qc_tool.demo.sftp_server import start_sftp_server

from integration.test_nested_folders import SITE as CARD_SITE
from integration.test_nested_folders import add_links, make_card

SITE = "S1"
USER, PASSWORD = "tech", "pw-cli"


def _photo(i: int, pixels: np.ndarray, body: bytes, gps: bool = True) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=90)
    spec = ImageSpec(
        taken=datetime(2024, 5, 14, 9, 0) + timedelta(seconds=30 * i),
        gps=quantise_gps(52.37 + i * 1e-4, 4.89 + i * 1e-4, 40.0) if gps else None,
        preview=(640, 480),
    )
    return build_jpeg(spec, body, preview_jpeg=out.getvalue())


def _site(root: Path, dark: bool = False) -> Path:
    """Eight distinct sharp photos ~11 m and 30 s apart; with ``dark``, the last is black."""
    folder = root / "sites" / SITE / "Tower"
    folder.mkdir(parents=True)
    body = encode_body(800, 600, seed=5)
    for i in range(8):
        pixels = render_scene(640, 480, seed=200 + i)
        if dark and i == 7:
            pixels = (pixels * 0.05).astype(np.uint8)
        (folder / f"DJI_{i:04d}.JPG").write_bytes(_photo(i, pixels, body))
    return root / "sites" / SITE


@pytest.fixture(scope="module")
def good_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _site(tmp_path_factory.mktemp("good"))


@pytest.fixture(scope="module")
def dark_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _site(tmp_path_factory.mktemp("dark"), dark=True)


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("qc-tool: ") and "Traceback" not in captured.err
    assert captured.out == ""  # nothing was scanned
    return lines[0]


def test_a_site_whose_photos_all_pass_exits_0(good_site: Path, tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    assert main(["scan", str(good_site), "--checks", "--no-cache", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["verdict"]["decision"] == "pass"


def test_a_photo_that_fails_a_check_exits_1_and_the_table_ends_with_the_headline(
    dark_site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["scan", str(dark_site), "--checks", "--no-cache"]) == 1
    out = capsys.readouterr().out
    assert "\nRe-fly needed: 1 of 8 photos fail (1 badly exposed)" in out


def test_positions_only_is_incomplete_and_exits_3(
    good_site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["scan", str(good_site), "--no-cache"]) == 3
    assert "\nIncomplete: the photo checks did not run" in capsys.readouterr().out


def test_csv_works_without_checks_and_its_valid_column_is_the_verdict(
    dark_site: Path, tmp_path: Path
) -> None:
    positions = tmp_path / "positions.csv"
    assert main(["scan", str(dark_site), "--no-cache", "--csv", str(positions)]) == 3
    rows = list(csv.DictReader(io.StringIO(positions.read_text())))
    assert len(rows) == 8 and {r["valid"] for r in rows} == {""}  # not judged
    checked = tmp_path / "checked.csv"
    assert main(["scan", str(dark_site), "--no-cache", "--checks", "--csv", str(checked)]) == 1
    rows = list(csv.DictReader(io.StringIO(checked.read_text())))
    assert [(r["path"], r["failures"]) for r in rows if r["valid"] == "False"] == [
        ("Tower/DJI_0007.JPG", "exposure")
    ]


def test_a_sites_root_is_scanned_with_each_site_a_folder_of_subfolder_photos(
    good_site: Path, tmp_path: Path
) -> None:
    root = good_site.parent
    out = tmp_path / "root.json"
    main(["scan", str(root), "--no-cache", "--json", str(out)])
    (folder,) = json.loads(out.read_text())["folders"]
    assert (folder["name"], folder["images"], folder["in_subfolders"]) == (SITE, 8, 8)


def test_the_table_says_what_a_folder_held_below_its_top(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_card(tmp_path / CARD_SITE)
    add_links(tmp_path / CARD_SITE)
    main(["scan", str(tmp_path / CARD_SITE), "--no-cache"])
    out = capsys.readouterr().out
    assert "(7 in subfolders, 3 other files, 3 not searched)" in out
    assert "Card/DCIM/100MEDIA/Loop: a symbolic link: not followed" in out


def test_folders_without_photos_say_what_they_hold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = tmp_path / "sites" / SITE
    (site / "Tower" / "DCIM").mkdir(parents=True)
    (site / "Tower" / "DCIM" / "DJI_0001.MP4").write_bytes(b"video")
    (site / "Tower" / "flight.SRT").write_bytes(b"log")
    assert main(["scan", str(site), "--no-cache"]) == 2
    line = capsys.readouterr().err.strip()
    assert f"no photos in {site}: its 1 folder and" in line and "only 2 other files" in line


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--checks", "--min-resolution", "big"], "a minimum resolution is WIDTHxHEIGHT"),
        (["--json", "/nonexistent-folder/result.json"], "no folder /nonexistent-folder"),
        (["--csv", "/"], "it is a folder"),
        (["--min-resolution", "4000x3000"], "--min-resolution needs --checks"),
        (["--whole-files"], "--whole-files needs --checks"),
    ],
)
def test_bad_options_are_one_line_before_any_scan(
    good_site: Path, extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["scan", str(good_site), "--no-cache", *extra]) == 2
    assert message in _one_line_error(capsys)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("http://tech@sftp.example.com/sites/1", "is not an sftp:// URL nor a local folder"),
        ("sftp//tech@127.0.0.1/sites/1", "is not an sftp:// URL nor a local folder"),
        ("no-such-folder-here", "no such folder: no-such-folder-here"),
    ],
)
def test_a_target_that_is_neither_a_url_nor_a_folder_says_which_it_looked_like(
    target: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["scan", target, "--no-cache"]) == 2
    assert message in _one_line_error(capsys)


def test_an_unwritable_output_is_refused_before_the_server_is_asked(
    good_site: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    not_a_folder = tmp_path / "notes.txt"  # tests run as root, so a mode would not stop them
    not_a_folder.write_text("")
    monkeypatch.setenv("QC_SFTP_PASSWORD", PASSWORD)
    with start_sftp_server(
        good_site.parent.parent, {USER: PASSWORD}, sites_root="/sites"
    ) as server:
        known = server.write_known_hosts(tmp_path / "known_hosts")
        url = f"sftp://{USER}@127.0.0.1:{server.port}/sites/{SITE}"
        code = main(
            ["scan", url, "--known-hosts", str(known), "--json", str(not_a_folder / "r.json")]
        )
        assert server.connections == 0
    assert code == 2
    assert "cannot write" in _one_line_error(capsys)


def test_a_port_out_of_range_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "sftp://tech@127.0.0.1:70000/sites/S1"]) == 2
    assert "must be a number from 1 to 65535" in _one_line_error(capsys)


def test_no_password_without_a_terminal_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("QC_SFTP_PASSWORD", raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["scan", "sftp://tech@127.0.0.1:2222/sites/S1"]) == 2
    assert "no password" in _one_line_error(capsys)


def test_a_wrong_password_exits_2(
    good_site: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("QC_SFTP_PASSWORD", "wrong")
    with start_sftp_server(
        good_site.parent.parent, {USER: PASSWORD}, sites_root="/sites"
    ) as server:
        known = server.write_known_hosts(tmp_path / "known_hosts")
        url = f"sftp://{USER}@127.0.0.1:{server.port}/sites/{SITE}"
        assert main(["scan", url, "--known-hosts", str(known), "--no-cache"]) == 2
        assert server.auth_attempts[USER] == 1  # the login started ahead is the one attempt
    assert "password" in capsys.readouterr().err.lower()


# Run as a fresh process: what is imported when the CLI first dials the server.
_DIAL_PROBE = """
import socket, sys
from qc_tool.cli import main
seen = []
real = socket.create_connection
def dial(*args, **kwargs):
    seen.append(("paramiko" in sys.modules, "qc_tool.services.scan.site_analysis_service" in sys.modules))
    return real(*args, **kwargs)
socket.create_connection = dial
code = main(sys.argv[1:])
print(code, seen[0], len(seen))
"""


def test_a_warm_scan_dials_the_server_before_importing_paramiko_or_the_scan(
    good_site: Path, tmp_path: Path
) -> None:
    # The login's 7 round trips and the tool's imports take about as long each: the CLI
    # starts the one while the other goes on (cli._LoginAhead), and the TCP handshake and the
    # server's banner come while paramiko itself imports.
    with start_sftp_server(
        good_site.parent.parent, {USER: PASSWORD}, sites_root="/sites"
    ) as server:
        known = server.write_known_hosts(tmp_path / "known_hosts")
        url = f"sftp://{USER}@127.0.0.1:{server.port}/sites/{SITE}"
        args = ["scan", url, "--known-hosts", str(known), "--cache-dir", str(tmp_path / "c")]
        env = {**os.environ, "QC_SFTP_PASSWORD": PASSWORD}

        def run() -> list[str]:
            done = subprocess.run(
                [sys.executable, "-c", _DIAL_PROBE, *args],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert done.returncode == 0, done.stderr
            return done.stdout.splitlines()[-1].split(maxsplit=1)  # after the table

        cold = run()  # fills the cache
        logins = server.auth_attempts[USER]
        warm = run()
        assert server.auth_attempts[USER] == logins + 1  # one login: the one started ahead
    assert cold[0] == warm[0] == "3"  # positions only: incomplete
    assert cold[1].startswith("(False, False)")
    assert warm[1].strip() == "(False, False) 1"  # the one dial, before either import


def test_help_lists_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["scan", "--help"])
    help_text = capsys.readouterr().out
    assert "exit codes:" in help_text and "3  incomplete" in help_text


def test_the_check_stats_say_how_many_photos_measured_at_once_within_the_memory_setting(
    dark_site: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QC_CHECK_MEMORY_MB", "3")
    assert main(["scan", str(dark_site), "--checks", "--no-cache"]) == 1
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("measuring at once: "))
    assert line.startswith("measuring at once: ") and " from 0.0 s" in line, line
    assert line.endswith(" of 3 MB"), line
