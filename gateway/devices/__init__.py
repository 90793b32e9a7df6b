"""Payload formats: each turns one device message into canonical readings (pure functions)."""

from __future__ import annotations

from gateway.devices import native, shelly, tasmota, wmbusmeters, zigbee2mqtt
from gateway.devices.base import DeviceMessage, Normalised, Normaliser, Rejected

FORMATS: dict[str, Normaliser] = {
    "native": native.normalise,
    "zigbee2mqtt": zigbee2mqtt.normalise,
    "tasmota": tasmota.normalise,
    "shelly": shelly.normalise,
    "wmbusmeters": wmbusmeters.normalise,
}


def normaliser_for(format_name: str) -> Normaliser:
    """The normaliser registered for `format_name`, or KeyError naming the known formats."""
    try:
        return FORMATS[format_name]
    except KeyError:
        known = ", ".join(sorted(FORMATS))
        raise KeyError(f"unknown payload format {format_name!r} (known: {known})") from None


__all__ = ["FORMATS", "DeviceMessage", "Normalised", "Normaliser", "Rejected", "normaliser_for"]
