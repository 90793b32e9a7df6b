from __future__ import annotations

import pytest

from gateway.models import DeviceKind, FindingAction, Metric, Severity
from gateway.rules.base import HouseholdState
from gateway.rules.catalogue import RulesConfig, build_rules
from gateway.rules.engine import RuleEngine
from gateway.rules.safety import (
    CallButton,
    CallButtonConfig,
    FallDetected,
    FallDetectedConfig,
    SmokeAlarm,
    SmokeAlarmConfig,
)
from tests.unit.rules.helpers import T0, reading


@pytest.mark.parametrize("metric", [Metric.SMOKE, Metric.GAS_LEAK])
def test_smoke_or_gas_opens_a_critical_alert(metric: Metric):
    found = SmokeAlarm(SmokeAlarmConfig()).on_reading(
        HouseholdState("H001"), reading(metric, True, kind=DeviceKind.SMOKE_DETECTOR)
    )
    assert [(f.rule_id, f.action, f.severity) for f in found] == [
        ("smoke_alarm", FindingAction.OPEN, Severity.CRITICAL)
    ]
    assert found[0].evidence["metric"] == metric.value


def test_smoke_gone_is_noted_but_alert_stays_open_until_someone_checks():
    state = HouseholdState("H001", open_alerts={("smoke_alarm", "dev-1"): T0})
    (found,) = SmokeAlarm(SmokeAlarmConfig()).on_reading(state, reading(Metric.SMOKE, False))
    assert found.action is FindingAction.CLEAR
    assert found.resolves is False


def test_no_smoke_without_an_alert_says_nothing():
    assert (
        SmokeAlarm(SmokeAlarmConfig()).on_reading(
            HouseholdState("H001"), reading(Metric.SMOKE, False)
        )
        == []
    )


@pytest.mark.parametrize("press", ["sos", "single", "double", "long"])
def test_any_press_of_a_call_button_is_a_call_for_help(press: str):
    (found,) = CallButton(CallButtonConfig()).on_reading(
        HouseholdState("H001"), reading(Metric.BUTTON, press)
    )
    assert (found.action, found.severity) == (FindingAction.OPEN, Severity.CRITICAL)


def test_cancel_within_30_s_withdraws_the_call():
    state = HouseholdState("H001", open_alerts={("call_button", "dev-1"): T0})
    (found,) = CallButton(CallButtonConfig()).on_reading(
        state, reading(Metric.BUTTON, "cancel", after_s=30)
    )
    assert found.action is FindingAction.CLEAR
    assert found.resolves is True


def test_cancel_too_late_is_noted_but_someone_must_still_check():
    state = HouseholdState("H001", open_alerts={("call_button", "dev-1"): T0})
    (found,) = CallButton(CallButtonConfig()).on_reading(
        state, reading(Metric.BUTTON, "cancel", after_s=31)
    )
    assert found.resolves is False


def test_cancel_on_another_device_or_without_a_call_does_nothing():
    state = HouseholdState("H001", open_alerts={("call_button", "dev-2"): T0})
    assert CallButton(CallButtonConfig()).on_reading(state, reading(Metric.BUTTON, "cancel")) == []


def test_cancel_window_is_configurable():
    state = HouseholdState("H001", open_alerts={("call_button", "dev-1"): T0})
    rule = CallButton(CallButtonConfig(cancel_window_s=5))
    (found,) = rule.on_reading(state, reading(Metric.BUTTON, "cancel", after_s=10))
    assert found.resolves is False


def test_smoke_during_the_detectors_self_test_is_not_an_alarm():
    engine = RuleEngine(build_rules(RulesConfig()))
    engine.on_reading(reading(Metric.SELF_TEST, True))
    assert engine.on_reading(reading(Metric.SMOKE, True)) == []
    engine.on_reading(reading(Metric.SELF_TEST, False, after_s=60))
    (found,) = engine.on_reading(reading(Metric.SMOKE, True, after_s=61))
    assert found.rule_id == "smoke_alarm"


def test_the_smoke_alert_carries_the_reading_as_evidence():
    (found,) = SmokeAlarm(SmokeAlarmConfig()).on_reading(
        HouseholdState("H001"),
        reading(Metric.SMOKE, True, device="smoke-1", kind=DeviceKind.SMOKE_DETECTOR),
    )
    assert (found.household_id, found.device_id, found.ts) == ("H001", "smoke-1", T0)
    assert found.evidence == {
        "metric": "smoke",
        "value": True,
        "kind": "smoke_detector",
        "ts": T0.isoformat(),
    }


def test_gas_gone_is_noted_but_alert_stays_open():
    state = HouseholdState("H001", open_alerts={("smoke_alarm", "dev-1"): T0})
    (found,) = SmokeAlarm(SmokeAlarmConfig()).on_reading(state, reading(Metric.GAS_LEAK, False))
    assert (found.action, found.resolves) == (FindingAction.CLEAR, False)


@pytest.mark.parametrize(("after_s", "withdrawn"), [(1, True), (30, True), (31, False)])
def test_cancel_through_the_engine_and_alert_book(after_s: float, withdrawn: bool):
    engine = RuleEngine(build_rules(RulesConfig()))
    (call,) = engine.on_reading(reading(Metric.BUTTON, "sos"))
    engine.alert_opened("H001", call.rule_id, call.device_id, call.ts)
    (found,) = engine.on_reading(reading(Metric.BUTTON, "cancel", after_s=after_s))
    assert (found.rule_id, found.action, found.resolves) == (
        "call_button",
        FindingAction.CLEAR,
        withdrawn,
    )


def test_other_readings_of_a_call_button_do_not_call():
    rule = CallButton(CallButtonConfig())
    assert rule.on_reading(HouseholdState("H001"), reading(Metric.BATTERY_PCT, 50.0)) == []


@pytest.mark.parametrize("kind", [DeviceKind.FALL_SENSOR, DeviceKind.HEALTH_MONITOR])
def test_a_fall_opens_a_critical_alert(kind: DeviceKind):
    (found,) = FallDetected(FallDetectedConfig()).on_reading(
        HouseholdState("H001"), reading(Metric.FALL, True, device="radar-1", kind=kind)
    )
    assert (found.rule_id, found.action, found.severity, found.device_id) == (
        "fall_detected",
        FindingAction.OPEN,
        Severity.CRITICAL,
        "radar-1",
    )


@pytest.mark.parametrize(
    ("alert_open", "expected"),
    [(True, [(FindingAction.CLEAR, False)]), (False, [])],
)
def test_no_fall_later_is_only_noted_someone_must_still_check(
    alert_open: bool, expected: list[tuple[FindingAction, bool]]
):
    state = HouseholdState("H001")
    if alert_open:
        state.open_alerts[("fall_detected", "dev-1")] = T0
    found = FallDetected(FallDetectedConfig()).on_reading(
        state, reading(Metric.FALL, False, after_s=60)
    )
    assert [(f.action, f.resolves) for f in found] == expected


def test_presence_from_a_fall_radar_is_not_a_fall():
    rule = FallDetected(FallDetectedConfig())
    assert rule.on_reading(HouseholdState("H001"), reading(Metric.PRESENCE, True)) == []
