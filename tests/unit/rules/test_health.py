from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.models import DeviceKind, FindingAction, Metric, ReadingValue, Severity
from gateway.rules.base import DeviceView, HouseholdState
from gateway.rules.health import (
    AbnormalVitals,
    AbnormalVitalsConfig,
    VitalLimits,
    VitalLimitsTable,
)
from tests.unit.rules.helpers import T0, reading

RULE = AbnormalVitals(AbnormalVitalsConfig())
MONITOR = DeviceKind.HEALTH_MONITOR


def open_with(values: dict[Metric, ReadingValue]) -> HouseholdState:
    """A household whose monitor has an open vitals alert and these latest values."""
    state = HouseholdState("H001", open_alerts={("abnormal_vitals", "dev-1"): T0})
    state.devices["dev-1"] = DeviceView(kind=MONITOR, values=dict(values))
    return state


@pytest.mark.parametrize(
    ("metric", "value", "beyond", "limit"),
    [
        (Metric.HEART_RATE_BPM, 44.0, "low", 45),
        (Metric.HEART_RATE_BPM, 121.0, "high", 120),
        (Metric.SPO2_PCT, 89.0, "low", 90),
        (Metric.BP_SYSTOLIC_MMHG, 181.0, "high", 180),
        (Metric.BP_SYSTOLIC_MMHG, 89.0, "low", 90),
        (Metric.BP_DIASTOLIC_MMHG, 111.0, "high", 110),
        (Metric.BODY_TEMP_C, 38.6, "high", 38.5),
        (Metric.BODY_TEMP_C, 35.4, "low", 35.5),
    ],
)
def test_a_vital_sign_outside_its_limits_opens_an_alert_naming_it(
    metric: Metric, value: float, beyond: str, limit: float
):
    (found,) = RULE.on_reading(HouseholdState("H001"), reading(metric, value, kind=MONITOR))
    assert (found.rule_id, found.action, found.severity) == (
        "abnormal_vitals",
        FindingAction.OPEN,
        Severity.HIGH,
    )
    assert (found.evidence["metric"], found.evidence["value"]) == (metric.value, value)
    assert (found.evidence["beyond"], found.evidence["limit"]) == (beyond, limit)
    assert metric.value in found.summary


@pytest.mark.parametrize(
    ("metric", "value"),
    [
        (Metric.HEART_RATE_BPM, 45.0),
        (Metric.HEART_RATE_BPM, 120.0),
        (Metric.SPO2_PCT, 90.0),
        (Metric.SPO2_PCT, 100.0),
        (Metric.BP_SYSTOLIC_MMHG, 180.0),
        (Metric.BP_DIASTOLIC_MMHG, 110.0),
        (Metric.BP_DIASTOLIC_MMHG, 50.0),  # no lower limit for diastolic
        (Metric.BODY_TEMP_C, 36.6),
    ],
)
def test_values_at_or_inside_the_limits_say_nothing(metric: Metric, value: float):
    assert RULE.on_reading(HouseholdState("H001"), reading(metric, value)) == []


@pytest.mark.parametrize(
    ("metric", "value", "summary"),
    [
        (Metric.HEART_RATE_BPM, 130.0, "heart_rate_bpm 130 bpm is above the limit 120 bpm"),
        (Metric.BODY_TEMP_C, 38.66, "body_temp_c 38.7 °C is above the limit 38.5 °C"),
        (Metric.SPO2_PCT, 88.4, "spo2_pct 88 % is below the limit 90 %"),
        # Rounded, these would read as the limit itself: they are shown as measured.
        (Metric.BODY_TEMP_C, 38.54, "body_temp_c 38.54 °C is above the limit 38.5 °C"),
        (Metric.SPO2_PCT, 89.6, "spo2_pct 89.6 % is below the limit 90 %"),
    ],
)
def test_the_summary_shows_the_value_rounded_and_the_evidence_as_measured(
    metric: Metric, value: float, summary: str
):
    (found,) = RULE.on_reading(HouseholdState("H001"), reading(metric, value, kind=MONITOR))
    assert found.summary == summary
    assert found.evidence["value"] == value


def test_other_metrics_are_not_vital_signs():
    assert RULE.on_reading(HouseholdState("H001"), reading(Metric.POWER_W, 5000.0)) == []


def test_the_abnormal_sign_back_in_range_clears_the_alert():
    state = open_with({Metric.HEART_RATE_BPM: 130.0, Metric.SPO2_PCT: 96.0})
    (found,) = RULE.on_reading(state, reading(Metric.HEART_RATE_BPM, 80.0, after_s=600))
    assert (found.action, found.resolves) == (FindingAction.CLEAR, True)


def test_a_normal_sign_does_not_clear_while_another_is_still_abnormal():
    state = open_with({Metric.HEART_RATE_BPM: 130.0, Metric.BP_SYSTOLIC_MMHG: 190.0})
    assert RULE.on_reading(state, reading(Metric.HEART_RATE_BPM, 80.0, after_s=600)) == []


def test_a_normal_value_of_a_sign_that_was_never_abnormal_does_not_clear():
    state = open_with({Metric.HEART_RATE_BPM: 130.0, Metric.SPO2_PCT: 96.0})
    assert RULE.on_reading(state, reading(Metric.SPO2_PCT, 97.0, after_s=600)) == []


def test_signs_of_another_monitor_do_not_hold_the_alert_open():
    state = open_with({Metric.HEART_RATE_BPM: 130.0})
    state.devices["cuff"] = DeviceView(kind=MONITOR, values={Metric.BP_SYSTOLIC_MMHG: 190.0})
    (found,) = RULE.on_reading(state, reading(Metric.HEART_RATE_BPM, 80.0, after_s=600))
    assert found.resolves is True


def test_a_still_abnormal_value_updates_the_open_alert():
    state = open_with({Metric.HEART_RATE_BPM: 130.0})
    (found,) = RULE.on_reading(state, reading(Metric.HEART_RATE_BPM, 140.0, after_s=600))
    assert (found.action, found.evidence["value"]) == (FindingAction.OPEN, 140.0)


def test_limits_are_configurable_per_metric():
    config = AbnormalVitalsConfig(
        limits=VitalLimitsTable(heart_rate_bpm=VitalLimits(low=50, high=100))
    )
    rule = AbnormalVitals(config)
    assert [
        f.action
        for f in rule.on_reading(HouseholdState("H001"), reading(Metric.HEART_RATE_BPM, 105.0))
    ] == [FindingAction.OPEN]
    assert rule.on_reading(HouseholdState("H001"), reading(Metric.SPO2_PCT, 91.0)) == []


@pytest.mark.parametrize(
    "limits",
    [
        {"heart_rate_bpm": {"low": 120, "high": 45}},
        {"heart_rate_bpm": {"min": 45}},
        {"pulse": {"low": 45}},
    ],
)
def test_a_nonsense_limits_table_is_refused(limits: dict[str, object]):
    with pytest.raises(ValidationError):
        AbnormalVitalsConfig.model_validate({"limits": limits})
