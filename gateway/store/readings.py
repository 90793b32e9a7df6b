"""Readings, latest device state and device registration."""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.devices.catalogue import CATALOGUE, ValueType
from gateway.models import DeviceKind, Metric, Reading, ReadingValue
from gateway.store.bulk import (
    ReadingKey,
    insert_reading_rows,
    touch_device_rows,
    upsert_state_rows,
)
from gateway.store.changes import note_households
from gateway.store.chunks import HouseholdRange
from gateway.store.dialect import upsert
from gateway.store.tables import device_state, devices


def encode_value(value: ReadingValue) -> tuple[float | None, str | None]:
    """Split a reading value into the numeric and text columns."""
    if isinstance(value, str):
        return None, value
    return float(value), None


def decode_value(metric: Metric, num: float | None, text: str | None) -> ReadingValue | None:
    """The reading value back from its columns, typed by the metric catalogue."""
    spec = CATALOGUE[metric]
    if spec.type is ValueType.CHOICE:
        return text
    if num is None:
        return None
    return bool(num) if spec.type is ValueType.BOOL else num


async def insert_readings(
    conn: AsyncConnection,
    batch: Sequence[Reading],
    received_at: datetime,
    retained: Collection[ReadingKey] = (),
) -> set[ReadingKey]:
    """Store readings, ignoring ones already stored; return the keys that were new. Those in
    `retained` are the broker's retained copies of a state."""
    rows = []
    for r in batch:
        num, text = encode_value(r.value)
        retained_copy = bool(retained) and reading_key(r) in retained
        rows.append(
            (r.household_id, r.device_id, r.metric.value, num, text, r.unit, r.ts, retained_copy)
        )
    return await insert_reading_rows(conn, rows, received_at)


def reading_key(r: Reading) -> ReadingKey:
    return (r.household_id, r.device_id, r.metric.value, r.ts)


async def update_device_state(
    conn: AsyncConnection, batch: Sequence[Reading], received_at: datetime
) -> None:
    """Keep the latest value per (household, device, metric); older readings never win."""
    latest: dict[tuple[str, str, str], Reading] = {}
    for r in batch:
        key = (r.household_id, r.device_id, r.metric.value)
        if key not in latest or latest[key].ts <= r.ts:
            latest[key] = r
    if not latest:
        return
    rows = []
    for (household_id, device_id, metric), r in latest.items():
        num, text = encode_value(r.value)
        rows.append((household_id, device_id, metric, num, text, r.ts))
    await upsert_state_rows(conn, rows, received_at)
    note_households(conn, {household_id for household_id, _, _ in latest})


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    household_id: str
    device_id: str
    kind: DeviceKind | None
    source: str | None
    review: str
    label: str | None
    registered_at: datetime | None
    first_seen: datetime | None
    last_seen: datetime | None


def _device(row: sa.Row[tuple[object, ...]]) -> DeviceRecord:
    m = row._mapping
    return DeviceRecord(
        household_id=m["household_id"],
        device_id=m["device_id"],
        kind=DeviceKind(m["kind"]) if m["kind"] else None,
        source=m["source"],
        review=m["review"],
        label=m["label"],
        registered_at=m["registered_at"],
        first_seen=m["first_seen"],
        last_seen=m["last_seen"],
    )


async def get_device(
    conn: AsyncConnection, household_id: str, device_id: str
) -> DeviceRecord | None:
    row = (
        await conn.execute(
            sa.select(devices).where(
                devices.c.household_id == household_id, devices.c.device_id == device_id
            )
        )
    ).first()
    return _device(row) if row else None


async def list_devices(
    conn: AsyncConnection, household_id: str | None = None, *, within: HouseholdRange | None = None
) -> list[DeviceRecord]:
    query = sa.select(devices).order_by(devices.c.household_id, devices.c.device_id)
    if household_id is not None:
        query = query.where(devices.c.household_id == household_id)
    if within is not None:
        query = query.where(within.where(devices.c.household_id))
    return [_device(row) for row in await conn.execute(query)]


async def devices_by_key(
    conn: AsyncConnection, keys: Collection[tuple[str, str]]
) -> list[DeviceRecord]:
    """The registered devices among `keys` (household id, device id)."""
    ordered = sorted(keys)
    pair = sa.tuple_(devices.c.household_id, devices.c.device_id)
    out: list[DeviceRecord] = []
    for start in range(0, len(ordered), _KEYS_PER_QUERY):
        rows = await conn.execute(
            sa.select(devices).where(pair.in_(ordered[start : start + _KEYS_PER_QUERY]))
        )
        out += [_device(row) for row in rows]
    return out


NewDevice = tuple[str, str, DeviceKind | None, str | None]
"""A device registered by its own messages: household id, device id, kind (if it said), source."""

_KEYS_PER_QUERY = 500
"""Device keys per lookup: two bound parameters each, well under every backend's limit."""


async def device_kinds(
    conn: AsyncConnection, keys: Collection[tuple[str, str]]
) -> dict[tuple[str, str], DeviceKind | None]:
    """The registered devices among `keys` (household id, device id), with their kinds: one
    query per 500 keys, not one per device."""
    found: dict[tuple[str, str], DeviceKind | None] = {}
    ordered = sorted(keys)
    pair = sa.tuple_(devices.c.household_id, devices.c.device_id)
    for start in range(0, len(ordered), _KEYS_PER_QUERY):
        chunk = ordered[start : start + _KEYS_PER_QUERY]
        rows = await conn.execute(
            sa.select(devices.c.household_id, devices.c.device_id, devices.c.kind).where(
                pair.in_(chunk)
            )
        )
        for household_id, device_id, kind in rows:
            # Cached by the pipeline for every device: one copy of each id, shared with the
            # rules' (a string each per row was 112 bytes a device).
            key = (sys.intern(household_id), sys.intern(device_id))
            found[key] = DeviceKind(kind) if kind else None
    return found


async def device_values(
    conn: AsyncConnection, keys: Collection[tuple[str, str]]
) -> dict[tuple[str, str], dict[Metric, tuple[ReadingValue, datetime]]]:
    """The latest values of the devices among `keys` (household id, device id), with when each
    was measured: one query per 500 devices."""
    found: dict[tuple[str, str], dict[Metric, tuple[ReadingValue, datetime]]] = {}
    ordered = sorted(keys)
    pair = sa.tuple_(device_state.c.household_id, device_state.c.device_id)
    for start in range(0, len(ordered), _KEYS_PER_QUERY):
        rows = await conn.execute(
            sa.select(
                device_state.c.household_id,
                device_state.c.device_id,
                device_state.c.metric,
                device_state.c.value_num,
                device_state.c.value_text,
                device_state.c.ts,
            ).where(pair.in_(ordered[start : start + _KEYS_PER_QUERY]))
        )
        for household_id, device_id, name, num, text, ts in rows:
            metric = Metric(name)
            value = decode_value(metric, num, text)
            if value is not None:
                found.setdefault((household_id, device_id), {})[metric] = (value, ts)
    return found


async def register_devices(conn: AsyncConnection, new: Sequence[NewDevice]) -> None:
    """Add devices heard for the first time, for review, or fill in the kind of those that had
    none; never overwrite a known kind. One executemany for them all."""
    if not new:
        return
    stmt = upsert(conn, devices)
    stmt = stmt.on_conflict_do_update(
        index_elements=["household_id", "device_id"],
        set_={"kind": sa.func.coalesce(devices.c.kind, stmt.excluded.kind)},
    )
    rows = [
        {
            "household_id": household_id,
            "device_id": device_id,
            "kind": kind.value if kind is not None else None,
            "source": source,
            "review": "new",
        }
        for household_id, device_id, kind, source in new
    ]
    await conn.execute(stmt, rows)
    note_households(conn, {household_id for household_id, *_ in new})


async def unconfirmed_devices_by_household(
    conn: AsyncConnection, household_ids: Collection[str]
) -> dict[str, int]:
    """Per household, the devices registered by their own messages and not yet confirmed
    (0 for a household with none): one grouped query."""
    counts = dict.fromkeys(household_ids, 0)
    if counts:
        rows = await conn.execute(
            sa.select(devices.c.household_id, sa.func.count())
            .where(devices.c.household_id.in_(list(counts)), devices.c.review == "new")
            .group_by(devices.c.household_id)
        )
        counts.update({household_id: int(n) for household_id, n in rows})
    return counts


async def install_device(
    conn: AsyncConnection,
    household_id: str,
    device_id: str,
    kind: DeviceKind,
    label: str | None,
    now: datetime,
) -> DeviceRecord:
    """Register a device as installed (or confirm one discovered): its kind is now certain."""
    stmt = upsert(conn, devices).values(
        household_id=household_id,
        device_id=device_id,
        kind=kind.value,
        label=label,
        review="confirmed",
        registered_at=now,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["household_id", "device_id"],
        set_={
            "kind": stmt.excluded.kind,
            "label": stmt.excluded.label,
            "review": "confirmed",
            "registered_at": sa.func.coalesce(devices.c.registered_at, stmt.excluded.registered_at),
        },
    )
    await conn.execute(stmt)
    note_households(conn, (household_id,))
    device = await get_device(conn, household_id, device_id)
    assert device is not None
    return device


async def touch_devices(conn: AsyncConnection, seen: dict[tuple[str, str], datetime]) -> None:
    """Record first/last seen times; the latest time wins even when batches overlap."""
    await touch_device_rows(conn, [(h, d, ts) for (h, d), ts in seen.items()])


@dataclass(frozen=True, slots=True)
class StateValue:
    device_id: str
    metric: Metric
    value: ReadingValue | None
    ts: datetime


async def device_states(conn: AsyncConnection, household_id: str) -> list[StateValue]:
    rows = await conn.execute(
        sa.select(device_state)
        .where(device_state.c.household_id == household_id)
        .order_by(device_state.c.device_id, device_state.c.metric)
    )
    out = []
    for row in rows:
        m = row._mapping
        metric = Metric(m["metric"])
        out.append(
            StateValue(
                m["device_id"],
                metric,
                decode_value(metric, m["value_num"], m["value_text"]),
                m["ts"],
            )
        )
    return out


async def all_device_states(
    conn: AsyncConnection, *, within: HouseholdRange | None = None
) -> list[tuple[str, StateValue]]:
    """Every (household, latest value) pair (of a range of households); used at start-up to
    restore rule state."""
    query = sa.select(device_state)
    if within is not None:
        query = query.where(within.where(device_state.c.household_id))
    rows = await conn.execute(query)
    out = []
    for row in rows:
        m = row._mapping
        metric = Metric(m["metric"])
        value = decode_value(metric, m["value_num"], m["value_text"])
        out.append((m["household_id"], StateValue(m["device_id"], metric, value, m["ts"])))
    return out


@dataclass(frozen=True, slots=True)
class StoredReading:
    """A reading as the table holds it, with its id (the order readings were stored in)."""

    id: int
    reading: Reading
    retained: bool


@dataclass(frozen=True, slots=True)
class ReadBack:
    """Readings read back from the table: the ids of every row read (each id is accounted
    for, whoever owns it) and those of the readings asked for."""

    ids: list[int]
    readings: list[StoredReading]


# The detectors' read-back runs only where processes share a PostgreSQL database, twice a
# second over every process's readings: it asks the driver (asyncpg) directly, without
# SQLAlchemy's result rows and type processors (asyncpg gives `timestamptz` as UTC datetimes).
_AFTER = (
    "SELECT id, household_id, device_id, metric, value_num, value_text, unit, ts, retained"
    " FROM readings WHERE id > $1 AND id <= $2 ORDER BY id LIMIT $3"
)
_BY_ID = (
    "SELECT id, household_id, device_id, metric, value_num, value_text, unit, ts, retained"
    " FROM readings WHERE id = ANY($1::bigint[]) ORDER BY id"
)
_LAST_ID = 2**63 - 1


async def readings_after(
    conn: AsyncConnection,
    after_id: int,
    limit: int,
    *,
    up_to: int | None = None,
    keep: Callable[[str], bool] | None = None,
) -> ReadBack:
    """Readings stored with an id above `after_id` (and at most `up_to`), in id order; with
    `keep`, only the households it keeps are turned into readings. PostgreSQL only."""
    driver = await _driver(conn)
    rows = await driver.fetch(_AFTER, after_id, _LAST_ID if up_to is None else up_to, limit)
    return _read_back(rows, keep)


async def readings_by_id(
    conn: AsyncConnection, ids: Collection[int], *, keep: Callable[[str], bool] | None = None
) -> ReadBack:
    """Those of these readings that are stored (visible now), in id order. PostgreSQL only."""
    return _read_back(await (await _driver(conn)).fetch(_BY_ID, sorted(ids)), keep)


async def _driver(conn: AsyncConnection) -> Any:
    """The asyncpg connection under `conn`."""
    if conn.dialect.name != "postgresql":
        raise NotImplementedError("readings are read back only from a shared PostgreSQL")
    return (await conn.get_raw_connection()).driver_connection


def _read_back(rows: Iterable[Sequence[Any]], keep: Callable[[str], bool] | None) -> ReadBack:
    ids = []
    out = []
    for row in rows:
        id_, household_id, device_id, name, num, text, unit, ts, retained = row
        ids.append(id_)
        if keep is not None and not keep(household_id):
            continue  # another detector's: no objects for it
        metric = Metric(name)
        value = decode_value(metric, num, text)
        if value is None:
            continue
        reading = Reading(household_id, device_id, None, metric, value, unit, ts)
        out.append(StoredReading(id_, reading, bool(retained)))
    return ReadBack(ids, out)
