"""An elder's daily routine: a profile drawn once per household, and a plan drawn per day.

Everything here is a pure function of (seed, household, day): the same seed gives the same
day, and the incident planner can ask for a day's wake time without generating the day.
Times are epoch seconds; routines are reasoned about in the household's local time.

The figures are for one elderly person living alone in rural China: up around six, three meals
cooked at home, television in the evening, in bed by ten, once or twice up at night; about
50-150 litres of water and 2-5 kWh a day.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0


def _rng(seed: int, household_id: str, *parts: object) -> random.Random:
    # String seeds are hashed with SHA-512 by random.Random: stable across runs and machines,
    # independent of PYTHONHASHSEED.
    return random.Random("/".join(map(str, (seed, household_id, *parts))))


def _clamp(value: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, value))


@dataclass(frozen=True, slots=True)
class Profile:
    """One elder's habits; `wake_min`/`sleep_min` are the usual times, minutes after midnight."""

    wake_min: float
    sleep_min: float
    day_sd_min: float
    night_visits_mean: float
    flush_l: float
    base_w: float
    fridge_w: float
    fridge_period_s: float
    fridge_duty: float
    fridge_phase_s: float
    kettle_w: float
    hob_w: float
    tv_w: float
    tv_hours: float
    heater_w: float
    bath_every_days: int
    laundry_per_week: float
    outing_chance: float
    vitals_per_day: int
    heart_rate: float
    spo2: float
    systolic: float
    diastolic: float
    body_temp: float

    def fridge_on(self, ts: float) -> bool:
        """Whether the fridge compressor runs at `ts` (a fixed cycle, a pure function of time)."""
        return (ts + self.fridge_phase_s) % self.fridge_period_s < (
            self.fridge_duty * self.fridge_period_s
        )


def draw_profile(seed: int, household_id: str) -> Profile:
    """The household's habits, drawn from its seed."""
    r = _rng(seed, household_id, "profile")
    return Profile(
        wake_min=_clamp(r.gauss(6.4 * 60, 35), 5 * 60, 8 * 60),
        sleep_min=_clamp(r.gauss(21.5 * 60, 40), 20 * 60, 23 * 60),
        day_sd_min=r.uniform(12, 25),
        night_visits_mean=r.uniform(0.6, 1.8),
        flush_l=r.uniform(4.5, 9.0),
        base_w=r.uniform(8, 30),
        fridge_w=r.uniform(70, 130),
        fridge_period_s=r.uniform(40, 70) * MINUTE,
        fridge_duty=r.uniform(0.3, 0.45),
        fridge_phase_s=r.uniform(0, 4000),
        kettle_w=r.uniform(1500, 2000),
        hob_w=r.uniform(1000, 2000),
        tv_w=r.uniform(50, 120),
        tv_hours=r.uniform(1.5, 4.0),
        heater_w=r.uniform(1800, 3000),
        bath_every_days=r.randint(2, 4),
        laundry_per_week=r.uniform(1, 2.5),
        outing_chance=r.uniform(0.2, 0.6),
        vitals_per_day=r.randint(1, 3),
        heart_rate=r.uniform(62, 82),
        spo2=r.uniform(95, 98),
        systolic=r.uniform(118, 148),
        diastolic=r.uniform(68, 88),
        body_temp=r.uniform(36.3, 36.8),
    )


@dataclass(frozen=True, slots=True)
class WaterUse:
    start: float
    duration_s: float
    litres: float


@dataclass(frozen=True, slots=True)
class Load:
    start: float
    end: float
    watts: float


@dataclass(slots=True)
class DayPlan:
    """What the elder does on one day (local midnight to midnight); built by `plan_day`."""

    wake: float
    sleep: float
    water: list[WaterUse] = field(default_factory=list)
    loads: list[Load] = field(default_factory=list)
    bathroom: list[tuple[float, float]] = field(default_factory=list)
    """Times in the bathroom, where the fall radar sees the elder."""
    door: list[float] = field(default_factory=list)
    """Times the front door is opened (it closes again half a minute later)."""
    vitals: list[tuple[float, tuple[tuple[str, float], ...]]] = field(default_factory=list)


def wake_and_sleep(
    profile: Profile, seed: int, household_id: str, midnight: float
) -> tuple[float, float]:
    """The day's wake and bed times: the usual ones with day-to-day variation."""
    r = _rng(seed, household_id, "clock", int(midnight))
    sd = profile.day_sd_min * MINUTE
    wake = midnight + profile.wake_min * MINUTE + _clamp(r.gauss(0, sd), -3 * sd, 3 * sd)
    sleep = midnight + profile.sleep_min * MINUTE + _clamp(r.gauss(0, sd), -3 * sd, 3 * sd)
    return round(wake), round(sleep)


def normal_vitals(profile: Profile, r: random.Random) -> tuple[tuple[str, float], ...]:
    """One ordinary reading of the elder's health monitor."""
    return (
        ("heart_rate_bpm", round(r.gauss(profile.heart_rate, 4))),
        ("spo2_pct", round(_clamp(r.gauss(profile.spo2, 0.8), 92, 100))),
        ("bp_systolic_mmhg", round(r.gauss(profile.systolic, 6))),
        ("bp_diastolic_mmhg", round(r.gauss(profile.diastolic, 4))),
        ("body_temp_c", round(r.gauss(profile.body_temp, 0.15), 1)),
    )


def plan_day(
    profile: Profile, seed: int, household_id: str, midnight: float, *, wake_delay_s: float = 0
) -> DayPlan:
    """The day's activities; `wake_delay_s` makes a late morning (everything after waking moves)."""
    r = _rng(seed, household_id, "day", int(midnight))
    usual_wake, sleep = wake_and_sleep(profile, seed, household_id, midnight)
    wake = usual_wake + round(wake_delay_s)
    plan = DayPlan(wake=wake, sleep=sleep)

    def at(t: float) -> float:
        return float(round(t))

    def toilet(t: float, wash_l: float = 1.0) -> None:
        plan.bathroom.append((at(t), at(t + r.uniform(3, 8) * MINUTE)))
        plan.water.append(WaterUse(at(t + 2 * MINUTE), 40, profile.flush_l))
        plan.water.append(WaterUse(at(t + 3 * MINUTE), 45, wash_l))

    def meal(t: float, cook_min: tuple[float, float], prep_l: float, dishes_l: float) -> None:
        plan.water.append(WaterUse(at(t), 120, prep_l))
        cook = r.uniform(*cook_min) * MINUTE
        plan.loads.append(Load(at(t + 3 * MINUTE), at(t + 3 * MINUTE + cook), profile.hob_w))
        done = t + 3 * MINUTE + cook + r.uniform(15, 30) * MINUTE
        plan.water.append(WaterUse(at(done), 300, dishes_l))

    def kettle(t: float) -> None:
        plan.water.append(WaterUse(at(t), 30, r.uniform(1.0, 1.8)))
        plan.loads.append(
            Load(at(t + MINUTE), at(t + MINUTE + r.uniform(3, 5) * MINUTE), profile.kettle_w)
        )

    # Up at night before waking: 1-4 am, each a flush and a hand wash.
    for _ in range(_poisson(r, profile.night_visits_mean)):
        t = midnight + r.uniform(0.75 * HOUR, max(0.75 * HOUR, usual_wake - midnight - 45 * MINUTE))
        toilet(t, wash_l=0.5)
    # The morning: toilet and washing, the kettle, breakfast, the blood pressure cuff.
    toilet(wake + r.uniform(2, 10) * MINUTE, wash_l=r.uniform(3, 6))
    kettle(wake + r.uniform(15, 30) * MINUTE)
    meal(wake + r.uniform(35, 60) * MINUTE, (8, 15), r.uniform(2, 4), r.uniform(3, 6))
    # Meals at their usual hours, unless a late morning pushed breakfast past them.
    lunch = max(midnight + r.gauss(11.6 * HOUR, 15 * MINUTE), wake + 3 * HOUR)
    meal(lunch, (20, 40), r.uniform(4, 8), r.uniform(5, 10))
    dinner = midnight + r.gauss(17.6 * HOUR, 20 * MINUTE)
    meal(dinner, (20, 35), r.uniform(4, 8), r.uniform(5, 10))
    if r.random() < 0.6:
        kettle(midnight + r.uniform(14.5, 16.5) * HOUR)
    # Toilet visits through the day.
    for _ in range(r.randint(3, 6)):
        toilet(r.uniform(wake + 2 * HOUR, sleep - 45 * MINUTE))
    # Laundry some mornings (washing machine), a bath some evenings (electric water heater).
    if r.random() < profile.laundry_per_week / 7:
        t = wake + r.uniform(2, 3) * HOUR
        plan.water.append(WaterUse(at(t), 40 * MINUTE, r.uniform(40, 70)))
        plan.loads.append(Load(at(t), at(t + 45 * MINUTE), r.uniform(300, 500)))
    if int(midnight // DAY) % profile.bath_every_days == 0:
        t = sleep - r.uniform(70, 100) * MINUTE
        plan.loads.append(Load(at(t - 30 * MINUTE), at(t + 10 * MINUTE), profile.heater_w))
        plan.water.append(WaterUse(at(t), 12 * MINUTE, r.uniform(30, 55)))
        plan.bathroom.append((at(t - MINUTE), at(t + 20 * MINUTE)))
    # Evening: lights, television, washing feet, a last visit to the toilet.
    plan.loads.append(Load(at(midnight + 18.5 * HOUR), at(sleep), r.uniform(15, 40)))
    tv_start = max(dinner + 50 * MINUTE, sleep - profile.tv_hours * HOUR)
    plan.loads.append(Load(at(tv_start), at(sleep - 15 * MINUTE), profile.tv_w))
    plan.water.append(WaterUse(at(sleep - 25 * MINUTE), 180, r.uniform(4, 8)))
    toilet(sleep - 10 * MINUTE)
    # Vitals after breakfast; in the evening and at noon for those told to measure more often.
    times = [wake + r.uniform(60, 90) * MINUTE, sleep - 60 * MINUTE, lunch - 30 * MINUTE]
    for t in times[: profile.vitals_per_day]:
        plan.vitals.append((at(t), normal_vitals(profile, r)))
    # A walk or the market some mornings: the door, and nothing else while out.
    if r.random() < profile.outing_chance:
        leave = wake + r.uniform(2, 3.5) * HOUR
        back = leave + r.uniform(40, 100) * MINUTE
        plan.door += [at(leave), at(back)]
        _drop_between(plan, leave, back)
    plan.water.sort(key=lambda w: w.start)
    plan.loads.sort(key=lambda x: x.start)
    plan.bathroom.sort()
    return plan


def _drop_between(plan: DayPlan, start: float, end: float) -> None:
    """Remove what the elder would have done at home while out (the door stays)."""
    plan.water = [w for w in plan.water if not start <= w.start < end]
    plan.loads = [x for x in plan.loads if x.end <= start or x.start >= end]
    plan.bathroom = [b for b in plan.bathroom if b[1] <= start or b[0] >= end]
    plan.vitals = [v for v in plan.vitals if not start <= v[0] < end]


def _poisson(r: random.Random, mean: float) -> int:
    # Knuth's method: fine for the small means of night visits.
    limit, k, p = pow(2.718281828459045, -mean), 0, 1.0
    while True:
        p *= r.random()
        if p <= limit:
            return k
        k += 1
