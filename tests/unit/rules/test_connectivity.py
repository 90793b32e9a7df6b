from __future__ import annotations

from datetime import timedelta

from gateway.models import DeviceKind, FindingAction, Metric, Severity
from gateway.rules.base import DeviceView, HouseholdState
from gateway.rules.connectivity import DeviceOffline, DeviceOfflineConfig, allowed_silence
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
