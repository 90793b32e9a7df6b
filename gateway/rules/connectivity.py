"""Device health: offline by its own word (status, last will), silent too long, or never heard."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import ClassVar

from gateway.models import DeviceKind, Finding, FindingAction, Metric, Reading, Severity
from gateway.rules.base import DeviceView, HouseholdState, RuleConfig, finding

# How long each device may be silent before it counts as offline. Battery Zigbee devices report
# rarely (Zigbee2MQTT itself waits 25 h before calling one offline); Tasmota reports every 5 min
# (TelePeriod 300 s), so three missed reports is enough; meters on mains report often.
DAY_AND_AN_HOUR = timedelta(hours=25)
SILENCE_BY_SOURCE: dict[str, timedelta] = {
    "zigbee2mqtt": DAY_AND_AN_HOUR,
    "tasmota": timedelta(minutes=15),
    "shelly": DAY_AND_AN_HOUR,
    "wmbusmeters": timedelta(hours=6),
}
SILENCE_BY_KIND: dict[DeviceKind, timedelta] = {
    DeviceKind.WATER_METER: timedelta(hours=1),
    DeviceKind.POWER_METER: timedelta(hours=1),
}
# A blood-pressure cuff or oximeter speaks when the elder measures, whatever bridge it uses: days
# without a measurement (a day out, an illness, a forgotten morning) are no device fault; a week
# is worth a look at the device.
SILENCE_HEALTH_MONITOR = timedelta(days=7)
# Mains-powered Zigbee devices (plugs, meters) are checked by Zigbee2MQTT every 10 minutes.
SILENCE_ZIGBEE_MAINS = timedelta(minutes=30)
# A device that cannot do its job silently is worse than a broken meter.
SAFETY_KINDS = frozenset(
    {
        DeviceKind.SMOKE_DETECTOR,
        DeviceKind.GAS_DETECTOR,
        DeviceKind.CALL_BUTTON,
        DeviceKind.FALL_SENSOR,
        DeviceKind.WATER_LEAK_SENSOR,
    }
)


def allowed_silence(view: DeviceView) -> timedelta:
    """How long this device may go unheard."""
    if view.kind is DeviceKind.HEALTH_MONITOR:
        return SILENCE_HEALTH_MONITOR
    if view.source == "zigbee2mqtt" and view.kind is DeviceKind.POWER_METER:
        return SILENCE_ZIGBEE_MAINS
    if view.source in SILENCE_BY_SOURCE:
        return SILENCE_BY_SOURCE[view.source]
    if view.kind in SILENCE_BY_KIND:
        return SILENCE_BY_KIND[view.kind]
    return DAY_AND_AN_HOUR


class DeviceOfflineConfig(RuleConfig):
    severity: Severity = Severity.MEDIUM
    safety_severity: Severity = Severity.HIGH
    """For smoke, gas, fall, leak sensors and call buttons: silence there hides danger."""


class DeviceOffline:
    """A device said it went offline, stayed silent too long, or never reported at all.

    It clears itself as soon as the device is heard from again.
    """

    id: ClassVar[str] = "device_offline"

    def __init__(self, config: DeviceOfflineConfig) -> None:
        self.config = config

    def on_reading(self, state: HouseholdState, reading: Reading) -> list[Finding]:
        if reading.metric is Metric.ONLINE and reading.value is False:
            view = state.devices.get(reading.device_id, DeviceView(kind=reading.kind))
            severity = self._severity(view)
            summary = "device went offline"
            return [
                finding(
                    self.id, self.config, reading, FindingAction.OPEN, summary, severity=severity
                )
            ]
        if state.retained_now or state.alert_opened_at(self.id, reading.device_id) is None:
            return []  # a retained copy of an old state proves nothing about the device now
        summary = "device back online"
        return [finding(self.id, self.config, reading, FindingAction.CLEAR, summary, resolves=True)]

    def on_tick(self, state: HouseholdState, now: datetime) -> list[Finding]:
        findings = []
        for device_id, view in state.devices.items():
            if state.alert_opened_at(self.id, device_id) is not None:
                continue
            allowed = allowed_silence(view)
            if view.last_seen is None:
                if view.registered_at is None or now - view.registered_at <= allowed:
                    continue
                summary = "never reported since installation"
                silent = now - view.registered_at
            elif now - view.last_seen > allowed:
                summary = "silent for longer than allowed"
                silent = now - view.last_seen
            else:
                continue
            findings.append(
                Finding(
                    rule_id=self.id,
                    household_id=state.household_id,
                    device_id=device_id,
                    severity=self._severity(view),
                    action=FindingAction.OPEN,
                    ts=now,
                    summary=summary,
                    evidence={
                        "kind": view.kind.value if view.kind else None,
                        "source": view.source,
                        "silent_h": round(silent.total_seconds() / 3600, 1),
                        "allowed_h": round(allowed.total_seconds() / 3600, 2),
                        "last_seen": view.last_seen.isoformat() if view.last_seen else None,
                    },
                )
            )
        return findings

    def _severity(self, view: DeviceView) -> Severity:
        if view.kind in SAFETY_KINDS:
            return self.config.safety_severity
        return self.config.severity
