"""The store on SQLite and PostgreSQL: migrations, idempotent writes, one active alert."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.models import DeviceKind, Metric, Reading
from gateway.store import care_tables  # noqa: F401  (its tables join the metadata)
from gateway.store.database import create_engine, upgrade
from gateway.store.readings import device_states, insert_readings, update_device_state
from gateway.store.tables import alerts, metadata, readings

T0 = datetime(2026, 11, 29, 5, 0, tzinfo=UTC)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(database_url)
    yield eng
    await eng.dispose()


def reading(metric: Metric, value: float | bool | str, ts: datetime) -> Reading:
    return Reading("H001", "dev-1", DeviceKind.POWER_METER, metric, value, None, ts)


async def test_migrations_match_the_tables_and_run_twice(empty_database_url: str):
    engine = create_engine(empty_database_url)
    try:
        await upgrade(engine)
        await upgrade(engine)  # idempotent: every start runs it

        def diff(conn: sa.Connection) -> list[object]:
            return list(compare_metadata(MigrationContext.configure(conn), metadata))

        async with engine.connect() as conn:
            assert await conn.run_sync(diff) == []
    finally:
        await engine.dispose()


async def test_redelivered_readings_are_ignored(engine: AsyncEngine):
    batch = [reading(Metric.POWER_W, 10.0, T0), reading(Metric.SMOKE, True, T0)]
    async with engine.begin() as conn:
        first = await insert_readings(conn, batch, T0)
    async with engine.begin() as conn:
        second = await insert_readings(
            conn, [*batch, reading(Metric.POWER_W, 11.0, T0 + timedelta(seconds=1))], T0
        )
        count = await conn.scalar(sa.text("SELECT count(*) FROM readings"))
    assert len(first) == 2
    assert len(second) == 1
    assert count == 3


async def test_device_state_keeps_the_newest_value(engine: AsyncEngine):
    async with engine.begin() as conn:
        await update_device_state(
            conn, [reading(Metric.POWER_W, 20.0, T0 + timedelta(minutes=5))], T0
        )
        # An older reading arriving late must not overwrite the newer state.
        await update_device_state(conn, [reading(Metric.POWER_W, 10.0, T0)], T0)
        await update_device_state(conn, [reading(Metric.SMOKE, True, T0)], T0)
        states = {s.metric: s.value for s in await device_states(conn, "H001")}
    assert states == {Metric.POWER_W: 20.0, Metric.SMOKE: True}


# What devices measure, as the normalisers keep it: a Shelly total of 913.252 Wh, a Zigbee
# battery in half percents, 123.529 m³ in litres, a quarter watt-hour, the most digits a float has.
PRECISE = {
    Metric.ENERGY_TOTAL_KWH: 0.913252,
    Metric.BATTERY_PCT: 51.5,
    Metric.WATER_TOTAL_L: 123529.0,
    Metric.POWER_W: 0.00025,
    Metric.BODY_TEMP_C: 36.666666666666664,
}


async def test_values_keep_every_digit_through_the_database(engine: AsyncEngine):
    batch = [reading(metric, value, T0) for metric, value in PRECISE.items()]
    async with engine.begin() as conn:
        await insert_readings(conn, batch, T0)
        await update_device_state(conn, batch, T0)
    async with engine.connect() as conn:
        stored = await conn.execute(sa.select(readings.c.metric, readings.c.value_num))
        states = await device_states(conn, "H001")
    assert {Metric(m): v for m, v in stored} == PRECISE
    assert {s.metric: s.value for s in states} == PRECISE


async def test_only_one_active_alert_per_household_rule_device(engine: AsyncEngine):
    row = {
        "household_id": "H001",
        "device_id": "smoke-1",
        "rule_id": "smoke_alarm",
        "severity": "critical",
        "summary": "smoke",
        "evidence": {},
        "opened_at": T0,
        "last_seen_at": T0,
        "updated_at": T0,
    }
    async with engine.begin() as conn:
        await conn.execute(sa.insert(alerts).values(**row, status="resolved"))
        await conn.execute(sa.insert(alerts).values(**row, status="open"))
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(sa.insert(alerts).values(**row, status="notified"))


async def test_a_connection_the_server_closed_is_not_handed_out(postgres_url: str):
    """PostgreSQL ends a pooled connection (a restart, an administrator): the next checkout
    gets a working connection, with no error for the caller."""
    engine = create_engine(postgres_url)
    admin = create_engine(postgres_url)
    try:
        async with engine.connect() as conn:
            pid = (await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar()
            driver = (await conn.get_raw_connection()).driver_connection
        async with admin.connect() as other:
            ended = sa.text("SELECT pg_terminate_backend(:pid)")
            assert (await other.execute(ended, {"pid": pid})).scalar() is True
        for _ in range(100):  # until the driver has heard the server close it
            if driver.is_closed():
                break
            await asyncio.sleep(0.02)
        assert driver.is_closed()
        async with engine.connect() as conn:
            now = (await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar()
        assert now != pid
    finally:
        await engine.dispose()
        await admin.dispose()
