"""The simulator's value types: a message on the wire, a labelled incident, a fitted device."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# Incidents a rule should alert on, and the hard normal days that must not raise an alarm
# (in the field they are the usual source of false alarms).
ALARM_TYPES = (
    "smoke",
    "sos",
    "fall",
    "incapacitation",
    "water_leak",
    "dead_device",
    "last_will",
    "abnormal_vitals",
    "low_battery",
)
NORMAL_DAY_TYPES = ("late_morning", "day_out", "away")
INCIDENT_TYPES = ALARM_TYPES + NORMAL_DAY_TYPES


@dataclass(frozen=True, slots=True)
class Message:
    """One MQTT publish: `ts` is the simulated time (epoch seconds) it happens at."""

    ts: float
    topic: str
    payload: str
    retain: bool = False


@dataclass(frozen=True, slots=True)
class Incident:
    """Ground truth for one labelled case; `end` None means it lasts past the simulation."""

    household_id: str
    type: str
    start: float
    end: float | None
    device_id: str | None = None

    @property
    def alarm(self) -> bool:
        """Whether a rule should alert: false for the hard normal days."""
        return self.type in ALARM_TYPES

    def covers(self, ts: float) -> bool:
        """Whether `ts` falls in [start, end)."""
        return self.start <= ts and (self.end is None or ts < self.end)


@dataclass(frozen=True, slots=True)
class AwayPeriod:
    """The elder is away (e.g. at relatives'); an operator would mark the household away."""

    household_id: str
    start: float
    end: float


class Role(StrEnum):
    """What a device does in the home; each role is fitted in one vendor format."""

    SMOKE = "smoke"
    BUTTON = "button"
    DOOR = "door"
    RADAR = "radar"
    LEAK = "leak"
    POWER = "power"
    WATER = "water"
    HEALTH = "health"


class Format(StrEnum):
    NATIVE = "native"
    ZIGBEE2MQTT = "zigbee2mqtt"
    TASMOTA = "tasmota"
    SHELLY = "shelly"
    WMBUSMETERS = "wmbusmeters"


@dataclass(frozen=True, slots=True)
class Device:
    """A device fitted in a simulated home."""

    household_id: str
    device_id: str
    role: Role
    format: Format
    battery: bool
    """Battery powered: reports its charge, which drains day by day."""
