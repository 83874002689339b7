"""Settings are data: each one has a default, help text, and a line in docs/configuration.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from qc_tool.config import SETTINGS, Setting, load

DOC = Path(__file__).parents[2] / "docs" / "configuration.md"
# A row of the doc's settings table: | `QC_NAME` | `default` or `(empty)` | meaning |
ROW = re.compile(r"^\| `(QC_[A-Z0-9_]+)` \| `(.*?)` \| (.*) \|$", re.MULTILINE)
EXAMPLE = {str: "text", int: "7", float: "2.5"}  # a value of each kind, as the environment has it


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


def test_every_default_parses_with_its_settings_type() -> None:
    defaults = load({})
    for setting in SETTINGS:
        assert setting.kind in EXAMPLE, f"{setting.name}: load() cannot read a {setting.kind}"
        value = defaults[setting.name]
        if setting.default == "" and setting.kind is not str:
            assert value is None, setting.name  # empty: "not set", not a zero
        else:
            assert type(value) is setting.kind, setting.name
            assert value == setting.kind(setting.default), setting.name


def test_a_value_from_the_environment_is_read_with_its_type() -> None:
    environ = {s.name: EXAMPLE[s.kind] for s in SETTINGS}
    settings = load(environ)
    assert {s.name: settings[s.name] for s in SETTINGS} == {
        s.name: s.kind(EXAMPLE[s.kind]) for s in SETTINGS
    }
    assert load({"QC_SFTP_PORT": "2222"})["QC_SFTP_PORT"] == 2222


def test_a_bad_number_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="QC_SFTP_PORT='x' is not a valid int"):
        load({"QC_SFTP_PORT": "x"})
