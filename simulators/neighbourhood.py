"""A neighbourhood of simulated homes: households, their devices, incidents, and one stream.

Scenarios (`scenario=`):
- None: ordinary days; each household-day has an incident with chance `incident_rate`
  (a type drawn uniformly from INCIDENT_TYPES);
- one of INCIDENT_TYPES ("smoke", "sos", "fall", "incapacitation", "water_leak", "dead_device",
  "last_will", "abnormal_vitals", "low_battery", "late_morning", "day_out", "away"): that case
  in the first household on the first day, every other household ordinary;
- "mixed": every third household ordinary, the others one case each, the types in turn and
  spread over the days (18 households cover every type once).
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from datetime import datetime

from simulators.encoders import ZONE
from simulators.household import HouseholdSpec, HouseholdStream, local_midnight
from simulators.incidents import cases_for, place, roles_needed
from simulators.model import AwayPeriod, Device, Format, Incident, Message, Role
from simulators.people import registration
from simulators.routine import DAY, draw_profile

# Vendor mixes per role, with weights: what an installer in the field might fit.
_CHOICES: dict[Role, tuple[tuple[Format, str, float], ...]] = {
    Role.SMOKE: (
        (Format.ZIGBEE2MQTT, "kitchen-smoke", 0.65),
        (Format.NATIVE, "smoke-1", 0.2),
        (Format.SHELLY, "hall-smoke", 0.15),
    ),
    Role.BUTTON: ((Format.ZIGBEE2MQTT, "sos-bedroom", 0.6), (Format.NATIVE, "btn-1", 0.4)),
    Role.DOOR: ((Format.ZIGBEE2MQTT, "front-door", 1.0),),
    Role.RADAR: ((Format.ZIGBEE2MQTT, "bathroom-radar", 1.0),),
    Role.LEAK: ((Format.ZIGBEE2MQTT, "kitchen-leak", 1.0),),
    Role.POWER: (
        (Format.TASMOTA, "kitchen-plug", 0.35),
        (Format.SHELLY, "kitchen-plug", 0.25),
        (Format.ZIGBEE2MQTT, "kitchen-plug", 0.2),
        (Format.NATIVE, "power-1", 0.2),
    ),
    Role.WATER: ((Format.WMBUSMETERS, "water-1", 0.7), (Format.NATIVE, "water-1", 0.3)),
    Role.HEALTH: ((Format.NATIVE, "hm-1", 1.0),),
}
# Roles fitted in only some homes, with the share of homes that have them.
_OPTIONAL = {Role.RADAR: 0.6, Role.LEAK: 0.5, Role.HEALTH: 0.7}
_BATTERY_ROLES = frozenset({Role.SMOKE, Role.BUTTON, Role.DOOR, Role.LEAK})


class Neighbourhood:
    """`households` simulated homes from `start` for `days`, all from one seed."""

    def __init__(
        self,
        households: int,
        *,
        seed: int = 0,
        start: datetime,
        days: float = 1.0,
        scenario: str | None = None,
        prefix: str = "homes",
        incident_rate: float = 0.02,
        timestamps: bool = True,
        incident_offset_s: float | None = None,
    ) -> None:
        if households < 1 or days <= 0:
            raise ValueError("need at least one household and a positive number of days")
        if start.tzinfo is None:
            start = start.replace(tzinfo=ZONE)  # a naive start is the households' local time
        self.seed = seed
        self.prefix = prefix
        self.timestamps = timestamps
        self.start = start
        self.start_ts = float(round(start.timestamp()))
        """The start as epoch seconds; `end_ts` is the end (exclusive)."""
        self.end_ts = self.start_ts + round(days * DAY)
        self.household_ids = [f"SIM{i:04d}" for i in range(1, households + 1)]
        first_midnight = local_midnight(self.start_ts)
        whole_days = max(1, math.ceil((self.end_ts - first_midnight) / DAY))
        self.specs: list[HouseholdSpec] = []
        self.incidents: list[Incident] = []
        self.away_periods: list[AwayPeriod] = []
        for index, hid in enumerate(self.household_ids):
            cases = cases_for(scenario, index, whole_days, seed, hid, incident_rate)
            devices = _fit(seed, hid, roles_needed(cases))
            profile = draw_profile(seed, hid)
            incidents: list[Incident] = []
            busy_until = -math.inf
            for case in cases:
                incident, planned_end = place(
                    case,
                    seed=seed,
                    household_id=hid,
                    profile=profile,
                    devices=devices,
                    first_midnight=first_midnight,
                    sim_start=self.start_ts,
                    sim_end=self.end_ts,
                    offset_s=incident_offset_s,
                )
                if incident.start < busy_until:
                    continue  # one case at a time per home: overlapping ones would blur labels
                busy_until = incident.end if incident.end is not None else math.inf
                if incident.type in ("dead_device", "last_will"):
                    busy_until = math.inf  # the device stays dead: later cases might need it
                incidents.append(incident)
                if incident.type == "away":
                    self.away_periods.append(AwayPeriod(hid, incident.start, planned_end))
            r = random.Random(f"{seed}/{hid}/meters")
            self.specs.append(
                HouseholdSpec(
                    household_id=hid,
                    devices=devices,
                    profile=profile,
                    incidents=tuple(incidents),
                    water_start_l=round(r.uniform(20_000, 900_000), 1),
                    energy_start_kwh=round(r.uniform(50, 3000), 3),
                    meter_serial=f"{r.randrange(10**8):08d}",
                )
            )
            self.incidents += incidents
        self.incidents.sort(key=lambda i: (i.start, i.household_id))

    def registrations(self) -> list[dict[str, object]]:
        """Bodies for POST /api/households, one per simulated household."""
        return [registration(self.seed, n, hid) for n, hid in enumerate(self.household_ids, 1)]

    def devices(self, household_id: str) -> tuple[Device, ...]:
        """The devices fitted in one household."""
        return self._spec(household_id).devices

    def spec(self, household_id: str) -> HouseholdSpec:
        """Everything that decides one household's stream (profile, devices, incidents)."""
        return self._spec(household_id)

    def messages(self) -> Iterator[Message]:
        """Every household's messages, in time order, generated as they are read."""
        streams = [
            iter(
                HouseholdStream(
                    spec,
                    seed=self.seed,
                    prefix=self.prefix,
                    stamp=self.timestamps,
                    start=self.start_ts,
                    end=self.end_ts,
                )
            )
            for spec in self.specs
        ]
        # heapq.merge keeps equal times in household order: the stream is deterministic.
        return heapq.merge(*streams, key=lambda m: m.ts)

    def _spec(self, household_id: str) -> HouseholdSpec:
        for spec in self.specs:
            if spec.household_id == household_id:
                return spec
        raise KeyError(household_id)


def _fit(seed: int, household_id: str, needed: set[Role]) -> tuple[Device, ...]:
    """The devices an installer fitted in this home: a vendor mix drawn from the seed."""
    r = random.Random(f"{seed}/{household_id}/install")
    devices = []
    for role, choices in _CHOICES.items():
        share = _OPTIONAL.get(role, 1.0)
        if r.random() >= share and role not in needed:
            continue
        fmt, device_id, _ = r.choices(choices, weights=[w for _, _, w in choices])[0]
        devices.append(Device(household_id, device_id, role, fmt, role in _BATTERY_ROLES))
    return tuple(devices)
