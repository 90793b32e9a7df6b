from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import ClassVar

import pytest

from gateway.models import DeviceKind, Finding, FindingAction, Metric, Reading, Severity
from gateway.rules.base import HouseholdState, RuleConfig
from gateway.rules.catalogue import RulesConfig, build_rules
from gateway.rules.counters import CounterSample
from gateway.rules.engine import RuleEngine
from tests.unit.rules.helpers import T0, reading


class Broken:
    id: ClassVar[str] = "broken"
    metrics: ClassVar[frozenset[Metric] | None] = None
    per_message: ClassVar[bool] = False
    ticks: ClassVar[bool] = True
    config = RuleConfig(severity=Severity.LOW)

    def on_reading(self, state: HouseholdState, reading: Reading) -> list[Finding]:
        raise RuntimeError("bug")

    def on_tick(self, state: HouseholdState, now: datetime) -> list[Finding]:
        raise RuntimeError("bug")


class SeesBefore:
    """Records the value the state held when the rule ran (a per-message rule)."""

    id: ClassVar[str] = "sees_before"
    metrics: ClassVar[frozenset[Metric] | None] = None
    per_message: ClassVar[bool] = True
    ticks: ClassVar[bool] = False
    config = RuleConfig(severity=Severity.LOW)

    def __init__(self) -> None:
        self.seen: list[object] = []

    def on_reading(self, state: HouseholdState, reading: Reading) -> list[Finding]:
        view = state.devices.get(reading.device_id)
        self.seen.append(view.values.get(reading.metric) if view else None)
        return []

    def on_tick(self, state: HouseholdState, now: datetime) -> list[Finding]:
        return []


def test_a_broken_rule_does_not_silence_the_others():
    engine = RuleEngine([Broken(), *build_rules(RulesConfig())])
    found = engine.on_reading(reading(Metric.SMOKE, True))
    assert [f.rule_id for f in found] == ["smoke_alarm"]
    assert engine.on_tick(T0) == []


def test_rules_see_the_state_before_the_reading():
    spy = SeesBefore()
    engine = RuleEngine([spy])
    engine.on_reading(reading(Metric.POWER_W, 10.0))
    engine.on_reading(reading(Metric.POWER_W, 20.0, after_s=1))
    assert spy.seen == [None, 10.0]


def test_an_older_reading_does_not_overwrite_the_latest_value():
    engine = RuleEngine([])
    engine.on_reading(reading(Metric.POWER_W, 20.0, after_s=10))
    engine.on_reading(reading(Metric.POWER_W, 10.0))
    assert engine.state("H001").devices["dev-1"].values[Metric.POWER_W] == 20.0


def test_meter_totals_become_consumption_and_last_use():
    seen = []

    class Spy(SeesBefore):
        per_message = False  # consumption is the rules over time's

        def on_reading(self, state: HouseholdState, reading: Reading) -> list[Finding]:
            seen.append(state.consumption.amount if state.consumption else None)
            return []

    engine = RuleEngine([Spy()])
    engine.on_reading(reading(Metric.WATER_TOTAL_L, 1000.0))
    engine.on_reading(reading(Metric.WATER_TOTAL_L, 1000.0, after_s=600))
    engine.on_reading(reading(Metric.WATER_TOTAL_L, 1012.5, after_s=1200))
    engine.on_reading(reading(Metric.WATER_TOTAL_L, 3.0, after_s=1800))  # meter replaced
    engine.on_reading(reading(Metric.WATER_TOTAL_L, 5.0, after_s=2400))
    assert seen == [None, 0.0, 12.5, None, 2.0]
    assert engine.state("H001").last_use[Metric.WATER_TOTAL_L] == T0 + timedelta(seconds=2400)


def test_counters_restored_at_start_up_continue_without_a_spike():
    seen = []

    class Spy(SeesBefore):
        per_message = False  # consumption is the rules over time's

        def on_reading(self, state: HouseholdState, reading: Reading) -> list[Finding]:
            seen.append(state.consumption.amount if state.consumption else None)
            return []

    engine = RuleEngine([Spy()])
    engine.note_device("H001", "dev-1", values={Metric.ENERGY_TOTAL_KWH: (5321.44, T0)})
    engine.on_reading(reading(Metric.ENERGY_TOTAL_KWH, 5321.94, after_s=3600))
    assert seen == [pytest.approx(0.5)]


def test_alert_state_follows_the_alert_book():
    engine = RuleEngine(build_rules(RulesConfig()))
    engine.alert_opened("H001", "call_button", "dev-1", T0)
    (withdrawn,) = engine.on_reading(reading(Metric.BUTTON, "cancel", after_s=5))
    assert withdrawn.action is FindingAction.CLEAR
    engine.alert_closed("H001", "call_button", "dev-1")
    assert engine.on_reading(reading(Metric.BUTTON, "cancel", after_s=6)) == []


def test_a_broken_rule_does_not_silence_the_others_on_ticks(caplog: pytest.LogCaptureFixture):
    engine = RuleEngine([Broken(), *build_rules(RulesConfig())])
    engine.note_device("H001", "plug", source="tasmota", last_seen=T0)
    with caplog.at_level(logging.ERROR, logger="gateway.rules.engine"):
        found = engine.on_tick(T0 + timedelta(hours=1))
    assert [(f.rule_id, f.device_id) for f in found] == [("device_offline", "plug")]
    assert "broken" in caplog.text


def test_a_broken_rule_is_logged_by_its_id(caplog: pytest.LogCaptureFixture):
    engine = RuleEngine([Broken()])
    with caplog.at_level(logging.ERROR, logger="gateway.rules.engine"):
        assert engine.on_reading(reading(Metric.SMOKE, True)) == []
    assert "broken" in caplog.text


def test_a_reading_is_remembered_even_when_a_rule_fails():
    engine = RuleEngine([Broken()])
    engine.on_reading(reading(Metric.POWER_W, 10.0, kind=DeviceKind.POWER_METER))
    view = engine.state("H001").devices["dev-1"]
    assert (view.kind, view.last_seen, view.values) == (
        DeviceKind.POWER_METER,
        T0,
        {Metric.POWER_W: 10.0},
    )


def test_households_are_kept_apart():
    engine = RuleEngine(build_rules(RulesConfig()))
    engine.alert_opened("H001", "call_button", "dev-1", T0)
    assert engine.on_reading(reading(Metric.BUTTON, "cancel", household="H002", after_s=5)) == []
    assert engine.state("H002").open_alerts == {}


def test_note_device_records_what_the_store_knows_without_going_back_in_time():
    engine = RuleEngine([])
    engine.note_device(
        "H001",
        "smoke-1",
        kind=DeviceKind.SMOKE_DETECTOR,
        source="zigbee2mqtt",
        registered_at=T0,
        last_seen=T0 + timedelta(hours=2),
        values={Metric.BATTERY_PCT: (80.0, T0)},
    )
    engine.note_device("H001", "smoke-1", last_seen=T0 + timedelta(hours=1))
    view = engine.state("H001").devices["smoke-1"]
    assert (view.kind, view.source) == (DeviceKind.SMOKE_DETECTOR, "zigbee2mqtt")
    assert view.last_seen == T0 + timedelta(hours=2)
    assert view.values == {Metric.BATTERY_PCT: 80.0}
    # The registration time is for a device never heard (device_offline's "never reported");
    # one that has been heard does not keep it (memory).
    assert view.registered_at is None
    engine.note_device("H001", "gas-1", kind=DeviceKind.GAS_DETECTOR, registered_at=T0)
    assert engine.state("H001").devices["gas-1"].registered_at == T0


def test_alert_opened_and_closed_are_what_rules_see():
    engine = RuleEngine([])
    engine.alert_opened("H001", "smoke_alarm", "smoke-1", T0)
    assert engine.state("H001").alert_opened_at("smoke_alarm", "smoke-1") == T0
    engine.alert_closed("H001", "smoke_alarm", "smoke-1")
    assert engine.state("H001").alert_opened_at("smoke_alarm", "smoke-1") is None
    engine.alert_closed("H001", "smoke_alarm", "smoke-1")  # closing twice is harmless


def test_the_kind_a_device_reports_is_learned_and_kept():
    engine = RuleEngine([])
    engine.on_reading(reading(Metric.SMOKE, False, kind=DeviceKind.SMOKE_DETECTOR))
    engine.on_reading(reading(Metric.ONLINE, True, after_s=60))  # status: no kind
    assert engine.state("H001").devices["dev-1"].kind is DeviceKind.SMOKE_DETECTOR


def test_a_meters_run_of_use_is_followed_until_an_interval_without_use():
    engine = RuleEngine([])
    runs = []
    for minutes, total in [(0, 100.0), (10, 105.0), (20, 112.0), (30, 112.0), (40, 3.0)]:
        engine.on_reading(reading(Metric.WATER_TOTAL_L, total, after_s=minutes * 60))
        run = engine.state("H001").devices["dev-1"].use_runs.get(Metric.WATER_TOTAL_L)
        runs.append((run.since, run.amount) if run else None)
    # No use at minute 30 ends the run; a meter reset at 40 claims no use at all.
    assert runs == [None, (T0, 5.0), (T0, 12.0), None, None]


def test_undoing_an_open_puts_back_what_was_there():
    engine = RuleEngine([])
    undo = engine.alert_opened("H001", "smoke_alarm", "smoke-1", T0)
    undo()
    assert engine.state("H001").alert_opened_at("smoke_alarm", "smoke-1") is None
    engine.alert_opened("H001", "smoke_alarm", "smoke-1", T0)
    undo_close = engine.alert_closed("H001", "smoke_alarm", "smoke-1")
    undo_close()
    assert engine.state("H001").alert_opened_at("smoke_alarm", "smoke-1") == T0


def test_a_tick_finds_an_inactivity_alert_again_until_it_is_stored():
    engine = RuleEngine(build_rules(RulesConfig()))
    # A meter reporting hourly: 12 l used in the night, then nothing until 14:00 (T0).
    engine.on_reading(reading(Metric.WATER_TOTAL_L, 100.0, after_s=-14 * 3600))
    for hours in range(-13, 1):
        engine.on_reading(reading(Metric.WATER_TOTAL_L, 112.0, after_s=hours * 3600))
    now = T0
    (first,) = [f for f in engine.on_tick(now) if f.rule_id == "no_water_use"]
    # The write failed: nothing was recorded, so the next tick finds it again.
    (again,) = [f for f in engine.on_tick(now) if f.rule_id == "no_water_use"]
    assert again.evidence == first.evidence
    # Stored, then closed by a person: the same spell does not alert again.
    engine.alert_opened("H001", "no_water_use", "household", now, again.evidence)
    engine.alert_closed("H001", "no_water_use", "household")
    assert [f for f in engine.on_tick(now) if f.rule_id == "no_water_use"] == []


def test_undoing_an_inactivity_open_forgets_its_spell():
    engine = RuleEngine([])
    evidence = {"inactive_since": T0.isoformat()}
    undo = engine.alert_opened("H001", "no_water_use", "household", T0, evidence)
    assert engine.state("H001").log.alerted == {"no_water_use": T0.isoformat()}
    undo()
    assert engine.state("H001").log.alerted == {}


def test_a_retained_state_is_judged_but_is_no_sign_of_life():
    engine = RuleEngine(build_rules(RulesConfig()))
    engine.on_reading(reading(Metric.PRESENCE, True, device="radar"))
    log = engine.state("H001").log
    heard, last = log.heard, dict(log.last)
    found = engine.on_reading(reading(Metric.SMOKE, True, after_s=3600), retained=True)
    assert [f.rule_id for f in found] == ["smoke_alarm"]
    view = engine.state("H001").devices["dev-1"]
    assert view.values[Metric.SMOKE] is True
    assert view.last_seen is None  # heard only through the broker's stored copy
    assert (log.heard, log.last) == (heard, last)


def test_a_retained_reading_does_not_clear_device_offline():
    engine = RuleEngine(build_rules(RulesConfig()))
    engine.alert_opened("H001", "device_offline", "dev-1", T0)
    assert engine.on_reading(reading(Metric.BATTERY_PCT, 80.0), retained=True) == []
    (back,) = engine.on_reading(reading(Metric.BATTERY_PCT, 80.0, after_s=60))
    assert (back.rule_id, back.action) == ("device_offline", FindingAction.CLEAR)


def test_current_value_does_not_invent_households():
    engine = RuleEngine([])
    assert engine.current_value("H404", "dev-1", Metric.SMOKE) is None
    assert engine.household_ids() == []
    engine.on_reading(reading(Metric.SMOKE, False))
    assert engine.current_value("H001", "dev-1", Metric.SMOKE) is False


def test_devices_without_values_share_no_state_with_each_other():
    # A device's mappings start as one shared empty mapping (memory): the first value, meter
    # total or run of use of one device must not show in another's.
    engine = RuleEngine([])
    engine.note_device("H001", "smoke-1", kind=DeviceKind.SMOKE_DETECTOR)
    engine.note_device("H002", "water-1", kind=DeviceKind.WATER_METER)
    engine.on_reading(reading(Metric.WATER_TOTAL_L, 100.0, device="water-1", household="H002"))
    engine.on_reading(
        reading(Metric.WATER_TOTAL_L, 105.0, after_s=600, device="water-1", household="H002")
    )
    smoke = engine.state("H001").devices["smoke-1"]
    water = engine.state("H002").devices["water-1"]
    assert (dict(smoke.values), dict(smoke.counters), dict(smoke.use_runs)) == ({}, {}, {})
    assert water.values == {Metric.WATER_TOTAL_L: 105.0}
    assert water.counters[Metric.WATER_TOTAL_L].total == 105.0
    assert water.use_runs[Metric.WATER_TOTAL_L].amount == 5.0
    engine.on_reading(
        reading(Metric.WATER_TOTAL_L, 105.0, after_s=1200, device="water-1", household="H002")
    )
    assert dict(water.use_runs) == {}  # the run ended; the smoke detector still has none
    assert dict(smoke.use_runs) == {}


def test_a_device_with_one_value_then_another_keeps_both():
    engine = RuleEngine([])
    engine.on_reading(reading(Metric.WATER_TOTAL_L, 100.0))
    engine.on_reading(reading(Metric.WATER_TOTAL_L, 101.0, after_s=60))
    view = engine.state("H001").devices["dev-1"]
    assert view.values == {Metric.WATER_TOTAL_L: 101.0}
    assert Metric.WATER_FLOW_LPM not in view.values
    assert view.values.get(Metric.WATER_FLOW_LPM, "none") == "none"
    engine.on_reading(reading(Metric.WATER_FLOW_LPM, 2.5, after_s=120))
    engine.on_reading(reading(Metric.WATER_TOTAL_L, 103.0, after_s=180))
    assert view.values == {Metric.WATER_TOTAL_L: 103.0, Metric.WATER_FLOW_LPM: 2.5}
    assert view.counters == {Metric.WATER_TOTAL_L: CounterSample(103.0, T0 + timedelta(minutes=3))}
