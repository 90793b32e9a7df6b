"""The ingest's plain-SQL writes (gateway/store/bulk.py) store exactly what the SQLAlchemy Core
statements they replaced stored, on SQLite and PostgreSQL.

The same batches go to household "core" through the Core statements (kept here as the
reference) and to household "bulk" through the bulk writes; then every column of both
households' rows must be equal, as the database holds them (raw text times on SQLite).
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.care.households import HouseholdIn, create_household
from gateway.store.bulk import (
    SQLITE_ROWS,
    ReadingRow,
    SeenRow,
    StateRow,
    insert_reading_rows,
    touch_device_rows,
    upsert_state_rows,
)
from gateway.store.database import create_engine
from gateway.store.dialect import upsert
from gateway.store.tables import device_state, devices, readings

T0 = datetime(2026, 11, 29, 5, 0, 0, 123456, tzinfo=UTC)
BEIJING = timezone(timedelta(hours=8))


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(database_url)
    try:
        async with eng.begin() as conn:
            for household_id in ("core", "bulk"):
                body = HouseholdIn.model_validate({"id": household_id, "elder": {"name": "x"}})
                await create_household(conn, body, T0)
                for device in ("d1", "d2", "d3"):
                    await conn.execute(
                        devices.insert().values(household_id=household_id, device_id=device)
                    )
        yield eng
    finally:
        await eng.dispose()


# --- the reference: the SQLAlchemy Core statements the bulk writes replaced -------------------


async def core_insert(
    conn: AsyncConnection, rows: Sequence[ReadingRow], received_at: datetime
) -> set[tuple[str, str, str, datetime]]:
    if not rows:
        return set()
    columns = ("household_id", "device_id", "metric", "value_num", "value_text", "unit", "ts")
    params = [
        {**dict(zip(columns, row[:7], strict=True)), "received_at": received_at, "retained": row[7]}
        for row in rows
    ]
    stmt = (
        upsert(conn, readings)
        .on_conflict_do_nothing(index_elements=["household_id", "device_id", "metric", "ts"])
        .returning(readings.c.household_id, readings.c.device_id, readings.c.metric, readings.c.ts)
    )
    return {(h, d, m, ts) for h, d, m, ts in await conn.execute(stmt, params)}


async def core_state(
    conn: AsyncConnection, rows: Sequence[StateRow], received_at: datetime
) -> None:
    columns = ("household_id", "device_id", "metric", "value_num", "value_text", "ts")
    params = [{**dict(zip(columns, r, strict=True)), "received_at": received_at} for r in rows]
    stmt = upsert(conn, device_state)
    stmt = stmt.on_conflict_do_update(
        index_elements=["household_id", "device_id", "metric"],
        set_={
            "value_num": stmt.excluded.value_num,
            "value_text": stmt.excluded.value_text,
            "ts": stmt.excluded.ts,
            "received_at": stmt.excluded.received_at,
        },
        where=stmt.excluded.ts >= device_state.c.ts,
    )
    await conn.execute(stmt, params)


async def core_touch(conn: AsyncConnection, rows: Sequence[SeenRow]) -> None:
    ts = sa.bindparam("seen_ts", type_=devices.c.last_seen.type)
    stmt = (
        sa.update(devices)
        .where(
            devices.c.household_id == sa.bindparam("seen_household"),
            devices.c.device_id == sa.bindparam("seen_device"),
        )
        .values(
            first_seen=sa.func.coalesce(devices.c.first_seen, ts),
            last_seen=sa.case(
                (devices.c.last_seen.is_(None), ts),
                (devices.c.last_seen < ts, ts),
                else_=devices.c.last_seen,
            ),
        )
    )
    params = [{"seen_household": h, "seen_device": d, "seen_ts": when} for h, d, when in rows]
    await conn.execute(stmt, params)


# --- what the database holds, per household ---------------------------------------------------


async def held(conn: AsyncConnection, table: str, household_id: str) -> list[tuple[object, ...]]:
    """Every column but the id and the household, as the driver returns them (raw text on
    SQLite), in key order."""
    columns = {
        "readings": "device_id, metric, value_num, value_text, unit, ts, received_at, retained",
        "device_state": "device_id, metric, value_num, value_text, ts, received_at",
        "devices": "device_id, first_seen, last_seen",
    }[table]
    result = await conn.exec_driver_sql(
        f"SELECT {columns} FROM {table} WHERE household_id = '{household_id}' ORDER BY 1, 2",
    )
    return [tuple(row) for row in result]


def for_household(household_id: str, rows: Sequence[tuple[object, ...]]) -> list[object]:
    return [(household_id, *row[1:]) for row in rows]


def batches(seed: int) -> list[list[ReadingRow]]:
    """Batches with what ingest meets: repeats within a batch and of stored rows, text and
    boolean values, no unit, times in other zones and with microseconds, retained copies, and
    one batch larger than a SQLite statement takes."""
    rng = random.Random(seed)
    out = []
    for size in (1, 7, 40, SQLITE_ROWS + 250):
        batch: list[ReadingRow] = []
        for _ in range(size):
            device = rng.choice(("d1", "d2", "d3"))
            at = T0 + timedelta(
                seconds=rng.randrange(3 * SQLITE_ROWS), microseconds=rng.randrange(9)
            )
            if rng.random() < 0.2:
                at = at.astimezone(BEIJING)
            kind = rng.randrange(3)
            if kind == 0:
                row: ReadingRow = ("x", device, "power_w", rng.random() * 1e3, None, "W", at, False)
            elif kind == 1:
                row = ("x", device, "smoke", float(rng.random() < 0.5), None, None, at, False)
            else:
                row = ("x", device, "button", None, rng.choice(("sos", "cancel")), None, at, True)
            batch.append(row)
        if out:  # a repeat of a stored reading, and one within the batch
            batch += [out[-1][0], batch[0]]
        out.append(batch)
    return out


async def test_readings_are_stored_as_before_and_the_new_ones_named(engine: AsyncEngine):
    for number, batch in enumerate(batches(seed=1)):
        received_at = T0 + timedelta(minutes=number)
        async with engine.begin() as conn:
            before = await core_insert(conn, for_household("core", batch), received_at)
            after = await insert_reading_rows(conn, for_household("bulk", batch), received_at)
        assert {k[1:] for k in after} == {k[1:] for k in before}
        assert all(ts.tzinfo is not None for *_, ts in after)
        assert len(after) < len(batch) or number == 0  # repeats were met, and not named new
    async with engine.connect() as conn:
        core, bulk = await held(conn, "readings", "core"), await held(conn, "readings", "bulk")
    assert bulk == core
    assert len(bulk) > SQLITE_ROWS


async def test_device_state_keeps_the_newest_value_as_before(engine: AsyncEngine):
    rng = random.Random(2)
    for number in range(6):
        rows: dict[tuple[str, str], StateRow] = {}
        for _ in range(20):
            device, metric = rng.choice(("d1", "d2")), rng.choice(("power_w", "button"))
            at = T0 + timedelta(seconds=rng.randrange(40))  # equal times too: the later wins
            value = (rng.random(), None) if metric == "power_w" else (None, rng.choice("ab"))
            rows[(device, metric)] = ("x", device, metric, *value, at.astimezone(BEIJING))
        received_at = T0 + timedelta(minutes=number)
        async with engine.begin() as conn:
            await core_state(conn, for_household("core", list(rows.values())), received_at)
            await upsert_state_rows(conn, for_household("bulk", list(rows.values())), received_at)
    async with engine.connect() as conn:
        core = await held(conn, "device_state", "core")
        bulk = await held(conn, "device_state", "bulk")
    assert bulk == core
    assert len(bulk) == 4


async def test_devices_first_and_last_heard_as_before(engine: AsyncEngine):
    rng = random.Random(3)
    for _ in range(8):
        rows: list[SeenRow] = [
            ("x", device, T0 + timedelta(seconds=rng.randrange(-50, 50)))
            for device in rng.sample(("d1", "d2", "d3"), 2)
        ]
        async with engine.begin() as conn:
            await core_touch(conn, for_household("core", rows))
            await touch_device_rows(conn, for_household("bulk", rows))
    async with engine.connect() as conn:
        core, bulk = await held(conn, "devices", "core"), await held(conn, "devices", "bulk")
    assert bulk == core
    assert all(first is not None and last is not None for _, first, last in bulk)
