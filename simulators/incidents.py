"""Which household has what incident when: scenarios, the labelled mix, and chance incidents.

Times follow the routine: a fire at the lunch pan, incapacitation in the small hours (so the
morning shows no sign of life), a late morning that starts at the usual wake time.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from simulators.model import INCIDENT_TYPES, Device, Incident, Role
from simulators.routine import DAY, HOUR, MINUTE, Profile, wake_and_sleep

SCENARIOS = (*INCIDENT_TYPES, "mixed", "benchmark")
# The benchmark scenario leaves this many days ordinary first, so learned rules have history.
BENCHMARK_WARMUP_DAYS = 10
BENCHMARK_EVERY_DAYS = 3


@dataclass(frozen=True, slots=True)
class Case:
    """An incident type put in a household on a day (its times are drawn later)."""

    type: str
    day: int


def cases_for(
    scenario: str | None, index: int, days: int, seed: int, household_id: str, rate: float
) -> list[Case]:
    """The cases of household number `index` (from 0) under `scenario`."""
    if scenario is None:
        r = random.Random(f"{seed}/{household_id}/chance")
        out: list[Case] = []
        for day in range(days):
            if r.random() < rate:
                out.append(Case(r.choice(INCIDENT_TYPES), day))
        return out
    if scenario == "mixed":
        # Every third household stays ordinary; the others take the types in turn, spread
        # over the days, so a run of 18 homes has every type once.
        if index % 3 == 2:
            return []
        k = index - index // 3
        return [Case(INCIDENT_TYPES[k % len(INCIDENT_TYPES)], (k // len(INCIDENT_TYPES)) % days)]
    if scenario == "benchmark":
        # After the warm-up, every household takes a case every few days, the types in turn
        # (shifted per household), so every type occurs about equally often.
        out = []
        for j, day in enumerate(
            range(BENCHMARK_WARMUP_DAYS + index % BENCHMARK_EVERY_DAYS, days, BENCHMARK_EVERY_DAYS)
        ):
            out.append(Case(INCIDENT_TYPES[(index + j) % len(INCIDENT_TYPES)], day))
        return out
    if scenario not in INCIDENT_TYPES:
        raise ValueError(f"unknown scenario {scenario!r} (known: {', '.join(SCENARIOS)})")
    return [Case(scenario, 0)] if index == 0 else []


def roles_needed(cases: Sequence[Case]) -> set[Role]:
    """Devices a household must have for its cases to show."""
    needed: set[Role] = set()
    for case in cases:
        if case.type in ("abnormal_vitals", "fall"):
            needed.add(Role.HEALTH)
    return needed


def place(
    case: Case,
    *,
    seed: int,
    household_id: str,
    profile: Profile,
    devices: Sequence[Device],
    first_midnight: float,
    sim_start: float,
    sim_end: float,
    offset_s: float | None = None,
) -> tuple[Incident, float]:
    """The labelled incident for `case`, and its planned end (for away periods).

    The label's end is None when the incident outlasts the simulation. `offset_s` forces the
    start to that long after the simulation starts (demos that want the case at once).
    """
    r = random.Random(f"{seed}/{household_id}/case/{case.type}/{case.day}")
    midnight = first_midnight + case.day * DAY
    start, end = _times(case.type, r, profile, seed, household_id, midnight)
    if start < sim_start and offset_s is None:
        start, end = _times(case.type, r, profile, seed, household_id, midnight + DAY)
    if offset_s is not None or not sim_start <= start < sim_end:
        lasts = None if end is None else end - start
        start = sim_start + (
            offset_s if offset_s is not None else min(HOUR, (sim_end - sim_start) / 4)
        )
        end = None if lasts is None else start + lasts
    start = float(round(start))
    planned_end = float(round(end)) if end is not None else sim_end
    label_end = planned_end if end is not None and planned_end < sim_end else None
    return Incident(
        household_id, case.type, start, label_end, _device(case.type, devices)
    ), planned_end


def _times(
    kind: str, r: random.Random, p: Profile, seed: int, household_id: str, midnight: float
) -> tuple[float, float | None]:
    wake, sleep = wake_and_sleep(p, seed, household_id, midnight)
    if kind == "smoke":
        start = midnight + r.uniform(11.3, 12.3) * HOUR
        return start, start + r.uniform(10, 25) * MINUTE
    if kind in ("sos", "abnormal_vitals"):
        start = r.uniform(wake + HOUR, wake + 3 * HOUR)
        return start, start
    if kind == "fall":
        start = r.uniform(wake + HOUR, sleep - 3 * HOUR)
        return start, start + r.uniform(40, 150) * MINUTE
    if kind == "incapacitation":
        start = midnight + r.uniform(1.5 * HOUR, wake - midnight - HOUR)
        return start, start + r.uniform(20, 30) * HOUR
    if kind == "water_leak":
        start = r.uniform(wake + HOUR, sleep - 5 * HOUR)
        return start, start + r.uniform(2, 5) * HOUR
    if kind in ("dead_device", "last_will", "low_battery"):
        return r.uniform(wake, sleep), None
    if kind == "late_morning":
        return wake, wake + r.uniform(120, 200) * MINUTE
    if kind == "day_out":
        return r.uniform(wake + 2 * HOUR, wake + 3.5 * HOUR), midnight + r.uniform(16.5, 19) * HOUR
    if kind == "away":
        start = r.uniform(wake + 2 * HOUR, wake + 3 * HOUR)
        return start, start + r.randint(2, 4) * DAY + r.uniform(-3, 3) * HOUR
    raise ValueError(f"unknown incident type {kind!r}")


def _device(kind: str, devices: Sequence[Device]) -> str | None:
    by_role = {d.role: d.device_id for d in devices}
    wanted: dict[str, tuple[Role, ...]] = {
        "smoke": (Role.SMOKE,),
        "sos": (Role.BUTTON,),
        "fall": (Role.RADAR, Role.HEALTH),
        "water_leak": (Role.WATER,),
        # A silent meter, and a smoke alarm whose bridge gives up on it.
        "dead_device": (Role.POWER,),
        "last_will": (Role.SMOKE,),
        "abnormal_vitals": (Role.HEALTH,),
        "low_battery": (Role.SMOKE, Role.BUTTON),
        "day_out": (Role.DOOR,),
        "away": (Role.DOOR,),
    }
    return next((by_role[role] for role in wanted.get(kind, ()) if role in by_role), None)
