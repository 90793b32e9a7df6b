"""Devices heard for the first time, or first since a restart, cost the batch a few statements,
not a few per device: an installation day or a restart must not crawl (issue 13)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from gateway.app import Core
from gateway.care.households import HouseholdIn, create_household
from gateway.clock import ManualClock
from gateway.models import DeviceKind
from gateway.observability import GatewayMetrics
from gateway.store.readings import (
    device_kinds,
    register_devices,
    unconfirmed_devices_by_household,
)
from gateway.store.tables import dead_letters, devices, readings
from tests.integration.harness import inbound, isolated_settings, rows

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
HOMES = [f"H{n:03d}" for n in range(1, 11)]


@pytest.fixture
async def core(database_url: str, unique_id: str) -> AsyncIterator[Core]:
    core = await started_core(database_url, unique_id)
    async with core.db.begin() as conn:
        for home in HOMES:
            body = {"id": home, "elder": {"name": f"老人{home}"}}
            await create_household(conn, HouseholdIn.model_validate(body), T0)
    for home in HOMES:
        await core.household_changed(home)
    try:
        yield core
    finally:
        await core.close()


async def started_core(database_url: str, prefix: str) -> Core:
    settings = isolated_settings("mqtt://127.0.0.1:1", database_url, prefix)
    core = Core(settings, ManualClock(T0), GatewayMetrics(), lambda ids: None)
    await core.prepare()
    return core


@contextmanager
def statements(core: Core) -> Iterator[list[str]]:
    """The SQL statements the core's engine sends while the block runs."""
    sent: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    event.listen(core.db.sync_engine, "before_cursor_execute", note)
    try:
        yield sent
    finally:
        event.remove(core.db.sync_engine, "before_cursor_execute", note)


def first_readings(
    prefix: str, per_home: int, *, first: int = 0, minutes: int = 1, watts: float = 5.0
) -> list[Any]:
    """One power reading from each of `per_home` devices in every home."""
    at = T0 + timedelta(minutes=minutes)
    return [
        inbound(
            f"{prefix}/homes/{home}/plug-{n}/telemetry",
            {"kind": "power_meter", "ts": int(at.timestamp()), "power_w": watts + n},
            at,
        )
        for n in range(first, first + per_home)
        for home in HOMES
    ]


async def test_a_batch_of_new_devices_costs_the_same_statements_however_many(
    core: Core, unique_id: str
):
    with statements(core) as few:
        await core.pipeline.process(first_readings(unique_id, 2))
    with statements(core) as many:
        await core.pipeline.process(first_readings(unique_id, 30, first=2))

    assert len(many) == len(few)
    registered = await rows(core, sa.select(devices))
    assert len(registered) == 10 * 32
    assert {(d["kind"], d["review"], d["source"]) for d in registered} == {
        ("power_meter", "new", "native")
    }
    assert len(await rows(core, sa.select(readings))) == 10 * 32


async def test_after_a_restart_known_devices_are_looked_up_together(
    core: Core, database_url: str, unique_id: str
):
    await core.pipeline.process(first_readings(unique_id, 30))
    restarted = await started_core(database_url, unique_id)
    try:
        again = first_readings(unique_id, 30, minutes=5, watts=6.0)
        with statements(restarted) as sent:
            result = await restarted.pipeline.process(again)
        assert result.readings == 300
        assert not result.dead_letters
        # 300 devices known from before the restart: one lookup (a chunk holds 500 keys).
        assert len([s for s in sent if "FROM devices" in s]) == 1
        assert not any(s.lstrip().upper().startswith("INSERT INTO devices") for s in sent)
    finally:
        await restarted.close()


async def test_the_quota_counts_the_devices_registered_earlier_in_the_same_batch(
    core: Core, unique_id: str
):
    quota = core.pipeline.device_quota
    batch = [m for m in first_readings(unique_id, quota + 5) if "/H001/" in m.topic]

    result = await core.pipeline.process(batch)

    assert len(await rows(core, sa.select(devices))) == quota
    letters = await rows(core, sa.select(dead_letters))
    assert [d["reason_code"] for d in letters] == ["device_limit"] * 5
    assert {d["topic"].split("/")[3] for d in letters} == {
        f"plug-{n}" for n in range(quota, quota + 5)
    }
    assert result.readings == quota


async def test_a_kind_said_later_fills_in_and_a_known_kind_stays(core: Core):
    async with core.db.begin() as conn:
        await register_devices(conn, [("H001", "a", None, "native"), ("H001", "b", None, None)])
        await register_devices(conn, [("H001", "a", None, "native")])  # again, still no kind
    async with core.db.begin() as conn:
        await register_devices(
            conn,
            [
                ("H001", "a", DeviceKind.WATER_METER, "native"),
                ("H001", "b", DeviceKind.POWER_METER, None),
            ],
        )
        await register_devices(conn, [("H001", "a", DeviceKind.POWER_METER, "native")])
    async with core.db.connect() as conn:
        kinds = await device_kinds(conn, [("H001", "a"), ("H001", "b"), ("H001", "missing")])
        counts = await unconfirmed_devices_by_household(conn, ["H001", "H002"])
    assert kinds == {("H001", "a"): DeviceKind.WATER_METER, ("H001", "b"): DeviceKind.POWER_METER}
    assert counts == {"H001": 2, "H002": 0}


async def test_device_kinds_answers_for_more_keys_than_one_query_takes(core: Core):
    keys = [(home, f"d{n}") for home in HOMES for n in range(120)]  # 1,200 keys: 3 chunks
    async with core.db.begin() as conn:
        await register_devices(conn, [(h, d, None, "native") for h, d in keys[::2]])
    async with core.db.connect() as conn:
        found = await device_kinds(conn, keys)
    assert sorted(found) == sorted(keys[::2])
