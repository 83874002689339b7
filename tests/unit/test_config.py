"""Settings are data: each one has a default, help text, and a line in docs/configuration.md."""

from __future__ import annotations

from pathlib import Path

import pytest
from qc_tool.config import SETTINGS, load

DOC = Path(__file__).parents[2] / "docs" / "configuration.md"


def test_every_setting_is_documented() -> None:
    text = DOC.read_text()
    missing = [s.name for s in SETTINGS if f"| `{s.name}` |" not in text]
    assert missing == []


def test_the_issue_settings_exist() -> None:
    names = {s.name for s in SETTINGS}
    assert {
        "QC_SFTP_HOST",
        "QC_SFTP_PORT",
        "QC_SITES_ROOT",
        "QC_KNOWN_HOSTS",
        "QC_SECRET_KEY",
        "QC_HTTP_HOST",
        "QC_PORT",
        "QC_MAX_CONNECTIONS",
        "QC_CACHE_DIR",
    } <= names


def test_settings_are_typed_and_defaulted() -> None:
    settings = load({"QC_SFTP_PORT": "2222"})
    assert settings["QC_SFTP_PORT"] == 2222
    assert settings["QC_MAX_CONNECTIONS"] == 4


def test_a_bad_number_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="QC_SFTP_PORT='x' is not a valid int"):
        load({"QC_SFTP_PORT": "x"})
