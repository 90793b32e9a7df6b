"""Device health: offline by its own word (status, last will), silent too long, or never heard."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

from pydantic import Field

from gateway.models import (
    SEVERAL_DEVICES,
    DeviceKind,
    Finding,
    FindingAction,
    Metric,
    Reading,
    Severity,
)
from gateway.rules.base import (
    SPELL_KEY,
    DeviceView,
    HouseholdState,
    RuleConfig,
    alerted_key,
    finding,
)

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
    group_min_devices: int = Field(default=2, ge=2, le=1000)
    """This many devices of one household falling silent at once are one alert (the hub, the
    power or the network is down), not one alert each."""


@dataclass(frozen=True, slots=True)
class _Overdue:
    device_id: str
    view: DeviceView
    summary: str
    silent: timedelta
    allowed: timedelta
    spell: str
    """The silence it is about: since the device was last heard (or registered, if never)."""


class DeviceOffline:
    """A device said it went offline, stayed silent too long, or never reported at all.

    It clears itself as soon as the device is heard from again. Devices falling silent
    together are one alert about the household (device id `*`), which clears once fewer than
    `group_min_devices` are still silent. A person who closes an alert while the device is
    still silent is not alerted again about the same silence.
    """

    id: ClassVar[str] = "device_offline"
    metrics: ClassVar[frozenset[Metric] | None] = None
    per_message: ClassVar[bool] = False
    ticks: ClassVar[bool] = True

    def __init__(self, config: DeviceOfflineConfig) -> None:
        self.config = config

    def on_reading(self, state: HouseholdState, reading: Reading) -> list[Finding]:
        last_will = reading.metric is Metric.ONLINE and reading.value is False
        if state.retained_now and not last_will:
            return []  # the broker's copy of an old state proves nothing about the device now
        grouped = state.alert_opened_at(self.id, SEVERAL_DEVICES) is not None
        if last_will:
            if grouped:
                return []  # one of the silent devices, already on the household's alert
            down = self._down(state, reading)
            if len(down) >= self.config.group_min_devices:
                # A hub's bridge reports all its devices offline at once (its coordinator
                # failed): one alert about the household, not one each.
                return self._together(state, reading.ts, down)
            view = state.devices.get(reading.device_id, DeviceView(kind=reading.kind))
            severity = self._severity(view)
            summary = "device went offline"
            return [
                finding(
                    self.id, self.config, reading, FindingAction.OPEN, summary, severity=severity
                )
            ]
        findings = []
        if state.alert_opened_at(self.id, reading.device_id) is not None:
            summary = "device back online"
            findings.append(
                finding(self.id, self.config, reading, FindingAction.CLEAR, summary, resolves=True)
            )
        if grouped:
            still = [
                o for o in self._overdue(state, reading.ts) if o.device_id != reading.device_id
            ]
            if len(still) < self.config.group_min_devices:
                findings.append(
                    Finding(
                        rule_id=self.id,
                        household_id=state.household_id,
                        device_id=SEVERAL_DEVICES,
                        severity=self.config.severity,
                        action=FindingAction.CLEAR,
                        ts=reading.ts,
                        summary=f"devices back online ({len(still)} still silent)",
                        evidence={"still_silent": _names(still)},
                        resolves=True,
                    )
                )
        return findings

    def on_tick(self, state: HouseholdState, now: datetime) -> list[Finding]:
        if state.alert_opened_at(self.id, SEVERAL_DEVICES) is not None:
            return []  # the household's alert covers every device that falls silent meanwhile
        due = [
            o
            for o in self._overdue(state, now)
            if state.alert_opened_at(self.id, o.device_id) is None
            and state.log.alerted.get(alerted_key(self.id, o.device_id)) != o.spell
        ]
        if len(due) >= self.config.group_min_devices:
            return self._together(state, now, due)
        return [self._alone(state, now, o) for o in due]

    def quiet_until(self, state: HouseholdState, now: datetime) -> datetime | None:
        """Until the allowed silence of the first device not yet silent runs out. A device
        heard meanwhile only puts that off; the silent ones (their silence alerted already,
        or the tick would have found them) are asked about again when heard (the engine
        unsettles the household then), as are devices registered or changing kind."""
        if state.alert_opened_at(self.id, SEVERAL_DEVICES) is not None:
            return None
        due: datetime | None = None
        for view in state.devices.values():
            since = view.last_seen or view.registered_at
            if since is None:
                continue  # neither heard nor installed: never overdue
            at = since + allowed_silence(view)
            if at >= now and (due is None or at < due):
                due = at
        return due

    def _overdue(self, state: HouseholdState, now: datetime) -> list[_Overdue]:
        out = []
        for device_id, view in state.devices.items():
            allowed = allowed_silence(view)
            if view.last_seen is None:
                if view.registered_at is None or now - view.registered_at <= allowed:
                    continue
                summary = "never reported since installation"
                silent = now - view.registered_at
                spell = f"never:{view.registered_at.isoformat()}"
            elif now - view.last_seen > allowed:
                summary = "silent for longer than allowed"
                silent = now - view.last_seen
                spell = view.last_seen.isoformat()
            else:
                continue
            out.append(_Overdue(device_id, view, summary, silent, allowed, spell))
        return out

    def _down(self, state: HouseholdState, last_will: Reading) -> list[_Overdue]:
        """The household's devices down now: this one, those whose last word was a last will,
        and those silent for too long."""
        down = {o.device_id: o for o in self._overdue(state, last_will.ts)}
        views = dict(state.devices)
        views.setdefault(last_will.device_id, DeviceView(kind=last_will.kind))
        for device_id, view in views.items():
            said_offline = view.values.get(Metric.ONLINE) is False and device_id not in down
            if device_id == last_will.device_id or said_offline:
                since = view.last_seen or last_will.ts
                silent = last_will.ts - since
                spell = since.isoformat()
                o = _Overdue(device_id, view, "went offline", silent, allowed_silence(view), spell)
                down[device_id] = o
        return list(down.values())

    def _alone(self, state: HouseholdState, now: datetime, o: _Overdue) -> Finding:
        return Finding(
            rule_id=self.id,
            household_id=state.household_id,
            device_id=o.device_id,
            severity=self._severity(o.view),
            action=FindingAction.OPEN,
            ts=now,
            summary=o.summary,
            evidence={
                "kind": o.view.kind.value if o.view.kind else None,
                "source": o.view.source,
                "silent_h": _hours(o.silent),
                "allowed_h": round(o.allowed.total_seconds() / 3600, 2),
                "last_seen": o.view.last_seen.isoformat() if o.view.last_seen else None,
                SPELL_KEY: o.spell,
            },
        )

    def _together(self, state: HouseholdState, now: datetime, due: list[_Overdue]) -> list[Finding]:
        spell = min(o.spell for o in due)
        if state.log.alerted.get(alerted_key(self.id, SEVERAL_DEVICES)) == spell:
            return []  # closed by a person while these devices stay silent
        severity = max((self._severity(o.view) for o in due), key=SEVERITY_RANK.__getitem__)
        return [
            Finding(
                rule_id=self.id,
                household_id=state.household_id,
                device_id=SEVERAL_DEVICES,
                severity=severity,
                action=FindingAction.OPEN,
                ts=now,
                summary=f"{len(due)} devices silent at once: hub, power or network down?",
                evidence={
                    "devices": _names(due),
                    "count": float(len(due)),
                    "longest_silent_h": _hours(max(o.silent for o in due)),
                    SPELL_KEY: spell,
                },
            )
        ]

    def _severity(self, view: DeviceView) -> Severity:
        if view.kind in SAFETY_KINDS:
            return self.config.safety_severity
        return self.config.severity


SEVERITY_RANK = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}
MAX_NAMED = 20


def _names(overdue: list[_Overdue]) -> str:
    names = sorted(o.device_id for o in overdue)
    more = f" and {len(names) - MAX_NAMED} more" if len(names) > MAX_NAMED else ""
    return ", ".join(names[:MAX_NAMED]) + more


def _hours(span: timedelta) -> float:
    return round(span.total_seconds() / 3600, 1)
