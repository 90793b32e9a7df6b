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
        "fall_detected",
        "water_leak",
        "no_water_use",
        "no_power_use",
        "missed_routine",
        "abnormal_vitals",
        "appliance_left_on",
        "device_offline",
        "low_battery",
    ]


def test_the_shipped_defaults_are_the_documented_ones():
    config = load_rules_config()
    assert config.smoke_alarm.severity is Severity.CRITICAL
    assert config.call_button.severity is Severity.CRITICAL
    assert config.call_button.cancel_window_s == 30
    assert config.device_offline.severity is Severity.MEDIUM
    assert config.device_offline.safety_severity is Severity.HIGH
    assert config.fall_detected.severity is Severity.CRITICAL
    assert config.water_leak.severity is Severity.HIGH
    assert (config.water_leak.continuous_flow_min, config.water_leak.min_flow_lpm) == (60, 0.5)
    assert config.abnormal_vitals.severity is Severity.HIGH
    limits = config.abnormal_vitals.limits
    assert (limits.heart_rate_bpm.low, limits.heart_rate_bpm.high) == (45, 120)
    assert (limits.spo2_pct.low, limits.spo2_pct.high) == (90, None)
    assert (limits.bp_systolic_mmhg.low, limits.bp_systolic_mmhg.high) == (90, 180)
    assert (limits.bp_diastolic_mmhg.low, limits.bp_diastolic_mmhg.high) == (None, 110)
    assert (limits.body_temp_c.low, limits.body_temp_c.high) == (35.5, 38.5)
    assert config.low_battery.severity is Severity.LOW
    assert (config.no_water_use.window_h, config.no_water_use.min_litres) == (12, 10)
    assert config.no_water_use.severity is Severity.HIGH
    assert (config.no_power_use.window_h, config.no_power_use.severity) == (12, Severity.HIGH)
    assert config.missed_routine.severity is Severity.HIGH
    assert (config.appliance_left_on.heavy_w, config.appliance_left_on.duration_min) == (1500, 120)
    assert config.appliance_left_on.severity is Severity.MEDIUM
    assert config.quiet_hours.severities == {Severity.LOW}
    assert (config.low_battery.threshold_pct, config.low_battery.hysteresis_pct) == (15, 5)


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
    assert "call_button" not in [rule.id for rule in build_rules(config)]
    assert len(build_rules(config)) == len(build_rules(RulesConfig())) - 1


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[smoke_alarm]\ncolour = 1\n", "smoke_alarm.colour"),
        ('[smoke_alarm]\nseverity = "severe"\n', "smoke_alarm.severity"),
        ('[device_offline]\nsafety_severity = "urgent"\n', "device_offline.safety_severity"),
        ("[call_button]\ncancel_window_s = -1\n", "call_button.cancel_window_s"),
        ("[water_leak]\ncontinuous_flow_min = 0\n", "water_leak.continuous_flow_min"),
        ("[low_battery]\nthreshold = 20\n", "low_battery.threshold"),
        (
            "[abnormal_vitals.limits]\npulse = { low = 40 }\n",
            "abnormal_vitals.limits.pulse",
        ),
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
