"""The generated routines have the statistics they claim, read back through the normalisers."""

from __future__ import annotations

import itertools
import statistics
from collections import defaultdict

from gateway.models import Metric
from simulators import Neighbourhood, Role
from simulators.household import local_midnight
from simulators.routine import DAY, HOUR, MINUTE
from tests.unit.simulators.runs import QUIET_DAYS, readings, role_stream


def _uses(totals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """(time, litres) of every report that shows water used since the one before."""
    return [(t, v - pv) for (_, pv), (t, v) in itertools.pairwise(totals) if v > pv]


def test_first_water_use_of_the_day_is_near_the_wake_time(
    quiet_week: Neighbourhood, water_totals: dict[str, list[tuple[float, float]]]
):
    near = days = 0
    for hid in quiet_week.household_ids:
        wake_s = quiet_week.spec(hid).profile.wake_min * MINUTE
        uses = _uses(water_totals[hid])
        for day in range(QUIET_DAYS):
            usual = quiet_week.start_ts + day * DAY + wake_s
            first = next((t for t, _ in uses if t >= usual - 90 * MINUTE), None)
            days += 1
            near += first is not None and first <= usual + 90 * MINUTE
    assert near / days >= 0.9, f"{near} of {days} days"


def test_daily_water_use_is_what_one_elderly_person_uses(
    quiet_week: Neighbourhood, water_totals: dict[str, list[tuple[float, float]]]
):
    daily: list[float] = []
    for hid in quiet_week.household_ids:
        per_day: dict[float, float] = defaultdict(float)
        for t, litres in _uses(water_totals[hid]):
            per_day[local_midnight(t - 1)] += litres  # a report at midnight closes the day
        daily += per_day.values()
    assert 50 <= statistics.median(daily) <= 250
    assert sum(30 <= d <= 350 for d in daily) / len(daily) >= 0.9


def test_the_elder_gets_up_at_night(
    quiet_week: Neighbourhood, water_totals: dict[str, list[tuple[float, float]]]
):
    nights_with_visit = nights = 0
    for hid in quiet_week.household_ids:
        wake_s = quiet_week.spec(hid).profile.wake_min * MINUTE
        uses = _uses(water_totals[hid])
        for day in range(QUIET_DAYS):
            midnight = quiet_week.start_ts + day * DAY
            night = (midnight + HOUR, midnight + wake_s - 90 * MINUTE)
            nights += 1
            nights_with_visit += any(night[0] <= t < night[1] for t, _ in uses)
    assert 0.3 <= nights_with_visit / nights <= 0.95


def test_the_fridge_cycles_in_the_power_readings_at_night(quiet_week: Neighbourhood):
    for hid in quiet_week.household_ids[:5]:
        profile = quiet_week.spec(hid).profile
        stream = role_stream(quiet_week, hid, {Role.POWER})
        night = [
            float(r.value)
            for r in readings(m for m in stream if m.ts < quiet_week.start_ts + DAY)
            if r.metric is Metric.POWER_W
            and quiet_week.start_ts + HOUR <= r.ts.timestamp() < quiet_week.start_ts + 4 * HOUR
        ]
        standby, running = profile.base_w, profile.base_w + profile.fridge_w
        assert all(min(abs(w - standby), abs(w - running)) < 1.5 for w in night)
        switches = sum(
            (a - standby < 1.5) != (b - standby < 1.5) for a, b in itertools.pairwise(night)
        )
        assert switches >= 4, f"{hid}: the compressor switched {switches} times in 3 h"


def test_daily_energy_is_plausible(quiet_week: Neighbourhood):
    for hid in quiet_week.household_ids[:3]:
        energy = [
            float(r.value)
            for r in readings(role_stream(quiet_week, hid, {Role.POWER}))
            if r.metric is Metric.ENERGY_TOTAL_KWH
        ]
        per_day = (energy[-1] - energy[0]) / QUIET_DAYS
        assert 1.0 <= per_day <= 8.0, f"{hid}: {per_day:.2f} kWh a day"


def test_vitals_are_read_a_few_times_a_day_within_normal_limits(quiet_week: Neighbourhood):
    for hid in quiet_week.household_ids:
        if quiet_week.spec(hid).device(Role.HEALTH) is None:
            continue
        got = readings(role_stream(quiet_week, hid, {Role.HEALTH}))
        heart = [float(r.value) for r in got if r.metric is Metric.HEART_RATE_BPM]
        assert QUIET_DAYS <= len(heart) <= 3 * QUIET_DAYS
        assert all(45 <= h <= 110 for h in heart)
        assert all(float(r.value) >= 90 for r in got if r.metric is Metric.SPO2_PCT)
