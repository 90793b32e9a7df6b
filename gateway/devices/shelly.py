"""Shelly Gen2 and later (DESIGN.md §4): component status on status/<type>:<id>, and online.

homes/H001/shelly/plug-1/status/switch:0  {"id":0,"apower":11.5,"aenergy":{"total":152669.987}}
homes/H001/shelly/plug-1/online           true | false    (retained; the device's last will)

With "Generic status update over MQTT" (status_ntf) on, the device publishes each component's
whole status object on status/<type>:<id>. Energy counters are watt-hours in every component
(shelly-api-docs: Switch, PM1, EMData, EM1Data). The status carries no time of its own
(aenergy.minute_ts is the start of the last whole minute, not of the reading), so readings take
the arrival time. Components without care meaning (sys, wifi, input, temperature, ...) and the
RPC notifications on events/rpc give no readings.
"""

from __future__ import annotations

from gateway.devices.base import DeviceMessage, Normalised, Rejected, add_reading, decode_json
from gateway.devices.catalogue import InvalidValue
from gateway.devices.table import Field, apply_fields, divide_by, word_bool
from gateway.models import DeviceKind, Metric

_METER = DeviceKind.POWER_METER
_WH_TO_KWH = divide_by(1000)

# Switch (Plus 1PM, Plus Plug S, ...) and PM1 (PM Mini, Plug S Gen3) share the metering fields.
_METERED_OUTPUT = (
    Field("apower", Metric.POWER_W, kind=_METER),
    Field("aenergy.total", Metric.ENERGY_TOTAL_KWH, _WH_TO_KWH, _METER),
)

COMPONENTS: dict[str, tuple[Field, ...]] = {
    "switch": _METERED_OUTPUT,
    "pm1": _METERED_OUTPUT,
    # Single-phase meters (Pro EM, EM Gen3): power in em1:N, energy in em1data:N.
    "em1": (Field("act_power", Metric.POWER_W, kind=_METER),),
    "em1data": (Field("total_act_energy", Metric.ENERGY_TOTAL_KWH, _WH_TO_KWH, _METER),),
    # Three-phase meters (Pro 3EM, 3EM Gen3): totals over the phases in em:N and emdata:N.
    "em": (Field("total_act_power", Metric.POWER_W, kind=_METER),),
    "emdata": (Field("total_act", Metric.ENERGY_TOTAL_KWH, _WH_TO_KWH, _METER),),
    # Plus Smoke and Flood (Gen4): `alarm` is the detector's alarm state.
    "smoke": (Field("alarm", Metric.SMOKE, kind=DeviceKind.SMOKE_DETECTOR),),
    "flood": (Field("alarm", Metric.WATER_LEAK, kind=DeviceKind.WATER_LEAK_SENSOR),),
    # Battery-powered devices report their charge here.
    "devicepower": (Field("battery.percent", Metric.BATTERY_PCT),),
}

_ONLINE = word_bool(true=("true",), false=("false",))


def normalise(message: DeviceMessage) -> Normalised:
    """Turn one Shelly status or online message into canonical readings."""
    if message.subtopic == "online":
        return _online(message)
    section, _, component = message.subtopic.partition("/")
    fields = COMPONENTS.get(component.partition(":")[0]) if section == "status" else None
    if fields is None:
        return Normalised()
    body = decode_json(message.payload)
    if not isinstance(body, dict):
        raise Rejected("invalid_payload", f"status of {component[:40]} must be a JSON object")
    return apply_fields(fields, body, message, message.received_at)


def _online(message: DeviceMessage) -> Normalised:
    text = message.payload.decode("utf-8", errors="replace").strip()
    if not text:
        return Normalised()  # a retained last will being cleared
    try:
        online = _ONLINE(text)
    except InvalidValue:
        raise Rejected(
            "invalid_value", f"online: expected true or false, got {text[:40]!r}"
        ) from None
    out = Normalised()
    add_reading(out, message, None, Metric.ONLINE, online, message.received_at)
    return out
