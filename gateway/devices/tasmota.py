"""Tasmota telemetry (DESIGN.md §4): the SENSOR, STATE and LWT messages under tele/<device>/.

homes/H001/tasmota/tele/plug-1/SENSOR  {"Time":"2022-01-11T21:57:38","ENERGY":{"Power":5}}
homes/H001/tasmota/tele/plug-1/LWT     Online | Offline    (retained; the device's last will)

STATE (uptime, Wi-Fi) and the other tele messages (INFO1-3, RESULT) carry nothing for care.
`Time` is the device's local time without an offset unless SetOption52 adds one; `Time 2` adds a
UTC `Epoch`, `Time 3` makes `Time` itself epoch seconds (Tasmota docs, Commands: Time).
"""

from __future__ import annotations

from gateway.devices.base import (
    DeviceMessage,
    Normalised,
    Rejected,
    decode_json,
    event_time_or_arrival,
    online_status,
)
from gateway.devices.catalogue import InvalidValue
from gateway.devices.table import Field, apply_fields, as_decimal
from gateway.models import DeviceKind, Metric


def sum_channels(value: object) -> object:
    """Multi-channel meters (a Shelly 2.5 under Tasmota) send one number per channel: add them."""
    if not isinstance(value, list):
        return value
    if not value or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        raise InvalidValue(f"expected a number per channel, got {value!r:.40}")
    return float(sum(as_decimal(v) for v in value))


FIELDS = (
    Field("ENERGY.Power", Metric.POWER_W, sum_channels, DeviceKind.POWER_METER),
    # Total is kWh already; since Tasmota 12 it may be per phase (EnergyTotal with SetOption129).
    Field("ENERGY.Total", Metric.ENERGY_TOTAL_KWH, sum_channels, DeviceKind.POWER_METER),
)


def normalise(message: DeviceMessage) -> Normalised:
    """Turn one Tasmota tele message into canonical readings."""
    if message.subtopic == "LWT":
        return online_status(message, "LWT")
    if message.subtopic != "SENSOR":
        return Normalised()
    body = decode_json(message.payload)
    if not isinstance(body, dict):
        raise Rejected("invalid_payload", "SENSOR payload must be a JSON object")
    problems: list[str] = []
    ts = event_time_or_arrival(body.get("Epoch", body.get("Time")), message, problems, "Time")
    out = apply_fields(FIELDS, body, message, ts)
    out.problems[:0] = problems
    return out
