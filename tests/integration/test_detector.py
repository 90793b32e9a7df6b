"""What the rules remember of alerts changes only with the transaction that stores them.

The database fails in the middle of a write, for real: on PostgreSQL the server terminates the
connection; on SQLite the write meets "database is locked", as it does behind another writer.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from gateway.alerts.book import AlertChange
from gateway.app import Core
from gateway.store.tables import alerts, rule_state
from tests.integration.harness import core_with_household, inbound

T0 = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)  # 14:00 in the household's zone


@pytest.fixture
async def core(database_url: str, unique_id: str) -> AsyncIterator[Core]:
    async with core_with_household(database_url, unique_id, T0) as core:
        yield core


@contextmanager
def database_fails(core: Core, statement: str, *, on: int = 1) -> Iterator[list[str]]:
    """The `on`-th statement starting with `statement` fails as a dying database would."""
    seen: list[str] = []

    def before(conn: Any, cursor: Any, text: str, *_: Any) -> None:
        if not text.lstrip().upper().startswith(statement):
            return
        seen.append(text)
        if len(seen) != on:
            return
        if conn.dialect.name == "postgresql":
            cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        else:
            raise sqlite3.OperationalError("database is locked")

    event.listen(core.db.sync_engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(core.db.sync_engine, "before_cursor_execute", before)


async def a_day_without_water(core: Core, unique_id: str) -> None:
    """A meter reporting hourly: 12 l used in the night, then nothing until 14:00."""
    topic = f"{unique_id}/homes/H001/water-1/telemetry"
    for hours in range(-14, 1):
        total = 100.0 if hours == -14 else 112.0
        at = T0 + timedelta(hours=hours)
        await core.pipeline.process([inbound(topic, {"water_total_l": total}, at)])


async def active(core: Core) -> list[dict[str, Any]]:
    async with core.db.connect() as conn:
        rows = await conn.execute(sa.select(alerts).where(alerts.c.status != "resolved"))
        return [dict(r._mapping) for r in rows]


async def saved_log(core: Core) -> dict[str, Any]:
    async with core.db.connect() as conn:
        state = await conn.scalar(sa.select(rule_state.c.state))
    assert isinstance(state, dict)
    return state


async def test_a_database_failing_in_the_middle_of_a_tick_does_not_lose_the_alert(
    core: Core, unique_id: str
):
    await a_day_without_water(core, unique_id)
    with database_fails(core, "INSERT INTO ALERTS") as attempts:
        await core.detector.tick(T0)
    assert len(attempts) == 2  # failed, then retried
    (opened,) = await active(core)
    assert opened["rule_id"] == "no_water_use"
    # The spell it is about was saved with it, so a restart does not alert it again...
    spell = opened["evidence"]["inactive_since"]
    assert (await saved_log(core))["alerted"] == {"no_water_use": spell}
    # ...and the next tick does not open a second one.
    await core.detector.tick(T0 + timedelta(minutes=1))
    assert len(await active(core)) == 1


async def test_a_tick_that_gives_up_leaves_the_rules_ready_to_find_the_alert_again(
    core: Core, unique_id: str
):
    await a_day_without_water(core, unique_id)
    core.detector.stop()  # shutting down: a failed write is not retried
    with database_fails(core, "INSERT INTO ALERTS"):
        await core.detector.tick(T0)
    assert await active(core) == []
    state = core.detector.engine.state("H001")
    assert (state.open_alerts, state.log.alerted) == ({}, {})
    await core.detector.tick(T0 + timedelta(minutes=1))  # e.g. after the restart
    (opened,) = await active(core)
    assert opened["rule_id"] == "no_water_use"


async def test_a_failed_batch_takes_back_what_the_rules_were_told_and_listeners_hear_nothing(
    core: Core, unique_id: str
):
    heard: list[AlertChange] = []
    core.book.listeners.append(heard.append)
    sos = inbound(f"{unique_id}/homes/H001/btn-1/event", {"event": "sos"}, T0)
    smoke = inbound(f"{unique_id}/homes/H001/smoke-1/telemetry", {"smoke": True}, T0)
    # The call's alert is written, then the smoke alarm's write fails: nothing commits.
    with database_fails(core, "INSERT INTO ALERTS", on=2), pytest.raises(sa.exc.DBAPIError):
        await core.pipeline.process([sos, smoke])
    assert heard == []
    assert core.detector.engine.state("H001").open_alerts == {}
    await core.pipeline.process_with_retry([sos, smoke])
    assert sorted(c.rule_id for c in heard if c.active) == ["call_button", "smoke_alarm"]
    assert set(core.detector.engine.state("H001").open_alerts) == {
        ("call_button", "btn-1"),
        ("smoke_alarm", "smoke-1"),
    }


async def test_a_call_and_its_cancel_in_one_batch_withdraw_the_alert(core: Core, unique_id: str):
    topic = f"{unique_id}/homes/H001/btn-1/event"
    heard: list[AlertChange] = []
    core.book.listeners.append(heard.append)
    await core.pipeline.process(
        [
            inbound(topic, {"event": "sos", "ts": T0.timestamp()}, T0),
            inbound(topic, {"event": "cancel", "ts": T0.timestamp() + 5}, T0),
        ]
    )
    assert await active(core) == []
    assert [c.active for c in heard] == [True, False]


async def test_a_connection_lost_in_the_middle_of_a_batch_is_waited_out_not_dead_lettered(
    core: Core, unique_id: str
):
    smoke = inbound(f"{unique_id}/homes/H001/smoke-1/telemetry", {"smoke": True}, T0)
    with database_fails(core, "INSERT INTO READINGS") as attempts:
        await core.pipeline.process_with_retry([smoke])
    assert len(attempts) == 2
    (opened,) = await active(core)
    assert opened["rule_id"] == "smoke_alarm"
    async with core.db.connect() as conn:
        assert await conn.scalar(sa.text("SELECT count(*) FROM dead_letters")) == 0


async def test_a_tick_gives_the_event_loop_back_while_it_works(
    core: Core, monkeypatch: pytest.MonkeyPatch
):
    for n in range(200):
        core.detector.engine.state(f"H{n:04}")
    monkeypatch.setattr("gateway.detector.TICK_SLICE_S", 0.0)  # a slice per household
    turns = 0
    ticking = True

    async def other_work() -> None:  # the API, ingest
        nonlocal turns
        while ticking:
            turns += 1
            await asyncio.sleep(0)

    other = asyncio.create_task(other_work())
    await asyncio.sleep(0)
    await core.detector.tick(T0)
    ticking = False
    await other
    assert turns >= 200
