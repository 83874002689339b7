"""Settings are data: each one has a default, help text, and a line in docs/configuration.md."""

from __future__ import annotations

import re
from dataclasses import FrozenInstanceError, fields
from pathlib import Path

import pytest
from qc_tool.config import (
    COUNT,
    FLAG,
    FLOAT,
    INT,
    OPTIONAL,
    PATH,
    POSITIVE,
    SETTINGS,
    TEXT,
    Kind,
    Setting,
    Settings,
    load,
)

DOC = Path(__file__).parents[2] / "docs" / "configuration.md"
# A row of the doc's settings table: | `QC_NAME` | `default` or `(empty)` | meaning |
ROW = re.compile(r"^\| `(QC_[A-Z0-9_]+)` \| `(.*?)` \| (.*) \|$", re.MULTILINE)


def documented() -> dict[str, tuple[str, str]]:
    """The doc's table: name -> (default as the table shows it, meaning)."""
    rows = ROW.findall(DOC.read_text())
    names = [name for name, _, _ in rows]
    assert len(names) == len(set(names)), f"documented twice: {sorted(names)}"
    return {name: (default, meaning) for name, default, meaning in rows}


def shown(setting: Setting) -> str:
    return setting.default or "(empty)"


def test_every_setting_is_documented_and_every_documented_one_exists() -> None:
    doc = documented()
    assert sorted(s.name for s in SETTINGS if s.name not in doc) == []
    assert sorted(set(doc) - {s.name for s in SETTINGS}) == []


def test_the_doc_gives_each_settings_own_default_and_help() -> None:
    doc = documented()
    assert {s.name: doc[s.name][0] for s in SETTINGS} == {s.name: shown(s) for s in SETTINGS}
    differ = [s.name for s in SETTINGS if " ".join(s.help.split()) != doc[s.name][1].strip()]
    assert differ == [], "docs/configuration.md says something else than config.py's help"


def test_each_setting_is_one_typed_field_of_settings() -> None:
    assert [f.name for f in fields(Settings)] == [s.attribute for s in SETTINGS]


# A value of each kind as the environment has it, and what the field then holds.
EXAMPLE: dict[Kind, tuple[str, object]] = {
    TEXT: ("text", "text"),
    OPTIONAL: ("text", "text"),
    INT: ("7", 7),
    POSITIVE: ("7", 7),
    COUNT: ("7", 7),
    FLOAT: ("2.5", 2.5),
    FLAG: ("1", True),
    PATH: ("/some/file", Path("/some/file")),
}


def test_a_value_from_the_environment_is_read_with_its_type() -> None:
    settings = load({s.name: EXAMPLE[s.kind][0] for s in SETTINGS})
    read = {s.name: getattr(settings, s.attribute) for s in SETTINGS}
    assert read == {s.name: EXAMPLE[s.kind][1] for s in SETTINGS}
    assert all(type(read[s.name]) is type(EXAMPLE[s.kind][1]) for s in SETTINGS)
    assert load({"QC_SFTP_PORT": "2222"}).sftp_port == 2222


def test_the_defaults_are_the_documented_ones_typed() -> None:
    defaults = load({})
    assert defaults.sftp_port == 22 and defaults.max_connections == 4
    assert defaults.session_hours == 8.0 and defaults.upload_max_mb == 2048.0
    assert defaults.checks is True and defaults.production is False
    assert defaults.trust_on_first_use is False
    assert defaults.tile_url == "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    # Empty by default: not set, so the code takes its own default (cores, ~/.cache ...).
    assert defaults.known_hosts is None and defaults.cache_dir is None
    assert defaults.parse_workers is None and defaults.check_workers is None
    assert defaults.check_profile is None and defaults.min_resolution is None


def test_an_empty_number_is_its_default_and_empty_text_stays_empty() -> None:
    settings = load({"QC_TRUSTED_PROXIES": "", "QC_SESSION_HOURS": " ", "QC_TILE_URL": ""})
    assert settings.trusted_proxies == 0 and settings.session_hours == 8.0
    assert settings.tile_url == ""  # no map tiles: the points draw on a blank map


def test_a_flag_is_on_for_one_and_off_for_zero() -> None:
    assert load({"QC_CHECKS": "0", "QC_PRODUCTION": "1"}).checks is False
    assert load({"QC_CHECKS": "0", "QC_PRODUCTION": "1"}).production is True


def test_a_bad_number_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="QC_SFTP_PORT='x' is not a valid int"):
        load({"QC_SFTP_PORT": "x"})


@pytest.mark.parametrize(
    ("name", "value", "wanted"),
    [
        ("QC_MAX_JOBS", "0", "whole number of 1 or more"),
        ("QC_PARSE_WORKERS", "-2", "whole number of 0 or more"),
        ("QC_CHECKS", "yes", "flag"),
        ("QC_UPLOAD_MAX_MB", "2 GB", "float"),
    ],
)
def test_a_bad_value_names_its_setting_and_what_it_should_be(
    name: str, value: str, wanted: str
) -> None:
    with pytest.raises(ValueError, match=f"^{name}={value!r} is not a valid {wanted}"):
        load({name: value})


def test_the_secret_key_is_never_in_the_settings_repr() -> None:
    settings = load({"QC_SECRET_KEY": "s3cr3t-value-of-the-test"})
    assert settings.secret_key == "s3cr3t-value-of-the-test"
    assert "s3cr3t" not in repr(settings)


def test_the_settings_cannot_be_changed_once_loaded() -> None:
    settings = load({})
    with pytest.raises(FrozenInstanceError):
        settings.max_jobs = 9  # type: ignore[misc]
