"""Consumption from cumulative meters (water litres, energy kWh), robust to meter trouble.

A meter's total only grows. When it does not, or jumps further than the supply could deliver in
the time since the last reading, the meter was reset, rolled over or replaced: a rollover is
counted across the wrap, the others start a new baseline and count no use at all, so no rule
ever sees a spike or a negative use.

Totals keep every digit the meter sent, and use is their difference in decimal: a Shelly counter
moving from 913.252 to 913.502 Wh is 0.00025 kWh of use, not 0.0002500000000000835, and a total
sent twice is exactly no use (float noise never shows as a trickle of use).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from gateway.models import Metric

# The most a household supply can deliver per hour: 200 l/min of water, 50 kW of power.
MAX_PER_HOUR: dict[Metric, float] = {
    Metric.WATER_TOTAL_L: 12_000.0,
    Metric.ENERGY_TOTAL_KWH: 50.0,
}
# Readings close together still allow this much, for meters that report in coarse steps.
MIN_ALLOWANCE: dict[Metric, float] = {
    Metric.WATER_TOTAL_L: 100.0,
    Metric.ENERGY_TOTAL_KWH: 1.0,
}
# A total this close below a power of ten may wrap to zero there.
ROLLOVER_MARGIN = 0.9


@dataclass(frozen=True, slots=True)
class CounterSample:
    total: float
    ts: datetime


@dataclass(frozen=True, slots=True)
class Consumption:
    """Use between two readings of a cumulative meter."""

    metric: Metric
    amount: float
    since: datetime
    until: datetime


def consumption(
    metric: Metric, previous: CounterSample | None, new: CounterSample
) -> Consumption | None:
    """The use between `previous` and `new`, or None when there is no trustworthy answer."""
    if previous is None or new.ts <= previous.ts:
        return None
    hours = (new.ts - previous.ts).total_seconds() / 3600
    ceiling = max(MAX_PER_HOUR[metric] * hours, MIN_ALLOWANCE[metric])
    delta: float | None = float(_decimal(new.total) - _decimal(previous.total))
    if delta is not None and delta < 0:
        delta = _across_rollover(previous.total, new.total)
    if delta is None or delta > ceiling:
        return None  # reset, replacement or a garbled total: start again from here
    return Consumption(metric, delta, previous.ts, new.ts)


def _across_rollover(previous: float, new: float) -> float | None:
    if previous <= 0:
        return None
    wrap = 10.0 ** math.ceil(math.log10(previous + 1))
    if previous < ROLLOVER_MARGIN * wrap:
        return None
    return float(_decimal(wrap) - _decimal(previous) + _decimal(new))


def _decimal(total: float) -> Decimal:
    """The total as the meter printed it (the float's shortest form), for exact differences."""
    return Decimal(repr(total))


def is_counter(metric: Metric) -> bool:
    return metric in MAX_PER_HOUR


@dataclass(frozen=True, slots=True)
class UseRun:
    """An unbroken run of use on one meter: every interval from `since` to `until` had some."""

    since: datetime
    until: datetime
    amount: float
    longest: timedelta
    """The longest interval between two readings in the run: how closely it was watched."""

    @property
    def duration(self) -> timedelta:
        return self.until - self.since


def continue_run(run: UseRun | None, used: Consumption) -> UseRun | None:
    """The run after this interval: extended, started afresh, or ended by an interval of no use."""
    if used.amount <= 0:
        return None
    interval = used.until - used.since
    if run is None or run.until != used.since:
        return UseRun(used.since, used.until, used.amount, interval)
    return UseRun(run.since, used.until, run.amount + used.amount, max(run.longest, interval))
