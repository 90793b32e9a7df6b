from __future__ import annotations

from datetime import datetime, timedelta

from gateway.models import (
    DeviceKind,
    Finding,
    FindingAction,
    Metric,
    Reading,
    ReadingValue,
    Severity,
)
from gateway.rules.base import DeviceView, HouseholdState
from gateway.rules.connectivity import DeviceOffline, DeviceOfflineConfig, allowed_silence
from gateway.rules.engine import RuleEngine
from tests.unit.rules.helpers import T0, reading

RULE = DeviceOffline(DeviceOfflineConfig())


def test_last_will_opens_and_any_later_reading_clears():
    state = HouseholdState("H001")
    (opened,) = RULE.on_reading(state, reading(Metric.ONLINE, False, kind=DeviceKind.POWER_METER))
    assert (opened.action, opened.severity) == (FindingAction.OPEN, Severity.MEDIUM)
    state.open_alerts[("device_offline", "dev-1")] = T0
    (cleared,) = RULE.on_reading(state, reading(Metric.POWER_W, 5.0, after_s=60))
    assert cleared.action is FindingAction.CLEAR
    assert cleared.resolves is True


def test_a_smoke_detector_going_offline_is_more_serious():
    (opened,) = RULE.on_reading(
        HouseholdState("H001"), reading(Metric.ONLINE, False, kind=DeviceKind.SMOKE_DETECTOR)
    )
    assert opened.severity is Severity.HIGH


def test_silence_allowed_depends_on_how_the_device_reports():
    assert allowed_silence(DeviceView(DeviceKind.SMOKE_DETECTOR, "zigbee2mqtt")) == timedelta(
        hours=25
    )
    assert allowed_silence(DeviceView(DeviceKind.POWER_METER, "tasmota")) == timedelta(minutes=15)
    assert allowed_silence(DeviceView(DeviceKind.POWER_METER, "zigbee2mqtt")) == timedelta(
        minutes=30
    )
    assert allowed_silence(DeviceView(DeviceKind.WATER_METER, "native")) == timedelta(hours=1)


def test_a_device_silent_longer_than_allowed_is_flagged_once():
    state = HouseholdState("H001")
    state.devices["plug"] = DeviceView(DeviceKind.POWER_METER, "tasmota", last_seen=T0)
    assert RULE.on_tick(state, T0 + timedelta(minutes=14)) == []
    (found,) = RULE.on_tick(state, T0 + timedelta(minutes=16))
    assert (found.device_id, found.summary) == ("plug", "silent for longer than allowed")
    state.open_alerts[("device_offline", "plug")] = found.ts
    assert RULE.on_tick(state, T0 + timedelta(hours=2)) == []


def test_an_installed_smoke_alarm_that_never_reports_is_flagged_high():
    state = HouseholdState("H001")
    state.devices["smoke-1"] = DeviceView(
        DeviceKind.SMOKE_DETECTOR, "zigbee2mqtt", registered_at=T0
    )
    assert RULE.on_tick(state, T0 + timedelta(hours=24)) == []
    (found,) = RULE.on_tick(state, T0 + timedelta(hours=26))
    assert found.summary == "never reported since installation"
    assert found.severity is Severity.HIGH


def test_discovered_devices_without_registration_or_reports_are_not_flagged():
    state = HouseholdState("H001")
    state.devices["x"] = DeviceView(DeviceKind.DOOR_SENSOR, "zigbee2mqtt")
    assert RULE.on_tick(state, T0 + timedelta(days=30)) == []


def test_coming_back_online_closes_the_offline_alert():
    state = HouseholdState("H001", open_alerts={("device_offline", "dev-1"): T0})
    (found,) = RULE.on_reading(state, reading(Metric.ONLINE, True, after_s=30))
    assert (found.action, found.resolves) == (FindingAction.CLEAR, True)


def test_a_device_that_is_fine_says_nothing():
    state = HouseholdState("H001")
    assert RULE.on_reading(state, reading(Metric.ONLINE, True)) == []
    assert RULE.on_reading(state, reading(Metric.POWER_W, 5.0)) == []


def test_another_devices_offline_alert_is_not_cleared():
    state = HouseholdState("H001", open_alerts={("device_offline", "dev-2"): T0})
    assert RULE.on_reading(state, reading(Metric.POWER_W, 5.0, device="dev-1")) == []


def test_the_offline_alert_carries_the_last_will_as_evidence():
    (opened,) = RULE.on_reading(HouseholdState("H001"), reading(Metric.ONLINE, False))
    assert opened.rule_id == "device_offline"
    assert (opened.household_id, opened.device_id, opened.ts) == ("H001", "dev-1", T0)
    assert opened.evidence["metric"] == "online"
    assert opened.evidence["value"] is False


def test_a_last_will_without_a_kind_is_judged_by_the_registered_kind():
    # Status messages say nothing of the device; the gateway knows it is a smoke detector.
    engine = RuleEngine([RULE])
    engine.note_device("H001", "smoke-1", kind=DeviceKind.SMOKE_DETECTOR, source="native")
    (opened,) = engine.on_reading(reading(Metric.ONLINE, False, device="smoke-1"))
    assert opened.severity is Severity.HIGH


def test_offline_then_any_reading_through_the_engine_and_alert_book():
    engine = RuleEngine([RULE])
    (opened,) = engine.on_reading(reading(Metric.ONLINE, False))
    assert opened.action is FindingAction.OPEN
    engine.alert_opened("H001", "device_offline", "dev-1", opened.ts)
    (cleared,) = engine.on_reading(reading(Metric.BATTERY_PCT, 80.0, after_s=3600))
    assert (cleared.action, cleared.resolves) == (FindingAction.CLEAR, True)
    engine.alert_closed("H001", "device_offline", "dev-1")
    assert engine.on_reading(reading(Metric.BATTERY_PCT, 80.0, after_s=3700)) == []


def test_a_silent_device_is_not_flagged_before_its_time_through_the_engine():
    engine = RuleEngine([RULE])
    engine.on_reading(reading(Metric.POWER_W, 5.0, kind=DeviceKind.POWER_METER))
    assert engine.on_tick(T0 + timedelta(minutes=59)) == []
    (found,) = engine.on_tick(T0 + timedelta(minutes=61))
    assert (found.action, found.device_id) == (FindingAction.OPEN, "dev-1")
    assert found.evidence["last_seen"] == T0.isoformat()


# Devices falling silent together, and alerts closed by a person while a device stays silent.


def silent_home(*devices: tuple[str, DeviceKind]) -> RuleEngine:
    engine = RuleEngine([DeviceOffline(DeviceOfflineConfig())])
    for device_id, kind in devices:
        engine.note_device("H001", device_id, kind=kind, source="native", last_seen=T0)
    return engine


def book(engine: RuleEngine, findings: list[Finding]) -> list[Finding]:
    """What the alert book does with findings, as far as the rules are concerned."""
    for f in findings:
        if f.action is FindingAction.OPEN:
            engine.alert_opened(f.household_id, f.rule_id, f.device_id, f.ts, f.evidence)
        elif f.resolves:
            engine.alert_closed(f.household_id, f.rule_id, f.device_id)
    return findings


HOUR = timedelta(hours=1)
METERS = (("water-1", DeviceKind.WATER_METER), ("power-1", DeviceKind.POWER_METER))


def test_devices_falling_silent_together_are_one_alert_about_the_household():
    engine = silent_home(*METERS, ("smoke-1", DeviceKind.SMOKE_DETECTOR))
    engine.note_device("H001", "smoke-1", last_seen=T0 + 24 * HOUR)
    (found,) = book(engine, engine.on_tick(T0 + 2 * HOUR))
    assert (found.device_id, found.severity) == ("*", Severity.MEDIUM)
    assert found.evidence["devices"] == "power-1, water-1"
    assert found.summary == "2 devices silent at once: hub, power or network down?"
    # The smoke alarm falls silent later: it is covered by the open alert, no new one.
    assert engine.on_tick(T0 + 50 * HOUR) == []


def test_a_safety_device_in_the_group_makes_the_alert_serious():
    engine = silent_home(*METERS, ("smoke-1", DeviceKind.SMOKE_DETECTOR))
    (found,) = engine.on_tick(T0 + 26 * HOUR)
    assert (found.device_id, found.severity) == ("*", Severity.HIGH)
    assert found.evidence["count"] == 3


def test_the_household_alert_clears_when_fewer_than_two_are_still_silent():
    engine = silent_home(*METERS, ("plug", DeviceKind.POWER_METER))
    book(engine, engine.on_tick(T0 + 2 * HOUR))
    back = T0 + 3 * HOUR
    assert book(engine, engine.on_reading(_at(Metric.WATER_TOTAL_L, 5.0, "water-1", back))) == []
    (cleared,) = book(engine, engine.on_reading(_at(Metric.POWER_W, 5.0, "power-1", back)))
    assert (cleared.device_id, cleared.action, cleared.resolves) == ("*", FindingAction.CLEAR, True)
    assert cleared.evidence == {"still_silent": "plug"}
    # The one still silent now has its own alert.
    (alone,) = engine.on_tick(back + timedelta(minutes=1))
    assert alone.device_id == "plug"


def test_a_last_will_while_the_household_alert_is_open_adds_nothing():
    engine = silent_home(*METERS)
    book(engine, engine.on_tick(T0 + 2 * HOUR))
    assert engine.on_reading(_at(Metric.ONLINE, False, "water-1", T0 + 3 * HOUR)) == []


def test_a_device_alert_closed_by_a_person_while_it_is_still_silent_does_not_come_back():
    engine = silent_home(("water-1", DeviceKind.WATER_METER))
    (found,) = book(engine, engine.on_tick(T0 + 2 * HOUR))
    engine.alert_closed("H001", "device_offline", "water-1")  # "meter ordered", say
    assert engine.on_tick(T0 + 3 * HOUR) == []
    # Heard again, then silent again: a new silence, a new alert.
    engine.on_reading(_at(Metric.WATER_TOTAL_L, 5.0, "water-1", T0 + 4 * HOUR))
    (again,) = engine.on_tick(T0 + 6 * HOUR)
    assert again.evidence["inactive_since"] != found.evidence["inactive_since"]


def test_a_household_alert_closed_by_a_person_does_not_come_back_for_the_same_silence():
    engine = silent_home(*METERS)
    book(engine, engine.on_tick(T0 + 2 * HOUR))
    engine.alert_closed("H001", "device_offline", "*")
    assert engine.on_tick(T0 + 3 * HOUR) == []


def _at(metric: Metric, value: ReadingValue, device: str, ts: datetime) -> Reading:
    return Reading("H001", device, None, metric, value, None, ts)


def test_last_wills_arriving_together_are_one_alert_about_the_household():
    # Zigbee2MQTT reports every device offline when its coordinator fails.
    engine = silent_home(*METERS, ("smoke-1", DeviceKind.SMOKE_DETECTOR))
    at = T0 + timedelta(minutes=5)
    (first,) = book(engine, engine.on_reading(_at(Metric.ONLINE, False, "water-1", at)))
    assert first.device_id == "water-1"
    (together,) = book(engine, engine.on_reading(_at(Metric.ONLINE, False, "power-1", at)))
    assert together.device_id == "*"
    assert together.evidence["devices"] == "power-1, water-1"
    assert book(engine, engine.on_reading(_at(Metric.ONLINE, False, "smoke-1", at))) == []
