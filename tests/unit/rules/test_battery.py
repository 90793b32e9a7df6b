from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.models import FindingAction, Metric, ReadingValue, Severity
from gateway.rules.base import DeviceView, HouseholdState
from gateway.rules.battery import LowBattery, LowBatteryConfig
from gateway.rules.catalogue import RulesConfig, build_rules
from gateway.rules.engine import RuleEngine
from tests.unit.rules.helpers import T0, reading

RULE = LowBattery(LowBatteryConfig())


def household(
    *, alert_open: bool, values: dict[Metric, ReadingValue] | None = None
) -> HouseholdState:
    state = HouseholdState("H001")
    if alert_open:
        state.open_alerts[("low_battery", "dev-1")] = T0
    state.devices["dev-1"] = DeviceView(values=dict(values or {}))
    return state


@pytest.mark.parametrize(
    ("metric", "value", "alert_open", "expected"),
    [
        # Opening: below the threshold, or the device says so.
        (Metric.BATTERY_PCT, 14.0, False, (FindingAction.OPEN, False)),
        (Metric.BATTERY_PCT, 0.0, False, (FindingAction.OPEN, False)),
        (Metric.BATTERY_LOW, True, False, (FindingAction.OPEN, False)),
        (Metric.BATTERY_PCT, 15.0, False, None),
        (Metric.BATTERY_PCT, 80.0, False, None),
        (Metric.BATTERY_LOW, False, False, None),
        # Already open: a further low report is no news.
        (Metric.BATTERY_PCT, 10.0, True, None),
        (Metric.BATTERY_LOW, True, True, None),
        # Clearing needs threshold + hysteresis: no flapping around 15 %.
        (Metric.BATTERY_PCT, 16.0, True, None),
        (Metric.BATTERY_PCT, 19.0, True, None),
        (Metric.BATTERY_PCT, 20.0, True, (FindingAction.CLEAR, True)),
        (Metric.BATTERY_PCT, 100.0, True, (FindingAction.CLEAR, True)),
        (Metric.BATTERY_LOW, False, True, (FindingAction.CLEAR, True)),
    ],
)
def test_low_battery_opens_and_clears_with_hysteresis(
    metric: Metric,
    value: ReadingValue,
    alert_open: bool,
    expected: tuple[FindingAction, bool] | None,
):
    found = RULE.on_reading(household(alert_open=alert_open), reading(metric, value))
    assert [(f.action, f.resolves) for f in found] == ([expected] if expected else [])
    assert all(f.severity is Severity.LOW and f.rule_id == "low_battery" for f in found)


def test_a_new_battery_does_not_clear_while_the_device_still_says_low():
    state = household(alert_open=True, values={Metric.BATTERY_LOW: True})
    assert RULE.on_reading(state, reading(Metric.BATTERY_PCT, 90.0)) == []


def test_the_summary_rounds_the_level_and_the_evidence_keeps_it():
    (found,) = RULE.on_reading(household(alert_open=False), reading(Metric.BATTERY_PCT, 11.5))
    assert found.summary == "battery at 12 %"
    assert found.evidence["value"] == 11.5


def test_the_low_flag_going_off_does_not_clear_while_the_level_is_still_low():
    state = household(alert_open=True, values={Metric.BATTERY_PCT: 12.0})
    assert RULE.on_reading(state, reading(Metric.BATTERY_LOW, False)) == []


def test_a_battery_wobbling_around_the_threshold_opens_once_and_stays_open():
    engine = RuleEngine(build_rules(RulesConfig()))
    actions = []
    for i, level in enumerate([16.0, 14.0, 16.0, 14.0, 17.0, 13.0, 19.0]):
        for found in engine.on_reading(reading(Metric.BATTERY_PCT, level, after_s=3600 * i)):
            actions.append(found.action)
            if found.action is FindingAction.OPEN:
                engine.alert_opened("H001", found.rule_id, found.device_id, found.ts)
    assert actions == [FindingAction.OPEN]
    (cleared,) = engine.on_reading(reading(Metric.BATTERY_PCT, 100.0, after_s=3600 * 10))
    assert (cleared.action, cleared.resolves) == (FindingAction.CLEAR, True)


def test_threshold_and_hysteresis_are_configurable():
    rule = LowBattery(LowBatteryConfig(threshold_pct=25, hysteresis_pct=10))
    assert [
        f.action
        for f in rule.on_reading(household(alert_open=False), reading(Metric.BATTERY_PCT, 24.0))
    ] == [FindingAction.OPEN]
    assert rule.on_reading(household(alert_open=True), reading(Metric.BATTERY_PCT, 34.0)) == []


def test_a_clear_level_above_100_is_refused():
    with pytest.raises(ValidationError):
        LowBatteryConfig(threshold_pct=98, hysteresis_pct=5)
