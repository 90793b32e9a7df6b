"""Several gateway processes sharing one database (DESIGN.md §9): a household's messages may be
taken by any of them, one by one, so what a message decides must not depend on which process
saw the household's earlier messages. Two `Core`s with engines of their own stand for two
processes here; tests/integration/test_processes.py runs real ones."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.app import Core
from gateway.clock import ManualClock
from gateway.models import AlertStatus
from gateway.observability import GatewayMetrics
from gateway.store.tables import alerts
from tests.integration.harness import core_with_household, inbound, isolated_settings

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@asynccontextmanager
async def second_core(database_url: str, prefix: str) -> AsyncIterator[Core]:
    """Another process's core on the same database (the household is registered already)."""
    settings = isolated_settings("mqtt://127.0.0.1:1", database_url, prefix)
    core = Core(settings, ManualClock(T0), GatewayMetrics(), lambda ids: None)
    await core.prepare()
    try:
        yield core
    finally:
        await core.close()


@pytest.fixture
async def cores(database_url: str, unique_id: str) -> AsyncIterator[tuple[Core, Core]]:
    async with (
        core_with_household(database_url, unique_id, T0) as a,
        second_core(database_url, unique_id) as b,
    ):
        yield a, b


async def alert_rows(core: Core) -> list[dict[str, Any]]:
    async with core.db.connect() as conn:
        rows = await conn.execute(sa.select(alerts).order_by(alerts.c.id))
        return [dict(r._mapping) for r in rows]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def test_a_cancel_taken_by_another_process_withdraws_the_call(
    cores: tuple[Core, Core], unique_id: str
):
    a, b = cores
    topic = f"{unique_id}/homes/H001/btn-1/event"
    await a.pipeline.process([inbound(topic, {"event": "sos", "ts": T0.timestamp()}, T0)])
    await b.pipeline.process(
        [inbound(topic, {"event": "cancel", "ts": at(12).timestamp()}, at(12))]
    )
    (call,) = await alert_rows(a)
    assert call["rule_id"] == "call_button"
    assert call["status"] == AlertStatus.RESOLVED.value
    assert "withdrawn" in call["resolution_note"]


async def test_a_late_cancel_taken_by_another_process_leaves_the_call_open(
    cores: tuple[Core, Core], unique_id: str
):
    a, b = cores
    topic = f"{unique_id}/homes/H001/btn-1/event"
    await a.pipeline.process([inbound(topic, {"event": "sos", "ts": T0.timestamp()}, T0)])
    await b.pipeline.process(
        [inbound(topic, {"event": "cancel", "ts": at(90).timestamp()}, at(90))]
    )
    (call,) = await alert_rows(a)
    assert call["status"] != AlertStatus.RESOLVED.value
    assert call["condition_cleared_at"] is not None  # the late cancel is noted on the alert


async def test_an_alarm_closed_elsewhere_opens_again_on_the_next_alarm(
    cores: tuple[Core, Core], unique_id: str
):
    """Process B once saw the smoke alarm open; a person resolved it (through process A's API,
    say); B must not think it still open and fold the next fire into it."""
    a, b = cores
    topic = f"{unique_id}/homes/H001/smoke-1/telemetry"
    await b.pipeline.process([inbound(topic, {"smoke": True, "ts": T0.timestamp()}, T0)])
    (first,) = await alert_rows(a)
    await a.book.resolve(first["id"], "operator", "checked: burnt toast")
    await b.pipeline.process([inbound(topic, {"smoke": True, "ts": at(600).timestamp()}, at(600))])
    opened = await alert_rows(a)
    assert [r["status"] for r in opened] == [AlertStatus.RESOLVED.value, AlertStatus.OPEN.value]


async def test_a_battery_signal_stored_by_another_process_still_counts(
    cores: tuple[Core, Core], unique_id: str
):
    """A device sending its low flag and its level in separate messages: the alert clears
    only when both say the battery is fine, whichever process took each message."""
    a, b = cores
    topic = f"{unique_id}/homes/H001/door-1/telemetry"
    await a.pipeline.process([inbound(topic, {"battery_low": True, "ts": T0.timestamp()}, T0)])
    await b.pipeline.process(
        [inbound(topic, {"battery_pct": 100, "ts": at(60).timestamp()}, at(60))]
    )
    (battery,) = await alert_rows(a)
    assert battery["rule_id"] == "low_battery"
    assert battery["status"] != AlertStatus.RESOLVED.value  # the flag still says low
    await b.pipeline.process(
        [inbound(topic, {"battery_low": False, "ts": at(120).timestamp()}, at(120))]
    )
    (battery,) = await alert_rows(a)
    assert battery["status"] == AlertStatus.RESOLVED.value


async def test_a_cancel_stored_before_its_call_still_withdraws_it(
    cores: tuple[Core, Core], unique_id: str
):
    """The call waited in one process's backlog while another process stored the cancel."""
    a, b = cores
    topic = f"{unique_id}/homes/H001/btn-1/event"
    await b.pipeline.process([inbound(topic, {"event": "cancel", "ts": at(8).timestamp()}, at(8))])
    await a.pipeline.process([inbound(topic, {"event": "sos", "ts": T0.timestamp()}, at(9))])
    (call,) = await alert_rows(a)
    assert call["status"] == AlertStatus.RESOLVED.value
    assert "withdrawn" in call["resolution_note"]
