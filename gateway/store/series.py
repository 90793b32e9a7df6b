"""A household's charts from the `readings` table: water and energy used per bucket (from the
meters' cumulative totals), mean power per bucket, and vitals as taken.

Buckets are UTC-aligned instants (the browser shows them in local time); every bucket of the
range is present, None where nothing was measured, so a chart shows gaps honestly.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.models import Metric
from gateway.store.tables import device_state, readings

SeriesRange = Literal["24h", "7d"]
RANGES: dict[SeriesRange, tuple[timedelta, int]] = {
    "24h": (timedelta(hours=24), 15 * 60),
    "7d": (timedelta(days=7), 60 * 60),
}
"""Each range's span and bucket width in seconds."""
CUMULATIVE: tuple[Metric, ...] = (Metric.WATER_TOTAL_L, Metric.ENERGY_TOTAL_KWH)
VITALS: tuple[Metric, ...] = (
    Metric.HEART_RATE_BPM,
    Metric.SPO2_PCT,
    Metric.BP_SYSTOLIC_MMHG,
    Metric.BP_DIASTOLIC_MMHG,
    Metric.BODY_TEMP_C,
)
MAX_VITALS = 2000
"""Readings returned per vital sign at most (the latest)."""

Point = tuple[datetime, float | None]
Reading = tuple[str, float, datetime]
"""(device id, value, ts) of one reading."""


@dataclass(frozen=True, slots=True)
class Window:
    """The range's buckets: [start, end), `bucket_s` seconds each, the last holding now."""

    start: datetime
    end: datetime
    bucket_s: int

    @classmethod
    def ending_at(cls, now: datetime, span: timedelta, bucket_s: int) -> Window:
        epoch = int(now.timestamp())
        end = datetime.fromtimestamp((epoch // bucket_s + 1) * bucket_s, UTC)
        return cls(end - span, end, bucket_s)

    @property
    def size(self) -> int:
        return int((self.end - self.start).total_seconds()) // self.bucket_s

    def index(self, ts: datetime) -> int:
        return int((ts - self.start).total_seconds()) // self.bucket_s

    def points(self, values: list[float | None], digits: int) -> list[Point]:
        step = timedelta(seconds=self.bucket_s)
        return [
            (self.start + k * step, None if v is None else round(v, digits))
            for k, v in enumerate(values)
        ]


def usage_per_bucket(
    window: Window, rows: Iterable[Reading], before: Mapping[str, float]
) -> list[float | None]:
    """Per bucket, the sum of each device's increases between consecutive readings, counted
    in the bucket of the later one. A decrease (a meter reset or replaced) counts nothing.
    `rows` are in time order per device; `before`: each device's last total before the range."""
    used: list[float | None] = [None] * window.size
    last = dict(before)
    for device, value, ts in rows:
        previous = last.get(device)
        last[device] = value
        if previous is None:
            continue
        k = window.index(ts)
        used[k] = (used[k] or 0.0) + max(value - previous, 0.0)
    return used


def mean_per_bucket(window: Window, rows: Iterable[Reading]) -> list[float | None]:
    """Per bucket, the mean of the values reported in it (every device together)."""
    sums = [0.0] * window.size
    counts = [0] * window.size
    for _, value, ts in rows:
        k = window.index(ts)
        sums[k] += value
        counts[k] += 1
    return [s / n if n else None for s, n in zip(sums, counts, strict=True)]


@dataclass(frozen=True, slots=True)
class HouseholdSeries:
    window: Window
    water_l: list[Point]
    energy_kwh: list[Point]
    power_w: list[Point]
    vitals: dict[str, list[tuple[datetime, float]]]


async def household_series(
    conn: AsyncConnection, household_id: str, window: Window
) -> HouseholdSeries:
    """The household's charts over `window`, from its stored readings."""
    in_window = sa.and_(
        readings.c.household_id == household_id,
        readings.c.ts >= window.start,
        readings.c.ts < window.end,
        readings.c.value_num.is_not(None),
    )
    by_metric: dict[str, list[Reading]] = defaultdict(list)
    rows = await conn.execute(
        sa.select(readings.c.metric, readings.c.device_id, readings.c.value_num, readings.c.ts)
        .where(in_window, readings.c.metric.in_([*CUMULATIVE, Metric.POWER_W]))
        .order_by(readings.c.metric, readings.c.device_id, readings.c.ts)
    )
    for metric, device, value, ts in rows:
        by_metric[metric].append((device, value, ts))
    totals = await _totals_before(conn, household_id, window.start)
    vitals = {}
    for metric in VITALS:
        latest = await conn.execute(
            sa.select(readings.c.ts, readings.c.value_num)
            .where(in_window, readings.c.metric == metric.value)
            .order_by(readings.c.ts.desc())
            .limit(MAX_VITALS)
        )
        vitals[metric.value] = [(ts, value) for ts, value in reversed(latest.all())]
    water, energy = (
        usage_per_bucket(window, by_metric[m.value], totals.get(m.value, {})) for m in CUMULATIVE
    )
    return HouseholdSeries(
        window=window,
        water_l=window.points(water, 3),
        energy_kwh=window.points(energy, 4),
        power_w=window.points(mean_per_bucket(window, by_metric[Metric.POWER_W.value]), 1),
        vitals=vitals,
    )


async def _totals_before(
    conn: AsyncConnection, household_id: str, start: datetime
) -> dict[str, dict[str, float]]:
    """Each meter's last total before `start`, per metric and device: the first reading of
    the range counts from it. One indexed look-up per meter (a home has one or two)."""
    meters = await conn.execute(
        sa.select(device_state.c.metric, device_state.c.device_id).where(
            device_state.c.household_id == household_id,
            device_state.c.metric.in_(CUMULATIVE),
        )
    )
    found: dict[str, dict[str, float]] = defaultdict(dict)
    for metric, device in meters.all():
        value = await conn.scalar(
            sa.select(readings.c.value_num)
            .where(
                readings.c.household_id == household_id,
                readings.c.device_id == device,
                readings.c.metric == metric,
                readings.c.ts < start,
                readings.c.value_num.is_not(None),
            )
            .order_by(readings.c.ts.desc())
            .limit(1)
        )
        if value is not None:
            found[metric][device] = value
    return found
