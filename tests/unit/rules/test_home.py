from __future__ import annotations

import pytest

from gateway.models import DeviceKind, Finding, FindingAction, Metric, Severity
from gateway.rules.base import HouseholdState
from gateway.rules.catalogue import RulesConfig, build_rules
from gateway.rules.engine import RuleEngine
from gateway.rules.home import WaterLeak, WaterLeakConfig
from tests.unit.rules.helpers import T0, reading

METER = DeviceKind.WATER_METER


@pytest.mark.parametrize(
    ("value", "alert_open", "expected"),
    [
        (True, False, [(FindingAction.OPEN, False)]),
        (True, True, [(FindingAction.OPEN, False)]),
        (False, True, [(FindingAction.CLEAR, True)]),
        (False, False, []),
    ],
)
def test_a_wet_leak_sensor_opens_and_drying_clears(
    value: bool, alert_open: bool, expected: list[tuple[FindingAction, bool]]
):
    state = HouseholdState("H001")
    if alert_open:
        state.open_alerts[("water_leak", "leak-1")] = T0
    found = WaterLeak(WaterLeakConfig()).on_reading(
        state, reading(Metric.WATER_LEAK, value, device="leak-1", kind=DeviceKind.WATER_LEAK_SENSOR)
    )
    assert [(f.action, f.resolves) for f in found] == expected
    assert all((f.severity, f.device_id) == (Severity.HIGH, "leak-1") for f in found)


def water_leak_findings(
    totals: list[tuple[float, float]], config: RulesConfig | None = None
) -> list[tuple[float, FindingAction, bool]]:
    """Feed (minutes after T0, meter total in litres) through the engine, keeping the alert book.

    Returns (minutes, action, resolves) of every water_leak finding.
    """
    engine = RuleEngine(build_rules(config or RulesConfig()))
    out = []
    for minutes, total in totals:
        found: list[Finding] = engine.on_reading(
            reading(Metric.WATER_TOTAL_L, total, after_s=minutes * 60, device="meter", kind=METER)
        )
        for f in found:
            if f.rule_id != "water_leak":
                continue
            assert f.device_id == "meter"
            out.append((minutes, f.action, f.resolves))
            if f.action is FindingAction.OPEN:
                engine.alert_opened("H001", f.rule_id, f.device_id, f.ts, f.evidence)
            elif f.resolves:
                engine.alert_closed("H001", f.rule_id, f.device_id)
    return out


def every(step_min: float, until_min: float, lpm: float) -> list[tuple[float, float]]:
    """Meter readings every step_min minutes with a steady flow of lpm from T0."""
    n = int(until_min / step_min)
    return [(i * step_min, 1000.0 + i * step_min * lpm) for i in range(n + 1)]


OPEN, CLEAR = FindingAction.OPEN, FindingAction.CLEAR


@pytest.mark.parametrize(
    ("totals", "expected"),
    [
        # A tap left running, read every 5 min: flagged once, after more than 60 min.
        (every(5, 90, 6.0), [(65, OPEN, False)]),
        # Exactly 60 minutes of flow is not more than 60.
        (every(5, 60, 6.0), []),
        # A slow drip seen by a frequent meter is caught too: every interval had use.
        (every(5, 90, 0.1), [(65, OPEN, False)]),
        # One interval without use ends the run: ordinary use with pauses never alerts.
        (
            [(0, 1000.0), (30, 1010.0), (55, 1020.0), (60, 1020.0), (90, 1030.0), (115, 1040.0)],
            [],
        ),
        # The flow stopping clears the alert by itself.
        ([*every(5, 70, 6.0), (75, 1420.0)], [(65, OPEN, False), (75, CLEAR, True)]),
        # A meter read every 2 hours: 20 l in 2 h is ordinary use, not a running tap...
        ([(0, 1000.0), (120, 1020.0), (240, 1040.0)], []),
        # ...but 120 l in 2 h (1 l/min on average) is.
        ([(0, 1000.0), (120, 1120.0)], [(120, OPEN, False)]),
        # A meter reset starts a new baseline: no flow is claimed across it.
        ([(0, 1000.0), (30, 1100.0), (60, 5.0), (90, 50.0), (120, 90.0)], []),
    ],
)
def test_water_flowing_without_a_break_for_over_an_hour_is_a_leak(
    totals: list[tuple[float, float]], expected: list[tuple[float, FindingAction, bool]]
):
    assert water_leak_findings(totals) == expected


def test_the_flow_window_is_configurable():
    config = RulesConfig(water_leak={"continuous_flow_min": 20})
    assert water_leak_findings(every(5, 30, 6.0), config) == [(25, OPEN, False)]


def test_the_flow_alert_says_since_when_and_how_much():
    engine = RuleEngine([WaterLeak(WaterLeakConfig())])
    found: list[Finding] = []
    for minutes, total in every(5, 65, 6.0):
        found = engine.on_reading(
            reading(Metric.WATER_TOTAL_L, total, after_s=minutes * 60, device="meter")
        )
    (alert,) = found
    assert alert.evidence["flowing_since"] == T0.isoformat()
    assert (alert.evidence["litres"], alert.evidence["average_lpm"]) == (390.0, 6.0)
    assert alert.summary == "water flowing without a break for 65 min (390.0 L)"


def test_other_readings_say_nothing_about_water():
    rule = WaterLeak(WaterLeakConfig())
    assert rule.on_reading(HouseholdState("H001"), reading(Metric.POWER_W, 2000.0)) == []
    assert rule.on_tick(HouseholdState("H001"), T0) == []


def test_an_hourly_meter_seeing_use_in_every_hour_of_a_busy_morning_is_not_a_leak():
    # 06:00-10:00: cooking, washing, the toilet; 10-25 litres an hour, read once an hour.
    totals = [(0, 1000.0), (60, 1012.0), (120, 1037.0), (180, 1049.0), (240, 1060.0)]
    assert water_leak_findings(totals) == []


def test_an_hourly_meter_with_a_running_cistern_is_a_leak():
    # 60 l an hour (1 l/min) for three hours.
    totals = [(0, 1000.0), (60, 1060.0), (120, 1120.0), (180, 1180.0)]
    assert [(action, resolves) for _, action, resolves in water_leak_findings(totals)] == [
        (FindingAction.OPEN, False)
    ]
