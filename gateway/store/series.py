"""A household's charts from the `readings` table: water and energy used per bucket (from the
meters' cumulative totals), mean power per bucket, and vitals as taken.

Buckets are UTC-aligned instants (the browser shows them in local time); every bucket of the
range is present, None where nothing was measured, so a chart shows gaps honestly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

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


@dataclass(frozen=True, slots=True)
class HouseholdSeries:
    window: Window
    water_l: list[Point]
    energy_kwh: list[Point]
    power_w: list[Point]
    vitals: dict[str, list[tuple[datetime, float]]]


def _bucket(conn: AsyncConnection, window: Window) -> sa.ColumnElement[int]:
    """The bucket (0, 1, …) a reading's ts falls in, computed by the database."""
    if conn.dialect.name == "sqlite":
        # Stored as "YYYY-MM-DD HH:MM:SS.ffffff" in UTC; strftime('%s') is whole epoch seconds.
        seconds = sa.cast(sa.func.strftime("%s", readings.c.ts), sa.Integer)
    else:
        seconds = sa.cast(sa.func.floor(sa.extract("epoch", readings.c.ts)), sa.BigInteger)
    return (seconds - int(window.start.timestamp())) // window.bucket_s


async def household_series(
    conn: AsyncConnection, household_id: str, window: Window
) -> HouseholdSeries:
    """The household's charts over `window`, from its stored readings, bucketed by the
    database (a week of minute readings is some 30,000 rows)."""
    reporting = await _devices_by_metric(conn, household_id)

    def of(metric: Metric) -> sa.ColumnElement[bool]:
        # With the device named, each query reads its own range of uq_readings_key
        # (household, device, metric, ts), not every reading of the household's week.
        return sa.and_(
            readings.c.household_id == household_id,
            readings.c.device_id.in_(reporting.get(metric.value, [])),
            readings.c.metric == metric.value,
            readings.c.ts >= window.start,
            readings.c.ts < window.end,
            readings.c.value_num.is_not(None),
        )

    bucket = _bucket(conn, window).label("bucket")
    power = await conn.execute(
        sa.select(bucket, sa.func.avg(readings.c.value_num))
        .where(of(Metric.POWER_W))
        .group_by(bucket)
    )
    water, energy = [
        await _usage(
            conn,
            window,
            of(metric),
            await _first_steps(conn, household_id, window, metric, reporting.get(metric.value, [])),
        )
        for metric in CUMULATIVE
    ]
    vitals: dict[str, list[tuple[datetime, float]]] = {}
    for metric in VITALS:
        vitals[metric.value] = []
        if metric.value not in reporting:
            continue
        latest = await conn.execute(
            sa.select(readings.c.ts, readings.c.value_num)
            .where(of(metric))
            .order_by(readings.c.ts.desc())
            .limit(MAX_VITALS)
        )
        vitals[metric.value] = [(ts, value) for ts, value in reversed(latest.all())]
    return HouseholdSeries(
        window=window,
        water_l=window.points(water, 3),
        energy_kwh=window.points(energy, 4),
        power_w=window.points(_per_bucket(window, power), 1),
        vitals=vitals,
    )


async def _devices_by_metric(conn: AsyncConnection, household_id: str) -> dict[str, list[str]]:
    """The household's devices that have reported each metric (ingest keeps `device_state`
    in the transaction that stores the readings)."""
    rows = await conn.execute(
        sa.select(device_state.c.metric, device_state.c.device_id).where(
            device_state.c.household_id == household_id,
            device_state.c.metric.in_([*CUMULATIVE, Metric.POWER_W, *VITALS]),
        )
    )
    found: dict[str, list[str]] = {}
    for metric, device in rows:
        found.setdefault(metric, []).append(device)
    return found


def _per_bucket(window: Window, rows: Iterable[Any]) -> list[float | None]:
    """(bucket, value) rows as a value per bucket of the window, None where none came."""
    values: list[float | None] = [None] * window.size
    for k, value in rows:
        if 0 <= k < window.size:
            values[k] = float(value)
    return values


async def _usage(
    conn: AsyncConnection,
    window: Window,
    in_window: sa.ColumnElement[bool],
    first_steps: Iterable[tuple[float, float, datetime]],
) -> list[float | None]:
    """Per bucket, the sum of each meter's increases between consecutive readings, counted in
    the bucket of the later one. A decrease (the meter reset or replaced) counts nothing."""
    previous = sa.func.lag(readings.c.value_num).over(
        partition_by=readings.c.device_id, order_by=readings.c.ts
    )
    steps = (
        sa.select(
            _bucket(conn, window).label("bucket"),
            readings.c.value_num.label("value"),
            previous.label("previous"),
        )
        .where(in_window)
        .subquery("steps")
    )
    rise = steps.c.value - steps.c.previous
    rows = await conn.execute(
        sa.select(steps.c.bucket, sa.func.sum(sa.case((rise > 0, rise), else_=0.0)))
        .where(steps.c.previous.is_not(None))
        .group_by(steps.c.bucket)
    )
    used = _per_bucket(window, rows)
    # Each meter's first reading of the range counts from its last one before the range.
    for before, first, at in first_steps:
        k = window.index(at)
        used[k] = (used[k] or 0.0) + max(first - before, 0.0)
    return used


async def _first_steps(
    conn: AsyncConnection, household_id: str, window: Window, metric: Metric, meters: list[str]
) -> list[tuple[float, float, datetime]]:
    """Per meter: its last total before the range, and its first reading in it (value, ts).
    Two indexed look-ups per meter (a home has one or two)."""
    found = []
    for device in meters:
        of_meter = sa.and_(
            readings.c.household_id == household_id,
            readings.c.device_id == device,
            readings.c.metric == metric.value,
            readings.c.value_num.is_not(None),
        )
        before = await conn.scalar(
            sa.select(readings.c.value_num)
            .where(of_meter, readings.c.ts < window.start)
            .order_by(readings.c.ts.desc())
            .limit(1)
        )
        first = (
            await conn.execute(
                sa.select(readings.c.value_num, readings.c.ts)
                .where(of_meter, readings.c.ts >= window.start, readings.c.ts < window.end)
                .order_by(readings.c.ts)
                .limit(1)
            )
        ).first()
        if before is not None and first is not None:
            found.append((before, first.value_num, first.ts))
    return found
