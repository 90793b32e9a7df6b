"""The rule catalogue and rules.toml (tests for gateway/rules/catalogue.py).

Named apart from tests/unit/devices/test_catalogue.py: test directories are not packages, so
two test modules may not share a base name.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.models import Severity
from gateway.rules.catalogue import (
    DEFAULT_RULES_FILE,
    RulesConfig,
    RulesConfigError,
    build_rules,
    load_rules_config,
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_defaults_load_and_build_every_rule():
    config = load_rules_config()
    assert config == load_rules_config(DEFAULT_RULES_FILE)
    assert [rule.id for rule in build_rules(config)] == [
        "smoke_alarm",
        "call_button",
        "device_offline",
    ]


def test_the_shipped_defaults_are_the_documented_ones():
    config = load_rules_config()
    assert config.smoke_alarm.severity is Severity.CRITICAL
    assert config.call_button.severity is Severity.CRITICAL
    assert config.call_button.cancel_window_s == 30
    assert config.device_offline.severity is Severity.MEDIUM
    assert config.device_offline.safety_severity is Severity.HIGH


def test_a_missing_table_means_the_rules_defaults(tmp_path: Path):
    assert load_rules_config(write(tmp_path, "")) == RulesConfig()


def test_a_table_changes_only_what_it_names(tmp_path: Path):
    config = load_rules_config(write(tmp_path, "[call_button]\ncancel_window_s = 10\n"))
    assert config.call_button.cancel_window_s == 10
    assert config.call_button.severity is Severity.CRITICAL
    assert config.smoke_alarm == RulesConfig().smoke_alarm


def test_a_rule_built_from_the_config_uses_it(tmp_path: Path):
    config = load_rules_config(write(tmp_path, '[device_offline]\nseverity = "low"\n'))
    offline = next(r for r in build_rules(config) if r.id == "device_offline")
    assert offline.config.severity is Severity.LOW


def test_a_disabled_rule_is_not_built(tmp_path: Path):
    config = load_rules_config(write(tmp_path, "[call_button]\nenabled = false\n"))
    assert [rule.id for rule in build_rules(config)] == ["smoke_alarm", "device_offline"]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[smoke_alarm]\ncolour = 1\n", "smoke_alarm.colour"),
        ('[smoke_alarm]\nseverity = "severe"\n', "smoke_alarm.severity"),
        ('[device_offline]\nsafety_severity = "urgent"\n', "device_offline.safety_severity"),
        ("[call_button]\ncancel_window_s = -1\n", "call_button.cancel_window_s"),
        ('[call_button]\nenabled = "maybe"\n', "call_button.enabled"),
        ("[no_such_rule]\nenabled = true\n", "no_such_rule"),
        ("smoke_alarm = 1\n", "smoke_alarm"),
    ],
)
def test_a_bad_rules_file_names_the_file_and_the_key(tmp_path: Path, text: str, key: str):
    path = write(tmp_path, text)
    with pytest.raises(RulesConfigError) as caught:
        load_rules_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {key}:")
    assert "\n" not in message


def test_a_missing_or_broken_rules_file_is_refused(tmp_path: Path):
    with pytest.raises(RulesConfigError, match="not found"):
        load_rules_config(tmp_path / "missing.toml")
    with pytest.raises(RulesConfigError, match="not valid TOML"):
        load_rules_config(write(tmp_path, "[smoke_alarm\n"))
