"""Vendor payload encoders: what each real bridge publishes for a device's state, as text.

The shapes follow the golden fixtures in tests/fixtures/devices/ (and the vendors' docs they
cite), so a simulated home exercises the same normaliser paths as a real one:

- native:       {p}/{h}/{d}/telemetry | event | status   (`ts` epoch seconds)
- zigbee2mqtt:  {p}/{h}/z2m/{d}, .../availability         (`last_seen` ISO 8601 local, offset)
- tasmota:      {p}/{h}/tasmota/tele/{d}/SENSOR | LWT      (`Time` local, no offset: arrival)
- shelly:       {p}/{h}/shelly/{d}/status/<comp>:0 | online (no stamp: arrival)
- wmbusmeters:  {p}/{h}/wmbus/{d}                          (`timestamp` UTC, Z)

An `Observation` carries canonical values (only those measured); each encoder renders it.
With `stamp` false, no payload carries its own time, so a live run whose simulated clock is
ahead of the real one is stamped by the gateway on arrival instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from simulators.model import Device, Format, Message, Role

ZONE = ZoneInfo("Asia/Shanghai")

_NATIVE_KIND = {
    Role.SMOKE: "smoke_detector",
    Role.BUTTON: "call_button",
    Role.POWER: "power_meter",
    Role.WATER: "water_meter",
    Role.HEALTH: "health_monitor",
}


@dataclass(frozen=True, slots=True)
class Observation:
    """What a device reports at one moment, in canonical units; None is "not in this report"."""

    smoke: bool | None = None
    water_leak: bool | None = None
    door_open: bool | None = None
    presence: bool | None = None
    fall: bool | None = None
    sos: bool = False
    power_w: float | None = None
    energy_kwh: float | None = None
    water_l: float | None = None
    vitals: tuple[tuple[str, float], ...] = ()
    battery_pct: float | None = None


@dataclass(frozen=True, slots=True)
class Encoder:
    """Renders observations and availability for one device."""

    device: Device
    prefix: str
    stamp: bool
    meter_serial: str = "00000000"
    base: str = field(init=False)
    """The device's topic, to which the format adds its subtopics."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "base", _topic_base(self.device, self.prefix))

    def observe(self, ts: float, obs: Observation) -> list[Message]:
        """The message(s) the device's bridge publishes for `obs` at `ts`."""
        return _RENDER[self.device.format](self, ts, obs)

    def availability(self, ts: float, online: bool) -> Message | None:
        """The retained availability / last-will message, or None (wmbusmeters has none)."""
        base, fmt = self.base, self.device.format
        if fmt is Format.NATIVE:
            return Message(ts, f"{base}/status", "online" if online else "offline", True)
        if fmt is Format.ZIGBEE2MQTT:
            state = json.dumps({"state": "online" if online else "offline"})
            return Message(ts, f"{base}/availability", state, True)
        if fmt is Format.TASMOTA:
            return Message(ts, f"{base}/LWT", "Online" if online else "Offline", True)
        if fmt is Format.SHELLY:
            return Message(ts, f"{base}/online", "true" if online else "false", True)
        return None


def _topic_base(d: Device, prefix: str) -> str:
    where = f"{prefix}/{d.household_id}"
    return {
        Format.NATIVE: f"{where}/{d.device_id}",
        Format.ZIGBEE2MQTT: f"{where}/z2m/{d.device_id}",
        Format.TASMOTA: f"{where}/tasmota/tele/{d.device_id}",
        Format.SHELLY: f"{where}/shelly/{d.device_id}",
        Format.WMBUSMETERS: f"{where}/wmbus/{d.device_id}",
    }[d.format]


def _dumps(body: Mapping[str, object]) -> str:
    # Default options on purpose: json.dumps then reuses its cached C encoder (3x faster).
    return json.dumps(body)


def _native(enc: Encoder, ts: float, obs: Observation) -> list[Message]:
    kind = _NATIVE_KIND[enc.device.role]
    head: dict[str, object] = {"kind": kind}
    if enc.stamp:
        head["ts"] = int(ts)
    base = enc.base
    out: list[Message] = []
    if obs.sos:
        out.append(Message(ts, f"{base}/event", _dumps({**head, "event": "sos"})))
    if obs.fall:
        out.append(Message(ts, f"{base}/event", _dumps({**head, "event": "fall"})))
    body: dict[str, object] = {}
    if obs.smoke is not None:
        body["smoke"] = obs.smoke
    if obs.water_l is not None:
        body["water_total_l"] = round(obs.water_l, 1)
    if obs.power_w is not None:
        body["power_w"] = round(obs.power_w, 1)
    if obs.energy_kwh is not None:
        body["energy_total_kwh"] = round(obs.energy_kwh, 3)
    body.update(obs.vitals)
    if obs.battery_pct is not None:
        body["battery_pct"] = round(obs.battery_pct)
    if body:
        out.append(Message(ts, f"{base}/telemetry", _dumps({**head, **body})))
    return out


def _zigbee2mqtt(enc: Encoder, ts: float, obs: Observation) -> list[Message]:
    role = enc.device.role
    body: dict[str, object] = {}
    if role is Role.BUTTON:
        # TuYa TS0215A_sos: `action` is "emergency" on a press, null in the state otherwise.
        body["action"] = "emergency" if obs.sos else None
    if role is Role.SMOKE:
        body["smoke"] = bool(obs.smoke)
        body["test"] = False
    if role is Role.LEAK:
        body["water_leak"] = bool(obs.water_leak)
        body["tamper"] = False
    if role is Role.DOOR and obs.door_open is not None:
        body["contact"] = not obs.door_open  # contact true: magnet present, door closed
    if role is Role.RADAR:
        # TuYa MIR-HE200-TY fall radar: presence and fall_down_status none/maybe_fall/fall.
        if obs.presence is not None:
            body["presence"] = obs.presence
        if obs.fall is not None:
            body["fall_down_status"] = "fall" if obs.fall else "none"
    if role is Role.POWER:
        body["state"] = "ON"
        body["power"] = round(obs.power_w or 0.0, 1)
        body["energy"] = round(obs.energy_kwh or 0.0, 2)
        body["voltage"] = 221
    if obs.battery_pct is not None:
        body["battery"] = round(obs.battery_pct)
        body["battery_low"] = obs.battery_pct < 15
    body["linkquality"] = 40 + int(ts) % 120
    if enc.stamp:
        body["last_seen"] = datetime.fromtimestamp(ts, ZONE).isoformat(timespec="seconds")
    return [Message(ts, enc.base, _dumps(body))]


def _tasmota(enc: Encoder, ts: float, obs: Observation) -> list[Message]:
    watts = round(obs.power_w or 0.0)
    volts = 221
    energy = {
        "TotalStartTime": "2023-05-01T09:00:00",
        "Total": round(obs.energy_kwh or 0.0, 3),
        "Period": 0,
        "Power": watts,
        "ApparentPower": round(watts * 1.05),
        "ReactivePower": round(watts * 0.3),
        "Factor": 0.95 if watts else 0.0,
        "Voltage": volts,
        "Current": round(watts / volts, 3),
    }
    # Tasmota's Time is the device's local time without an offset: the gateway uses arrival.
    local = datetime.fromtimestamp(ts, ZONE).replace(tzinfo=None).isoformat(timespec="seconds")
    return [Message(ts, f"{enc.base}/SENSOR", _dumps({"Time": local, "ENERGY": energy}))]


def _shelly(enc: Encoder, ts: float, obs: Observation) -> list[Message]:
    base = enc.base
    out: list[Message] = []
    if enc.device.role is Role.SMOKE:
        alarm = {"id": 0, "alarm": bool(obs.smoke), "mute": False}
        out.append(Message(ts, f"{base}/status/smoke:0", _dumps(alarm)))
        if obs.battery_pct is not None:
            percent = round(obs.battery_pct)
            power = {
                "id": 0,
                "battery": {"V": round(2.4 + percent / 100 * 0.6, 2), "percent": percent},
                "external": {"present": False},
            }
            out.append(Message(ts, f"{base}/status/devicepower:0", _dumps(power)))
        return out
    watts = round(obs.power_w or 0.0, 1)
    status = {
        "id": 0,
        "source": "init",
        "output": True,
        "apower": watts,
        "voltage": 221.4,
        "freq": 50.0,
        "current": round(watts / 221.4, 3),
        "aenergy": {
            "total": round((obs.energy_kwh or 0.0) * 1000, 3),  # Shelly counts watt-hours
            "by_minute": [0.0, 0.0, 0.0],
            "minute_ts": int(ts) // 60 * 60,
        },
        "temperature": {"tC": 38.5, "tF": 101.3},
    }
    return [Message(ts, f"{base}/status/switch:0", _dumps(status))]


def _wmbusmeters(enc: Encoder, ts: float, obs: Observation) -> list[Message]:
    body: dict[str, object] = {
        "_": "telegram",
        "media": "water",
        "meter": "iperl",
        "name": enc.device.device_id,
        "id": enc.meter_serial,
        "total_m3": round((obs.water_l or 0.0) / 1000, 3),
        "max_flow_m3h": 0,
    }
    if enc.stamp:
        body["timestamp"] = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [Message(ts, enc.base, _dumps(body))]


_RENDER: dict[Format, Callable[[Encoder, float, Observation], list[Message]]] = {
    Format.NATIVE: _native,
    Format.ZIGBEE2MQTT: _zigbee2mqtt,
    Format.TASMOTA: _tasmota,
    Format.SHELLY: _shelly,
    Format.WMBUSMETERS: _wmbusmeters,
}
