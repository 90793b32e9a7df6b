from __future__ import annotations

import pytest

from gateway.models import DeviceKind, FindingAction, Metric, Severity
from gateway.rules.base import HouseholdState
from gateway.rules.safety import CallButton, CallButtonConfig, SmokeAlarm, SmokeAlarmConfig
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
