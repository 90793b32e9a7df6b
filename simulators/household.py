"""One household's message stream: its devices reporting its routine, and its incidents.

The stream is made a day at a time (only one day's messages are held), in time order.
Meters integrate what the routine does: water uses are flows over their duration, loads are
constant power between on and off, the fridge cycles for ever; a meter reports its running
total on a fixed period (and a power meter at every change of load too, as they do with a
power delta set).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from simulators.encoders import ZONE, Encoder, Observation
from simulators.model import Device, Format, Incident, Message, Role
from simulators.routine import (
    DAY,
    HOUR,
    MINUTE,
    DayPlan,
    Profile,
    _drop_between,
    plan_day,
)

# Report periods (seconds) per (role, format), after each bridge's habit: Tasmota TelePeriod
# 300 s, a wireless water meter every few minutes, battery Zigbee sensors about hourly.
_PERIOD: dict[tuple[Role, Format], float] = {
    (Role.WATER, Format.WMBUSMETERS): 300,
    (Role.WATER, Format.NATIVE): 600,
    (Role.POWER, Format.TASMOTA): 300,
    (Role.POWER, Format.ZIGBEE2MQTT): 600,
    (Role.POWER, Format.SHELLY): 1800,
    (Role.POWER, Format.NATIVE): 600,
    (Role.SMOKE, Format.SHELLY): 6 * HOUR,
    (Role.BUTTON, Format.ZIGBEE2MQTT): 4 * HOUR,
    (Role.BUTTON, Format.NATIVE): 4 * HOUR,
}
_DEFAULT_PERIOD = HOUR
# Types during which the elder does nothing at home (fridge and heartbeats carry on).
QUIET_TYPES = frozenset({"fall", "incapacitation", "day_out", "away"})
SMOKE_REPEAT_S = 300.0
LOW_BATTERY_PCT = 12.0


@dataclass(frozen=True, slots=True)
class HouseholdSpec:
    """Everything that decides a household's stream."""

    household_id: str
    devices: tuple[Device, ...]
    profile: Profile
    incidents: tuple[Incident, ...]
    water_start_l: float
    energy_start_kwh: float
    meter_serial: str

    def device(self, role: Role) -> Device | None:
        return next((d for d in self.devices if d.role is role), None)


def local_midnight(ts: float) -> float:
    """Epoch seconds of the local midnight on or before `ts`."""
    day = datetime.fromtimestamp(ts, ZONE).replace(hour=0, minute=0, second=0, microsecond=0)
    return day.timestamp()


class HouseholdStream:
    """Generates one household's messages between `start` and `end`, lazily, in time order."""

    def __init__(
        self, spec: HouseholdSpec, *, seed: int, prefix: str, stamp: bool, start: float, end: float
    ) -> None:
        self.spec = spec
        self.seed = seed
        self.start = start
        self.end = end
        self.encoders = {
            d.device_id: Encoder(d, prefix, stamp, spec.meter_serial) for d in spec.devices
        }
        r = random.Random(f"{seed}/{spec.household_id}/devices")
        self.phase = {d.device_id: r.uniform(0, _period(d)) for d in spec.devices}
        self.battery0 = {d.device_id: r.uniform(45, 100) for d in spec.devices if d.battery}
        self.drain = {d.device_id: r.uniform(0.05, 0.3) / DAY for d in spec.devices if d.battery}
        self.water_l = spec.water_start_l
        self.energy_kwh = spec.energy_start_kwh
        self.quiet = [i for i in spec.incidents if i.type in QUIET_TYPES]

    def __iter__(self) -> Iterator[Message]:
        yield from self._initial()
        day = datetime.fromtimestamp(local_midnight(self.start), ZONE)
        while day.timestamp() < self.end:
            nxt = day + timedelta(days=1)
            lo, hi = max(day.timestamp(), self.start), min(nxt.timestamp(), self.end)
            yield from self._day(day.timestamp(), lo, hi)
            day = nxt

    def _initial(self) -> list[Message]:
        # Bridges publish availability retained when they connect: the broker keeps it.
        out = []
        for enc in self.encoders.values():
            msg = enc.availability(self.start, True)
            if msg is not None:
                out.append(msg)
        return out

    def _day(self, midnight: float, lo: float, hi: float) -> list[Message]:
        plan = plan_day(
            self.spec.profile,
            self.seed,
            self.spec.household_id,
            midnight,
            wake_delay_s=self._wake_delay(midnight),
        )
        for q in self.quiet:
            q_end = q.end if q.end is not None else self.end + DAY
            _drop_between(plan, q.start, q_end)
            plan.door = [t for t in plan.door if not q.start <= t < q_end]
        out: list[tuple[float, int, Message]] = []
        for device in self.spec.devices:
            for msg in self._device_day(device, plan, lo, hi):
                if lo <= msg.ts < hi and not self._dead(device.device_id, msg.ts):
                    out.append((msg.ts, len(out), msg))
        for msg in self._incident_messages(lo, hi):
            out.append((msg.ts, len(out), msg))
        out.sort(key=lambda x: (x[0], x[1]))
        return [m for _, _, m in out]

    def _wake_delay(self, midnight: float) -> float:
        for i in self.spec.incidents:
            if i.type == "late_morning" and midnight <= i.start < midnight + DAY:
                return (i.end or i.start) - i.start
        return 0.0

    def _dead(self, device_id: str, ts: float) -> bool:
        return any(
            i.device_id == device_id and i.type in ("dead_device", "last_will") and i.covers(ts)
            for i in self.spec.incidents
        )

    def battery(self, device_id: str, ts: float) -> float | None:
        """The device's charge at `ts`, or None for mains devices."""
        if device_id not in self.battery0:
            return None
        pct = self.battery0[device_id] - self.drain[device_id] * (ts - self.start)
        for i in self.spec.incidents:
            if i.type == "low_battery" and i.device_id == device_id and i.covers(ts):
                pct = min(pct, LOW_BATTERY_PCT - self.drain[device_id] * (ts - i.start))
        return max(pct, 1.0)

    def _grid(self, device: Device, lo: float, hi: float) -> list[float]:
        period = _period(device)
        first = lo + (self.phase[device.device_id] - lo) % period
        times, t = [], first
        while t < hi:
            times.append(float(round(t)))
            t += period
        return times

    def _device_day(self, device: Device, plan: DayPlan, lo: float, hi: float) -> list[Message]:
        enc = self.encoders[device.device_id]
        role = device.role
        out: list[Message] = []
        if role is Role.WATER:
            flows = [(w.start, w.start + w.duration_s, w.litres / w.duration_s) for w in plan.water]
            flows += self._leak_flows()
            times = self._grid(device, lo, hi)
            for t, (_, used) in zip(times, integrate(flows, lo, times), strict=True):
                out += enc.observe(t, Observation(water_l=self.water_l + used))
            self.water_l += integrate(flows, lo, [hi])[0][1]
            return out
        if role is Role.POWER:
            loads = [(x.start, x.end, x.watts) for x in plan.loads]
            loads += [*self._fridge(lo, hi), (lo, hi, self.spec.profile.base_w)]
            changes = {float(t) for s, e, _ in loads for t in (s, e) if lo < t < hi}
            times = sorted(set(self._grid(device, lo, hi)) | changes)
            for t, (watts, joules) in zip(times, integrate(loads, lo, times), strict=True):
                obs = Observation(power_w=watts, energy_kwh=self.energy_kwh + joules / 3.6e6)
                out += enc.observe(t, obs)
            self.energy_kwh += integrate(loads, lo, [hi])[0][1] / 3.6e6
            return out
        for t in self._grid(device, lo, hi):
            out += enc.observe(t, self._heartbeat(device, plan, t))
        if role is Role.RADAR:
            for a, b in plan.bathroom:
                out += enc.observe(a, Observation(presence=True))
                out += enc.observe(b, Observation(presence=False))
        if role is Role.DOOR:
            for t in plan.door:
                out += self._door(device, t)
        if role is Role.HEALTH:
            for t, vitals in plan.vitals:
                out += enc.observe(t, Observation(vitals=vitals))
        return out

    def _heartbeat(self, device: Device, plan: DayPlan, t: float) -> Observation:
        battery = self.battery(device.device_id, t)
        role = device.role
        if role is Role.SMOKE:
            return Observation(smoke=self._active("smoke", t), battery_pct=battery)
        if role is Role.LEAK:
            return Observation(water_leak=self._active("water_leak", t), battery_pct=battery)
        if role is Role.DOOR:
            return Observation(door_open=False, battery_pct=battery)
        if role is Role.RADAR:
            inside = any(a <= t < b for a, b in plan.bathroom)
            falling = self._active("fall", t)
            return Observation(presence=inside or falling, fall=falling)
        return Observation(battery_pct=battery)

    def _active(self, kind: str, t: float) -> bool:
        return any(i.type == kind and i.covers(t) for i in self.spec.incidents)

    def _door(self, device: Device, t: float) -> list[Message]:
        enc, battery = self.encoders[device.device_id], self.battery(device.device_id, t)
        return enc.observe(t, Observation(door_open=True, battery_pct=battery)) + enc.observe(
            t + 30, Observation(door_open=False, battery_pct=battery)
        )

    def _leak_flows(self) -> list[tuple[float, float, float]]:
        out = []
        for i in self.spec.incidents:
            if i.type == "water_leak":
                end = i.end if i.end is not None else self.end
                out.append((i.start, end, _leak_rate(self.seed, i) / 60))
        return out

    def _fridge(self, lo: float, hi: float) -> list[tuple[float, float, float]]:
        p = self.spec.profile
        period, on = p.fridge_period_s, p.fridge_duty * p.fridge_period_s
        t = lo - (lo + p.fridge_phase_s) % period
        cycles = []
        while t < hi:
            cycles.append((float(round(t)), float(round(t + on)), p.fridge_w))
            t += period
        return cycles

    def _incident_messages(self, lo: float, hi: float) -> list[Message]:
        out: list[Message] = []
        for i in self.spec.incidents:
            out += [m for m in incident_messages(self, i) if lo <= m.ts < hi]
        return out


def incident_messages(stream: HouseholdStream, incident: Incident) -> list[Message]:
    """What the household's devices publish because of `incident` (its whole span)."""
    spec, i = stream.spec, incident
    end = i.end if i.end is not None else stream.end
    enc = stream.encoders.get(i.device_id or "")
    out: list[Message] = []
    if enc is None:
        return out
    battery = stream.battery(enc.device.device_id, i.start)
    if i.type == "smoke":
        t = i.start
        while t < end:
            out += enc.observe(t, Observation(smoke=True, battery_pct=battery))
            t += SMOKE_REPEAT_S
        out += enc.observe(end, Observation(smoke=False, battery_pct=battery))
    elif i.type == "sos":
        out += enc.observe(i.start, Observation(sos=True, battery_pct=battery))
    elif i.type == "fall":
        if enc.device.role is Role.RADAR:
            out += enc.observe(i.start, Observation(presence=True, fall=True))
            out += enc.observe(end, Observation(presence=True, fall=False))
        else:
            out += enc.observe(i.start, Observation(fall=True))
    elif i.type == "water_leak" and (leak := spec.device(Role.LEAK)) is not None:
        sensor = stream.encoders[leak.device_id]
        wet = stream.battery(leak.device_id, i.start)
        out += sensor.observe(i.start, Observation(water_leak=True, battery_pct=wet))
        out += sensor.observe(end, Observation(water_leak=False, battery_pct=wet))
    elif i.type in ("dead_device", "last_will"):
        will = enc.availability(i.start, False) if i.type == "last_will" else None
        back = enc.availability(end, True) if i.end is not None else None
        out += [m for m in (will, back) if m is not None]
    elif i.type == "abnormal_vitals":
        out += enc.observe(i.start, Observation(vitals=abnormal_vitals(stream.seed, i)))
    elif i.type == "low_battery":
        out += enc.observe(i.start, stream._heartbeat(enc.device, DayPlan(0, 0), i.start))
    elif i.type in ("day_out", "away"):
        out += stream._door(enc.device, i.start) + stream._door(enc.device, end)
    return out


def abnormal_vitals(seed: int, incident: Incident) -> tuple[tuple[str, float], ...]:
    """A reading outside any elder's limits: racing or slow heart, low oxygen, or a crisis BP."""
    r = random.Random(f"{seed}/{incident.household_id}/vitals/{incident.start}")
    case = r.choice(("tachycardia", "bradycardia", "hypoxia", "hypertension"))
    hr, spo2, sys_, dia = r.randint(66, 80), r.randint(95, 98), r.randint(125, 140), 80
    if case == "tachycardia":
        hr = r.randint(130, 150)
    elif case == "bradycardia":
        hr = r.randint(36, 42)
    elif case == "hypoxia":
        spo2 = r.randint(82, 87)
    else:
        sys_, dia = r.randint(190, 210), r.randint(115, 125)
    return (
        ("heart_rate_bpm", hr),
        ("spo2_pct", spo2),
        ("bp_systolic_mmhg", sys_),
        ("bp_diastolic_mmhg", dia),
    )


def _leak_rate(seed: int, incident: Incident) -> float:
    """Litres per minute of a leak: a dripping tap to a running cistern or a split hose."""
    return random.Random(f"{seed}/{incident.household_id}/leak/{incident.start}").uniform(2, 8)


def _period(device: Device) -> float:
    return _PERIOD.get((device.role, device.format), _DEFAULT_PERIOD)


def integrate(
    intervals: Sequence[tuple[float, float, float]], lo: float, times: Sequence[float]
) -> list[tuple[float, float]]:
    """(rate, integral since `lo`) at each of the sorted `times`, for rates on over intervals.

    A rate change exactly at a query time is included in that time's rate.
    """
    changes: list[tuple[float, float]] = []
    for start, end, rate in intervals:
        s = max(start, lo)
        if s < end:
            changes.append((s, rate))
            changes.append((end, -rate))
    changes.sort()
    out: list[tuple[float, float]] = []
    rate = total = 0.0
    last, k = lo, 0
    for q in times:
        while k < len(changes) and changes[k][0] <= q:
            t, delta = changes[k]
            total += rate * (t - last)
            rate += delta
            last = t
            k += 1
        total += rate * (q - last)
        last = q
        out.append((max(rate, 0.0), total))
    return out


__all__ = ["HOUR", "MINUTE", "HouseholdSpec", "HouseholdStream", "local_midnight"]
