"""Per-household rule overrides merged onto the defaults (gateway/rules/settings.py)."""

from __future__ import annotations

from datetime import time
from typing import Any

import pytest

from gateway.models import Severity
from gateway.rules.catalogue import RulesConfig, build_rules
from gateway.rules.health import VitalLimits
from gateway.rules.settings import RulesOverrideError, effective_rules

DEFAULTS = RulesConfig()


def refused(overrides: Any, defaults: RulesConfig = DEFAULTS) -> RulesOverrideError:
    with pytest.raises(RulesOverrideError) as caught:
        effective_rules(defaults, overrides)
    return caught.value


def test_no_overrides_are_the_defaults():
    assert effective_rules(DEFAULTS, {}) == DEFAULTS


def test_a_table_override_changes_only_the_keys_it_names():
    config = effective_rules(DEFAULTS, {"no_water_use": {"window_h": 16}})
    assert config.no_water_use.window_h == 16
    assert config.no_water_use.min_litres == 10  # kept from the defaults
    assert config.no_water_use.severity is Severity.HIGH
    assert config.model_dump(exclude={"no_water_use"}) == DEFAULTS.model_dump(
        exclude={"no_water_use"}
    )


def test_overrides_apply_to_the_sites_defaults_not_the_built_in_ones():
    site = RulesConfig.model_validate(
        {"no_water_use": {"min_litres": 20}, "appliance_left_on": {"heavy_w": 2500}}
    )
    config = effective_rules(site, {"no_water_use": {"window_h": 16}})
    assert (config.no_water_use.window_h, config.no_water_use.min_litres) == (16, 20)
    assert config.appliance_left_on.heavy_w == 2500


def test_several_tables_at_once():
    config = effective_rules(
        DEFAULTS,
        {
            "appliance_left_on": {"heavy_w": 3000, "duration_min": 60},
            "missed_routine": {"enabled": False},
            "activity": {"standby_w": 300, "night_start": "23:00"},
        },
    )
    assert (config.appliance_left_on.heavy_w, config.appliance_left_on.duration_min) == (3000, 60)
    assert config.missed_routine.enabled is False
    assert config.activity.standby_w == 300
    assert (config.activity.night_start, config.activity.night_end) == (time(23, 0), time(6, 0))
    assert "missed_routine" not in [rule.id for rule in build_rules(config)]


def test_vitals_limits_are_merged_metric_by_metric():
    # The site's own defaults differ from the built-in ones, so a household's table replacing
    # the whole of `limits` would show.
    site = RulesConfig.model_validate(
        {"abnormal_vitals": {"limits": {"heart_rate_bpm": {"low": 40, "high": 110}}}}
    )
    config = effective_rules(
        site, {"abnormal_vitals": {"limits": {"bp_systolic_mmhg": {"low": 100, "high": 200}}}}
    )
    limits = config.abnormal_vitals.limits
    assert limits.bp_systolic_mmhg == VitalLimits(low=100, high=200)
    # The other metrics keep the site's defaults.
    assert limits.heart_rate_bpm == VitalLimits(low=40, high=110)
    assert limits.spo2_pct == VitalLimits(low=90)
    assert config.abnormal_vitals.severity is Severity.HIGH


def test_a_metrics_bounds_are_replaced_whole():
    # As in rules.toml: giving only `high` leaves no lower limit.
    config = effective_rules(
        DEFAULTS, {"abnormal_vitals": {"limits": {"heart_rate_bpm": {"high": 130}}}}
    )
    assert config.abnormal_vitals.limits.heart_rate_bpm == VitalLimits(low=None, high=130)


def test_an_unknown_table_is_refused_by_name():
    error = refused({"no_water": {"window_h": 16}})
    assert error.path == "no_water"
    assert "no_water_use" in error.message  # the known tables are listed
    assert str(error).startswith("no_water: ")


def test_a_table_that_is_not_an_object_is_refused():
    error = refused({"no_water_use": 16})
    assert error.path == "no_water_use"


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        ({"no_water_use": {"window_h": 0}}, "no_water_use.window_h"),
        ({"no_water_use": {"window_h": 48}}, "no_water_use.window_h"),
        ({"no_water_use": {"window_h": "long"}}, "no_water_use.window_h"),
        ({"no_water_use": {"window_hours": 16}}, "no_water_use.window_hours"),
        ({"appliance_left_on": {"heavy_w": -1}}, "appliance_left_on.heavy_w"),
        ({"no_power_use": {"severity": "urgent"}}, "no_power_use.severity"),
        ({"activity": {"day_start": "25:00"}}, "activity.day_start"),
        (
            {"abnormal_vitals": {"limits": {"heart_rate_bpm": {"low": 130, "high": 120}}}},
            "abnormal_vitals.limits.heart_rate_bpm",
        ),
        (
            {"abnormal_vitals": {"limits": {"pulse": {"high": 120}}}},
            "abnormal_vitals.limits.pulse",
        ),
        ({"missed_routine": {"min_days": 20, "history_days": 10}}, "missed_routine"),
    ],
)
def test_a_bad_value_is_refused_with_its_path(overrides: dict[str, Any], path: str):
    error = refused(overrides)
    assert error.path == path
    assert str(error) == f"{path}: {error.message}"
    assert isinstance(error, ValueError)


def test_quiet_hours_are_never_for_critical_alerts():
    error = refused({"quiet_hours": {"severities": ["low", "critical"]}})
    assert error.path == "quiet_hours"
    assert "critical" in error.message
    allowed = effective_rules(DEFAULTS, {"quiet_hours": {"severities": ["low", "medium"]}})
    assert allowed.quiet_hours.severities == {Severity.LOW, Severity.MEDIUM}


@pytest.mark.parametrize("overrides", [[], "no_water_use", None, 16])
def test_overrides_that_are_not_an_object_are_refused(overrides: Any):
    error = refused(overrides)
    assert error.path == ""
    assert str(error) == error.message


def test_the_defaults_are_left_as_they_were():
    site = RulesConfig.model_validate({"no_water_use": {"min_litres": 20}})
    effective_rules(site, {"no_water_use": {"min_litres": 5}})
    assert site.no_water_use.min_litres == 20
