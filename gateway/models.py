"""Canonical types shared by every module of the gateway.

This module imports nothing from the project: it is the vocabulary the rest speaks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

ReadingValue = float | bool | str
EvidenceValue = float | bool | str | None

HOUSEHOLD_DEVICE = "household"
"""The device id of alerts about the whole household (inactivity), not one device."""
SEVERAL_DEVICES = "*"
"""The device id of an alert about several devices at once (device_offline: all silent)."""
ALERT_DEVICE_IDS = frozenset({HOUSEHOLD_DEVICE, SEVERAL_DEVICES})
"""Device ids that alerts use: no real device may have one."""


class DeviceKind(StrEnum):
    """What a device is, as far as care is concerned."""

    SMOKE_DETECTOR = "smoke_detector"
    GAS_DETECTOR = "gas_detector"
    WATER_METER = "water_meter"
    POWER_METER = "power_meter"
    CALL_BUTTON = "call_button"
    HEALTH_MONITOR = "health_monitor"
    FALL_SENSOR = "fall_sensor"
    DOOR_SENSOR = "door_sensor"
    MOTION_SENSOR = "motion_sensor"
    WATER_LEAK_SENSOR = "water_leak_sensor"


class Metric(StrEnum):
    """A canonical measurement; units and ranges live in `gateway.devices.catalogue`."""

    SMOKE = "smoke"
    GAS_LEAK = "gas_leak"
    WATER_LEAK = "water_leak"
    WATER_TOTAL_L = "water_total_l"
    WATER_FLOW_LPM = "water_flow_lpm"
    ENERGY_TOTAL_KWH = "energy_total_kwh"
    POWER_W = "power_w"
    HEART_RATE_BPM = "heart_rate_bpm"
    SPO2_PCT = "spo2_pct"
    BP_SYSTOLIC_MMHG = "bp_systolic_mmhg"
    BP_DIASTOLIC_MMHG = "bp_diastolic_mmhg"
    BODY_TEMP_C = "body_temp_c"
    FALL = "fall"
    PRESENCE = "presence"
    DOOR_OPEN = "door_open"
    BUTTON = "button"
    BATTERY_PCT = "battery_pct"
    BATTERY_LOW = "battery_low"
    TAMPER = "tamper"
    ONLINE = "online"
    LINK_QUALITY = "link_quality"
    SELF_TEST = "self_test"


class ButtonAction(StrEnum):
    """Values of the `button` metric."""

    SOS = "sos"
    SINGLE = "single"
    DOUBLE = "double"
    LONG = "long"
    CANCEL = "cancel"


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class AlertStatus(StrEnum):
    """Alert lifecycle: open -> notified -> acknowledged -> resolved."""

    OPEN = "open"
    NOTIFIED = "notified"
    ESCALATED = "escalated"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


ACTIVE_ALERT_STATUSES: frozenset[AlertStatus] = frozenset(
    {AlertStatus.OPEN, AlertStatus.NOTIFIED, AlertStatus.ESCALATED, AlertStatus.ACKNOWLEDGED}
)


@dataclass(frozen=True, slots=True)
class Reading:
    """One canonical measurement from one device, at event time `ts` (timezone-aware, UTC)."""

    household_id: str
    device_id: str
    kind: DeviceKind | None
    metric: Metric
    value: ReadingValue
    unit: str | None
    ts: datetime


class FindingAction(StrEnum):
    OPEN = "open"
    CLEAR = "clear"


@dataclass(frozen=True, slots=True)
class Finding:
    """What a rule concluded: open an alert, or say its condition has ended.

    A `clear` finding with `resolves=True` closes the alert (a condition rule whose condition
    ended, a call withdrawn by the elder); with `resolves=False` it is only noted on the alert,
    which stays open until someone acknowledges it.
    """

    rule_id: str
    household_id: str
    device_id: str
    severity: Severity
    action: FindingAction
    ts: datetime
    summary: str
    evidence: dict[str, EvidenceValue] = field(default_factory=dict)
    resolves: bool = False
