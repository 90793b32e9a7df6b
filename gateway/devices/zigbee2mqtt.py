"""Zigbee2MQTT device JSON (DESIGN.md §4), as its exposes publish it.

homes/H001/z2m/hall-smoke          {"smoke":false,"test":true,"battery":100,"linkquality":30}
homes/H001/z2m/sos-1               {"action":"emergency","last_seen":"2026-04-17T23:33:22+08:00"}
homes/H001/z2m/sos-1/availability  {"state":"online"} | online | offline   (retained)

Field names and units are zigbee-herdsman-converters' exposes (`src/lib/exposes.ts` presets):
`contact` is true when the magnet is present (door closed), `energy` is kWh, `power` is W.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from gateway.devices.base import (
    DeviceMessage,
    Normalised,
    Rejected,
    decode_json,
    event_time,
    online_status,
)
from gateway.devices.catalogue import InvalidValue
from gateway.devices.table import Field, Skip, apply_fields, lookup, negate
from gateway.models import ButtonAction, Metric

# Button words, from the exposes of call and SOS buttons: TuYa TS0215A_sos / TS0601_sos send
# "emergency" (IAS ACE commandEmergency), keypads "panic" (commandPanic); SONOFF SNZB-01 sends
# single/double/long, TuYa and HEIMAN HS1EB "hold", CR Smart Home TS0218 "click". Any other word
# ("release", "brightness_up", "triple", HS1EB's "off") is a control we do not watch, not an error.
_PRESSES: dict[str, ButtonAction] = {
    "sos": ButtonAction.SOS,
    "emergency": ButtonAction.SOS,
    "panic": ButtonAction.SOS,
    "single": ButtonAction.SINGLE,
    "click": ButtonAction.SINGLE,
    "double": ButtonAction.DOUBLE,
    "long": ButtonAction.LONG,
    "hold": ButtonAction.LONG,
}

# Fall radars. TuYa MIR-HE200-TY `fall_down_status`: none/maybe_fall/fall; HEIMAN HS2FD-EF1-3.0
# `fall_status`: normal/fall_warning/fall_alarm/unknown. A "maybe" is neither a fall nor an
# all-clear (the radar confirms or drops it within seconds), so it gives no reading at all.
_FALL_DOWN_STATUS = lookup({"fall": True, "none": False}, ignore=("", "maybe_fall"))
_FALL_STATUS = lookup({"fall_alarm": True, "normal": False}, ignore=("", "fall_warning", "unknown"))


def _press(value: object) -> object:
    """`action` to a button value; empty, or any word that is not a press, is no reading."""
    if not isinstance(value, str):
        raise InvalidValue(f"expected an action word, got {value!r:.40}")
    if value not in _PRESSES:
        raise Skip
    return _PRESSES[value].value


# Order matters: a device's kind comes from the first field present that implies one, so the
# fields that say most (a fall radar also reports presence, a wall switch with a meter also sends
# `action`, a combined detector reports gas and smoke) come first. Kinds follow the catalogue's
# KIND_BY_METRIC, which already makes `action` a call button.
FIELDS: tuple[Field, ...] = (
    # The test flag first: the smoke rule must know a report is a self-test when it sees it.
    Field("test", Metric.SELF_TEST),
    Field("fall_down_status", Metric.FALL, _FALL_DOWN_STATUS),
    Field("fall_status", Metric.FALL, _FALL_STATUS),
    Field("gas", Metric.GAS_LEAK),
    Field("smoke", Metric.SMOKE),
    Field("water_leak", Metric.WATER_LEAK),
    Field("contact", Metric.DOOR_OPEN, negate),
    Field("occupancy", Metric.PRESENCE),
    Field("presence", Metric.PRESENCE),
    Field("power", Metric.POWER_W),
    Field("energy", Metric.ENERGY_TOTAL_KWH),
    Field("action", Metric.BUTTON, _press),
    Field("tamper", Metric.TAMPER),
    Field("battery", Metric.BATTERY_PCT),
    Field("battery_low", Metric.BATTERY_LOW),
    Field("linkquality", Metric.LINK_QUALITY),
)


def normalise(message: DeviceMessage) -> Normalised:
    """Turn one Zigbee2MQTT state or availability message into canonical readings."""
    if message.subtopic == "availability":
        return online_status(message, "availability")
    if message.subtopic:
        return Normalised()  # /set, /get: commands to the device, never state
    if not message.payload.strip():
        return Normalised()  # a retained state cleared when the device was removed or renamed
    body = decode_json(message.payload)
    if not isinstance(body, dict):
        raise Rejected("invalid_payload", "payload must be a JSON object")
    ts, problem = _last_seen(body, message)
    out = apply_fields(FIELDS, body, message, ts)
    if problem:
        out.problems.append(problem)
    return out


def _last_seen(body: Mapping[str, object], message: DeviceMessage) -> tuple[datetime, str | None]:
    """Event time from `last_seen` (advanced.last_seen: ISO_8601, ISO_8601_local or epoch ms).

    The stamp is the hub's clock, not the device's: when it is unusable (a Raspberry Pi that
    booted without network time) the message still counts, at its arrival time.
    """
    raw = body.get("last_seen")
    try:
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            raw = raw / 1000
        return event_time(raw, message), None
    except (Rejected, OverflowError) as exc:
        return message.received_at, f"last_seen: {exc}; used the arrival time"
