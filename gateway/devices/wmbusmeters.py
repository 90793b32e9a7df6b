"""wmbusmeters JSON (DESIGN.md §4): one decoded (wireless) M-Bus telegram per message.

homes/H001/wmbus/water-1  {"media":"water","meter":"iperl","id":"33225544","total_m3":123.529,
                           "timestamp":"2024-03-03T18:37:00Z"}

The field names come from the driver; the media (from the telegram's device type) says what they
measure. Heat and gas meters also send `total_energy_consumption_kwh` or `total_m3`, so only
water and electricity media are read, and a message without a media is read by its field names.
Drivers print null for a field not (yet) decoded: no reading. `timestamp` is when wmbusmeters
received the telegram, in UTC.
"""

from __future__ import annotations

from gateway.devices.base import (
    DeviceMessage,
    Normalised,
    Rejected,
    decode_json,
    event_time_or_arrival,
)
from gateway.devices.table import Field, apply_fields, identity, multiply_by
from gateway.models import DeviceKind, Metric

WATER = (Field("total_m3", Metric.WATER_TOTAL_L, multiply_by(1000), DeviceKind.WATER_METER),)
ELECTRICITY = (
    Field(
        "total_energy_consumption_kwh", Metric.ENERGY_TOTAL_KWH, identity, DeviceKind.POWER_METER
    ),
    Field(
        "current_power_consumption_kw", Metric.POWER_W, multiply_by(1000), DeviceKind.POWER_METER
    ),
)

# Media names as wmbusmeters prints them (mediaTypeJSON in src/wmbus.cc).
FIELDS_BY_MEDIA: dict[str, tuple[Field, ...]] = {
    **dict.fromkeys(("water", "cold water", "warm water", "hot water", "hot/cold water"), WATER),
    "electricity": ELECTRICITY,
}


def normalise(message: DeviceMessage) -> Normalised:
    """Turn one wmbusmeters telegram into canonical readings."""
    body = decode_json(message.payload)
    if not isinstance(body, dict):
        raise Rejected("invalid_payload", "payload must be a JSON object")
    media = body.get("media")
    problems: list[str] = []
    fields: tuple[Field, ...]
    if media is None:
        fields = WATER + ELECTRICITY
    elif isinstance(media, str):
        fields = FIELDS_BY_MEDIA.get(media.lower(), ())
    else:
        fields = ()
        problems.append(f"media: expected text, got {media!r:.40}")
    if not fields:
        return Normalised(problems=problems)
    ts = event_time_or_arrival(body.get("timestamp"), message, problems, "timestamp")
    out = apply_fields(fields, body, message, ts)
    out.problems[:0] = problems
    return out
