"""The writes of every ingest batch, as plain SQL on plain tuples: one statement per batch.

SQLAlchemy's executemany builds a dict of parameters per row and runs each value through its
bind processors (`construct_params`, a datetime processor per time): in a backlog drain that was
the largest single cost of a batch, more than decoding the messages (benchmarks/README.md,
"hot path"). Here a batch's rows are tuples, and each backend gets them its own cheapest way:

- PostgreSQL (asyncpg) takes each column as one array and `unnest`s them: one statement and one
  round trip per batch, whatever its size, prepared once per connection.
- SQLite takes a multi-row `VALUES` with `RETURNING` (up to `SQLITE_ROWS` rows a statement), or
  an executemany of tuples, which its driver runs in C.

The tables in gateway/store/tables.py stay the schema's one description;
tests/integration/test_bulk_writes.py checks that they store exactly
what the SQLAlchemy Core statements they replace stored, on both backends.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store.tables import sqlite_text

ReadingRow = tuple[str, str, str, float | None, str | None, str | None, datetime, bool]
"""household id, device id, metric, value_num, value_text, unit, ts, retained."""
StateRow = tuple[str, str, str, float | None, str | None, datetime]
"""household id, device id, metric, value_num, value_text, ts."""
SeenRow = tuple[str, str, datetime]
"""household id, device id, when last heard."""
ReadingKey = tuple[str, str, str, datetime]
"""A reading's key in the table: household id, device id, metric, ts."""

SQLITE_ROWS = 1_000
"""Rows per multi-row statement on SQLite: 9,000 bound values, under its limit of 32,766."""


def _on_postgresql(conn: AsyncConnection) -> bool:
    return conn.dialect.name == "postgresql"


def _arrays(rows: Sequence[tuple[Any, ...]]) -> list[list[Any]]:
    """The rows' columns, each as one list: PostgreSQL's arrays for `unnest`."""
    return [list(column) for column in zip(*rows, strict=True)]


# --- readings: insert, ignoring those already stored; the keys of those that were new ---------

_READINGS_PG = """
INSERT INTO readings (household_id, device_id, metric, value_num, value_text, unit, ts,
                      received_at, retained)
SELECT h, d, m, n, t, u, ts, $8::timestamptz, r
FROM unnest($1::varchar[], $2::varchar[], $3::varchar[], $4::float8[], $5::varchar[],
            $6::varchar[], $7::timestamptz[], $9::boolean[]) AS x(h, d, m, n, t, u, ts, r)
ON CONFLICT (household_id, device_id, metric, ts) DO NOTHING
RETURNING household_id, device_id, metric, ts
"""


_READINGS_SQLITE = """
INSERT INTO readings (household_id, device_id, metric, value_num, value_text, unit, ts,
                      received_at, retained)
VALUES ?
ON CONFLICT (household_id, device_id, metric, ts) DO NOTHING
RETURNING household_id, device_id, metric, ts
"""


@lru_cache(maxsize=8)
def _readings_sqlite(rows: int) -> str:
    values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?)"] * rows)  # placeholders only
    return _READINGS_SQLITE.replace("VALUES ?", "VALUES " + values)


async def insert_reading_rows(
    conn: AsyncConnection, rows: Sequence[ReadingRow], received_at: datetime
) -> set[ReadingKey]:
    """Store these readings unless already stored; the keys (household, device, metric, ts)
    of those that were new."""
    if not rows:
        return set()
    if _on_postgresql(conn):
        *columns, retained = _arrays(rows)
        result = await conn.exec_driver_sql(_READINGS_PG, (*columns, received_at, retained))
        return set(_keys(result))
    # SQLite keeps times as text: the new rows come back with the text they were given.
    at = sqlite_text(received_at)
    by_text: dict[tuple[str, str, str, str], ReadingKey] = {}
    params: list[object] = []
    for h, d, m, n, t, u, ts, r in rows:
        text = sqlite_text(ts)
        by_text[(h, d, m, text)] = (h, d, m, ts)
        params += (h, d, m, n, t, u, text, at, r)
    new: set[ReadingKey] = set()
    width = 9
    for start in range(0, len(rows), SQLITE_ROWS):
        chunk = params[start * width : (start + SQLITE_ROWS) * width]
        result = await conn.exec_driver_sql(_readings_sqlite(len(chunk) // width), tuple(chunk))
        new.update(by_text[key] for key in _keys(result))
    return new


def _keys(result: CursorResult[Any]) -> list[Any]:
    """The (household, device, metric, ts) rows a RETURNING gave back."""
    return [tuple(row) for row in result]


# --- device state: the latest value per (household, device, metric); older never wins ---------

_STATE_PG = """
INSERT INTO device_state (household_id, device_id, metric, value_num, value_text, ts, received_at)
SELECT h, d, m, n, t, ts, $7::timestamptz
FROM unnest($1::varchar[], $2::varchar[], $3::varchar[], $4::float8[], $5::varchar[],
            $6::timestamptz[]) AS x(h, d, m, n, t, ts)
ON CONFLICT (household_id, device_id, metric) DO UPDATE SET
    value_num = excluded.value_num, value_text = excluded.value_text, ts = excluded.ts,
    received_at = excluded.received_at
WHERE excluded.ts >= device_state.ts
"""
_STATE_SQLITE = """
INSERT INTO device_state (household_id, device_id, metric, value_num, value_text, ts, received_at)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (household_id, device_id, metric) DO UPDATE SET
    value_num = excluded.value_num, value_text = excluded.value_text, ts = excluded.ts,
    received_at = excluded.received_at
WHERE excluded.ts >= device_state.ts
"""


async def upsert_state_rows(
    conn: AsyncConnection, rows: Sequence[StateRow], received_at: datetime
) -> None:
    """Keep these as the latest values unless a newer one is stored; one row per key."""
    if not rows:
        return
    rows = sorted(rows)  # one order for every writer: no deadlock between processes
    if _on_postgresql(conn):
        await conn.exec_driver_sql(_STATE_PG, (*_arrays(rows), received_at))
        return
    at = sqlite_text(received_at)
    await conn.exec_driver_sql(
        _STATE_SQLITE, [(h, d, m, n, t, sqlite_text(ts), at) for h, d, m, n, t, ts in rows]
    )


# --- devices: first and last heard; the latest time wins even when batches overlap ------------

_SEEN_PG = """
UPDATE devices AS dv
SET first_seen = coalesce(dv.first_seen, s.ts), last_seen = greatest(dv.last_seen, s.ts)
FROM unnest($1::varchar[], $2::varchar[], $3::timestamptz[]) AS s(h, d, ts)
WHERE dv.household_id = s.h AND dv.device_id = s.d
"""
_SEEN_SQLITE = (
    "UPDATE devices SET first_seen = coalesce(first_seen, ?1), "
    "last_seen = CASE WHEN last_seen IS NULL OR last_seen < ?1 THEN ?1 ELSE last_seen END "
    "WHERE household_id = ?2 AND device_id = ?3"
)


async def touch_device_rows(conn: AsyncConnection, rows: Sequence[SeenRow]) -> None:
    """Record when these devices were heard (first and last)."""
    if not rows:
        return
    rows = sorted(rows)
    if _on_postgresql(conn):
        await conn.exec_driver_sql(_SEEN_PG, tuple(_arrays(rows)))
        return
    await conn.exec_driver_sql(_SEEN_SQLITE, [(sqlite_text(ts), h, d) for h, d, ts in rows])
