"""Time-driven detection partitioned by household among several processes (DESIGN.md §9):
leases, reading stored readings back in order, and handing partitions over. PostgreSQL, where
several processes share one database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.app import Core
from gateway.care.households import HouseholdIn, create_household
from gateway.clock import ManualClock
from gateway.observability import GatewayMetrics
from gateway.readings_feed import ReadingsFeed
from gateway.rules.activity import ActivityKind
from gateway.store.partitions import PARTITIONS, release, renew
from gateway.store.tables import alerts, readings
from tests.integration.harness import HOUSEHOLD, inbound, isolated_settings

pytestmark = pytest.mark.postgres

# 00:00 in Asia/Shanghai: the alerts below fall due in the afternoon, outside the night hours.
T0 = datetime(2026, 11, 29, 16, 0, tzinfo=UTC)
TTL = timedelta(seconds=15)


async def test_detectors_share_the_partitions_fairly_and_hand_them_over(postgres_url: str):
    db = create_async_engine(postgres_url)
    try:
        async with db.begin() as conn:
            a = await renew(conn, "a", (), T0, TTL)
        assert len(a.held) == PARTITIONS
        assert a.gained == frozenset(a.held)
        async with db.begin() as conn:
            b = await renew(conn, "b", (), T0, TTL)
        assert b.held == {}  # all held by a, whose lease runs
        async with db.begin() as conn:
            a = await renew(conn, "a", a.held, T0 + timedelta(seconds=5), TTL)
        assert len(a.surplus) == PARTITIONS // 2  # b is alive: a hands half back
        async with db.begin() as conn:
            await release(conn, "a", a.surplus)
            b = await renew(conn, "b", (), T0 + timedelta(seconds=5), TTL)
        assert set(b.held) == set(a.surplus)
        # a stops in order: b takes everything at its next renewal.
        async with db.begin() as conn:
            await release(conn, "a", None)
            b = await renew(conn, "b", b.held, T0 + timedelta(seconds=10), TTL)
        assert len(b.held) == PARTITIONS
        assert len(b.gained) == PARTITIONS // 2
    finally:
        await db.dispose()


async def test_a_dead_detectors_partitions_are_taken_when_its_lease_runs_out(postgres_url: str):
    db = create_async_engine(postgres_url)
    try:
        async with db.begin() as conn:
            a = await renew(conn, "a", (), T0, TTL)
            b = await renew(conn, "b", (), T0 + timedelta(seconds=14), TTL)
        assert b.held == {}
        # a stops renewing (killed): 15 s after its last renewal its leases are anyone's.
        async with db.begin() as conn:
            b = await renew(conn, "b", (), T0 + timedelta(seconds=16), TTL)
        assert len(b.held) == PARTITIONS
        async with db.begin() as conn:  # a comes back (it was only paused): it lost them
            a = await renew(conn, "a", a.held, T0 + timedelta(seconds=17), TTL)
        assert a.lost == frozenset(range(PARTITIONS))
        assert a.held == {}
    finally:
        await db.dispose()


async def test_the_feed_waits_for_a_reading_committed_after_a_later_one(postgres_url: str):
    """Two ingest transactions: the first inserts (lower id) but commits after the second."""
    db = create_async_engine(postgres_url)
    feed = ReadingsFeed(db, after=0)
    row = {
        "household_id": "H001",
        "device_id": "plug-1",
        "metric": "power_w",
        "value_num": 5.0,
        "received_at": T0,
    }
    try:
        slow = await db.connect()
        slow_tx = await slow.begin()
        await slow.execute(sa.insert(readings), [{**row, "ts": T0}])
        async with db.begin() as fast:
            await fast.execute(sa.insert(readings), [{**row, "ts": T0 + timedelta(seconds=1)}])
        first = (await feed.read()).readings
        assert [r.reading.ts for r in first] == [T0 + timedelta(seconds=1)]
        assert feed.gaps == 1
        assert feed.taken_to < first[0].id  # a saved state is valid only up to the gap
        await slow_tx.commit()
        await slow.close()
        second = (await feed.read()).readings
        assert [r.reading.ts for r in second] == [T0]
        assert (feed.gaps, feed.taken_to) == (0, first[0].id)
    finally:
        await db.dispose()


async def test_the_feed_accounts_for_the_readings_it_does_not_keep(postgres_url: str):
    """A detector keeps only its own households' readings; the others' ids are read past, not
    waited for as gaps, and so is a row whose value cannot be read back."""
    db = create_async_engine(postgres_url)
    try:
        feed = ReadingsFeed(db, after=0)
        rows = [
            ("MINE-1", 1.0),
            ("THEIRS-1", 2.0),
            ("MINE-1", None),  # no value to read back
            ("MINE-1", 4.0),
        ]
        async with db.begin() as conn:
            await conn.execute(
                sa.insert(readings),
                [
                    {
                        "household_id": household,
                        "device_id": "plug-1",
                        "metric": "power_w",
                        "value_num": value,
                        "received_at": T0,
                        "ts": T0 + timedelta(minutes=i),
                    }
                    for i, (household, value) in enumerate(rows)
                ],
            )
        back = await feed.read(keep=lambda household: household.startswith("MINE"))
        assert [(r.reading.household_id, r.reading.value) for r in back.readings] == [
            ("MINE-1", 1.0),
            ("MINE-1", 4.0),
        ]
        assert len(back.ids) == 4
        assert (feed.gaps, feed.taken_to) == (0, back.ids[-1])
    finally:
        await db.dispose()


@asynccontextmanager
async def shared_core(database_url: str, prefix: str, name: str) -> AsyncIterator[Core]:
    """One process's core, sharing detection with the others (a client id of its own)."""
    settings = isolated_settings("mqtt://127.0.0.1:1", database_url, prefix)
    mqtt = settings.mqtt.model_copy(update={"client_id": f"gw-{prefix}-{name}"})
    settings = settings.model_copy(update={"mqtt": mqtt})
    core = Core(settings, ManualClock(T0), GatewayMetrics(), lambda ids: None, shared=True)
    await core.prepare()
    try:
        yield core
    finally:
        await core.detector.resign()
        await core.close()


def meter(prefix: str, at: timedelta, total: float) -> list:
    ts = T0 + at
    topic = f"{prefix}/homes/H001/water-1/telemetry"
    return [
        inbound(topic, {"kind": "water_meter", "water_total_l": total, "ts": ts.timestamp()}, ts)
    ]


async def no_water_alerts(core: Core) -> list[datetime]:
    async with core.db.connect() as conn:
        rows = await conn.execute(
            sa.select(alerts.c.opened_at).where(alerts.c.rule_id == "no_water_use")
        )
        return [r.opened_at for r in rows]


async def test_inactivity_is_judged_on_every_processs_readings(postgres_url: str, unique_id: str):
    """A household's readings taken by two processes: the detector that owns the household
    hears of them all. Water is used until 02:00, through process a until 01:00 and b after;
    the alert waits for twelve hours without water after 02:00, whichever owns the household
    (a alone would have alerted at 13:00, and b, with no use in its readings, earlier still)."""
    async with shared_core(postgres_url, unique_id, "a") as a:
        async with a.db.begin() as conn:
            await create_household(conn, HouseholdIn.model_validate(HOUSEHOLD), T0)
        await a.household_changed("H001")
        async with shared_core(postgres_url, unique_id, "b") as b:
            await a.detector.share()  # a hands half back now that b is alive
            await b.detector.share()
            owned = len(a.detector.partitions or ()) + len(b.detector.partitions or ())
            assert owned == PARTITIONS
            assert a.detector.owns("H001") != b.detector.owns("H001")
            total = 1000.0
            at = timedelta(0)
            while at <= timedelta(hours=15):
                if at <= timedelta(hours=2):
                    total += 20.0  # water used every quarter hour until 02:00
                taker = a if at <= timedelta(hours=1) else b
                await taker.pipeline.process_with_retry(meter(unique_id, at, total))
                for core in (a, b):
                    core.clock.set(T0 + at)  # type: ignore[attr-defined]
                    await core.detector.follow()
                    await core.detector.tick(T0 + at)
                at += timedelta(minutes=15)
            opened = await no_water_alerts(a)
        assert opened == [T0 + timedelta(hours=14)], opened


async def test_partitions_taken_over_go_on_from_the_state_saved(postgres_url: str, unique_id: str):
    """A process stops; the other takes its partitions over: the saved activity log and the
    readings stored since, so the alert still comes twelve hours after the last water used."""
    async with shared_core(postgres_url, unique_id, "a") as a:
        async with a.db.begin() as conn:
            await create_household(conn, HouseholdIn.model_validate(HOUSEHOLD), T0)
        await a.household_changed("H001")
        total = 1000.0
        for quarter in range(5):  # water used until 01:00, stored and judged by a alone
            total += 20.0
            await a.pipeline.process_with_retry(
                meter(unique_id, timedelta(minutes=15 * quarter), total)
            )
        await a.detector.follow()
        await a.detector.save_state()
        async with shared_core(postgres_url, unique_id, "b") as b:
            # Stored by b after a's last save: b must take them too once it owns H001.
            await b.pipeline.process_with_retry(
                meter(unique_id, timedelta(hours=1, minutes=15), total + 20)
            )
            await a.detector.resign()
            await b.detector.share()
            assert len(b.detector.partitions or ()) == PARTITIONS
            await b.detector.follow()
            log = b.detector.engine.state("H001").log
            assert log.last.get(ActivityKind.WATER) == T0 + timedelta(hours=1, minutes=15)
            at = timedelta(hours=1, minutes=30)
            while at <= timedelta(hours=14):
                await b.pipeline.process_with_retry(meter(unique_id, at, total + 20))
                b.clock.set(T0 + at)  # type: ignore[attr-defined]
                await b.detector.follow()
                await b.detector.tick(T0 + at)
                at += timedelta(minutes=15)
            assert await no_water_alerts(b) == [T0 + timedelta(hours=13, minutes=15)]


async def test_a_retained_copy_is_read_back_as_one(postgres_url: str, unique_id: str):
    """The broker's retained copy of a state is stored as such: the detector reading it back
    must not take it for a sign of life."""
    async with shared_core(postgres_url, unique_id, "a") as core:
        async with core.db.begin() as conn:
            await create_household(conn, HouseholdIn.model_validate(HOUSEHOLD), T0)
        await core.household_changed("H001")
        topic = f"{unique_id}/homes/H001/door-1/telemetry"
        fresh = inbound(topic, {"door_open": True, "ts": T0.timestamp()}, T0)
        copy = inbound(topic, {"door_open": False}, T0 + timedelta(hours=1), retain=True)
        await core.pipeline.process_with_retry([fresh])
        await core.pipeline.process_with_retry([copy])
        rows = (await ReadingsFeed(core.db, after=0).read()).readings
        assert [(r.reading.value, r.retained) for r in rows] == [(True, False), (False, True)]


async def test_a_household_owned_elsewhere_is_summed_up_from_its_saved_state(
    postgres_url: str, unique_id: str
):
    """GET /activity may reach a process whose detector does not own the household: it
    answers from the state the owner last saved, not from an empty memory."""
    async with shared_core(postgres_url, unique_id, "a") as a:
        async with a.db.begin() as conn:
            await create_household(conn, HouseholdIn.model_validate(HOUSEHOLD), T0)
        await a.household_changed("H001")
        async with shared_core(postgres_url, unique_id, "b") as b:
            await a.detector.share()
            await b.detector.share()
            owner, other = (a, b) if a.detector.owns("H001") else (b, a)
            for quarter, total in enumerate((1000.0, 1020.0, 1020.0)):
                at = timedelta(minutes=15 * quarter)
                await other.pipeline.process_with_retry(meter(unique_id, at, total))
            await owner.detector.follow()
            await owner.detector.save_state()
            summary = await other.detector.routine_summary("H001")
            assert summary.last_activity.get("water") == T0 + timedelta(minutes=15)
            assert summary == await owner.detector.routine_summary("H001")
