"""Names as the tool shows them: escaped when they are not plain UTF-8 text, one-to-one, and
never sent back to the server once escaped. Through real servers: tests/integration/test_names_sftp.py."""

from __future__ import annotations

import io
import random
import struct
from typing import Any

import pytest
from qc_tool import cli
from qc_tool.adapters.sftp.wire import Reply
from qc_tool.domain.models import FolderSummary, ImageResult, ScanResult
from qc_tool.domain.paths import (
    BACKSLASH,
    CONTROL_CHARACTERS,
    NOT_UTF8,
    SLASH,
    display_name,
    display_text,
    name_problem,
    path_problem,
    safe_name,
)
from qc_tool.errors import PathRejected
from qc_tool.services.checks.result import result_document
from qc_tool.services.exports import odm_geo_txt
from qc_tool.services.exports.document import Document

CASES = [  # raw bytes, shown, problem
    (b"DJI_0001.JPG", "DJI_0001.JPG", None),
    ("Été – Mast №7 塔".encode(), "Été – Mast №7 塔", None),
    (b"\xe9t\xe9", "\\xe9t\\xe9", NOT_UTF8),
    (b"\xff\xfe\xc0.JPG", "\\xff\\xfe\\xc0.JPG", NOT_UTF8),
    (b"\xed\xa0\x80", "\\xed\\xa0\\x80", NOT_UTF8),  # an encoded surrogate is not UTF-8
    (b"new\nfolder", "new\\x0afolder", CONTROL_CHARACTERS),
    (b"\x1b[2J.JPG", "\\x1b[2J.JPG", CONTROL_CHARACTERS),
    (b"\x1b]0;pwned\x07.JPG", "\\x1b]0;pwned\\x07.JPG", CONTROL_CHARACTERS),
    (b"tab\there", "tab\\x09here", CONTROL_CHARACTERS),
    (b"del\x7f", "del\\x7f", CONTROL_CHARACTERS),
    ("csi\u009b2J".encode(), "csi\\u009b2J", CONTROL_CHARACTERS),  # C1: a terminal's CSI
    ("evil\u202egpj.JPG".encode(), "evil\\u202egpj.JPG", CONTROL_CHARACTERS),  # RTL override
    ("line\u2028sep".encode(), "line\\u2028sep", CONTROL_CHARACTERS),
    (b"a\\b", "a\\\\b", BACKSLASH),
    (b"\\xe9", "\\\\xe9", BACKSLASH),  # a real backslash never passes for an escape
    (b"a/b", "a\\x2fb", SLASH),  # only a hostile server sends one
    (b"\xe9\x1b\\", "\\xe9\\x1b\\\\", NOT_UTF8),
]


@pytest.mark.parametrize(("raw", "shown", "problem"), CASES)
def test_a_name_is_shown_as_itself_or_escaped_with_the_reason(
    raw: bytes, shown: str, problem: str | None
) -> None:
    assert display_name(raw) == shown
    assert name_problem(shown) == problem
    # os.listdir and os.scandir give undecodable bytes as surrogate escapes: the same name.
    assert display_name(raw.decode("utf-8", "surrogateescape")) == shown


def test_the_escaping_is_one_to_one_and_an_escaped_name_is_never_usable() -> None:
    """Random names over the bytes that matter: no two show alike; plain ones are unchanged."""
    rng = random.Random(10)
    alphabet = [b"a", b"x", b"0", b"e", b"\\", b"/", b"\x1b", b"\n", b"\x80", b"\xc2", b"\xe9"]
    alphabet += [b"\xc2\x80", b"\xc3\xa9", "\u202e".encode(), b"u", b"U"]
    names = {b"".join(rng.choices(alphabet, k=rng.randint(1, 6))) for _ in range(30_000)}
    shown = {display_name(raw): raw for raw in names}
    assert len(shown) == len(names)
    for text, raw in shown.items():
        plain = display_name(raw) == raw.decode("utf-8", "replace")
        assert (name_problem(text) is None) == (plain and not text.startswith(".")), raw
        assert display_text(text) == text, raw  # nothing left for a terminal to act on


def test_display_text_escapes_controls_and_keeps_everything_else() -> None:
    assert display_text("a/b\\c: Été") == "a/b\\c: Été"
    assert display_text("x\x1b[2Jy\nz\u009b\u202e") == "x\\x1b[2Jy\\x0az\\u009b\\u202e"


@pytest.mark.parametrize(
    "name", ["\\xe9t\\xe9", "a\\\\b", "new\\x0afolder", "csi\u009b", "evil\u202e", "x\udce9"]
)
def test_a_request_for_an_escaped_or_control_name_is_refused(name: str) -> None:
    with pytest.raises(PathRejected):
        safe_name(name, "site")


def test_a_path_is_usable_only_when_every_component_is() -> None:
    assert path_problem("Tower/DJI_0001.JPG") is None
    assert path_problem("Tower/\\xff.JPG") == NOT_UTF8
    assert path_problem("new\\x0afolder/DJI_0001.JPG") == CONTROL_CHARACTERS
    assert path_problem("Tower/../x.JPG") is not None


def _names_reply(*names: bytes) -> Reply:
    """An SSH_FXP_NAME body: count, then per entry name, long name and empty attributes."""
    body = struct.pack(">I", len(names))
    for name in names:
        body += struct.pack(">I", len(name)) + name + struct.pack(">I", 0) + struct.pack(">I", 0)
    return Reply(104, 1, body)


def test_a_readdir_reply_with_names_that_are_not_utf8_is_read_whole() -> None:
    entries = _names_reply(b"DJI_0001.JPG", b"\xff\xfe\xc0.JPG", b"\x1b[2J.JPG").names()
    assert [e.filename for e in entries] == ["DJI_0001.JPG", "\\xff\\xfe\\xc0.JPG", "\\x1b[2J.JPG"]


def _document(paths: list[str]) -> Document:
    result = ScanResult("S1")
    result.images = [
        ImageResult(p, 1000, 1, lat=48.0 + i, lon=11.0, alt=40.0) for i, p in enumerate(paths)
    ]
    document: dict[str, Any] = result.to_json()
    return document


def test_geo_txt_never_carries_a_control_character_of_a_name() -> None:
    """A document from elsewhere (an older cache, an upload) may hold raw names: geo.txt escapes
    them in comment lines and keeps every line one line."""
    names = ["A/DJI_0001.JPG", "A/\x1b[2J.JPG", "A/\x1b]0;pwned\x07.JPG", "A/new\nline.JPG"]
    text = odm_geo_txt(_document(names))
    assert "\x1b" not in text and "\x07" not in text
    lines = text.splitlines()
    assert lines[1] == "DJI_0001.JPG 11.0 48.0 40.0"
    assert all(line.startswith("#") for line in lines[2:]), lines
    assert any("\\x1b[2J.JPG" in line for line in lines)
    assert any("\\x1b]0;pwned\\x07.JPG" in line for line in lines)
    assert any("new\\x0aline.JPG" in line for line in lines)


def test_the_cli_escapes_control_characters_in_everything_it_prints() -> None:
    """Names come escaped from the listing; a message may still quote a server or a file."""
    result = ScanResult("S1")
    result.folders = [
        FolderSummary("A", images=2, gps_points=0, missing_gps=1, errors=1),
        FolderSummary("B\\x1b", skipped="the server said \x1b]0;title\x07"),
    ]
    result.images = [
        ImageResult("A/1.JPG", 1, 1, error="cannot open: \x1b[2J gone"),
        ImageResult("A/2.JPG", 1, 1, gps_note="camera \x1b[31mX"),
    ]
    out = io.StringIO()
    cli._print_table(result, out)
    document = result_document(result)
    cli._print_verdict(document["verdict"], document["images"], out)
    text = out.getvalue()
    assert "\x1b" not in text and "\x07" not in text
    assert "  FAIL A/1.JPG: cannot open: \\x1b[2J gone" in text.splitlines()
    assert "  FAIL A/2.JPG: camera \\x1b[31mX" in text.splitlines()
    assert "skipped: the server said \\x1b]0;title\\x07" in text
