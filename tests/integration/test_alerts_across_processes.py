"""Two gateway processes sharing one database open and close the same alerts (DESIGN.md §9).

Each "process" is an alert book on an engine of its own (its own connection pool), so the two
meet only in the database: the unique index on active alerts makes an alert both open at once
one alert, and a clear applied by the process that did not open the alert closes it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.alerts.book import AlertBook, Applied
from gateway.care.households import HouseholdIn, create_household
from gateway.clock import ManualClock
from gateway.models import Finding, FindingAction, Severity
from gateway.store.database import create_engine
from gateway.store.tables import alert_events, alerts, escalations, notifications, visits
from tests.integration.harness import eventually

NOW = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)  # noon in Shanghai: no quiet hours
HOME = {
    "id": "H001",
    "elder": {"name": "张桂兰", "phone": "+8613800000000"},
    "visitors": [{"name": "李敏", "phone": "+8613900000001"}],
    "relatives": [{"name": "王强", "phone": "+8613900000002", "relation": "son"}],
}


def sos(at: datetime = NOW) -> Finding:
    return Finding(
        rule_id="call_button",
        household_id="H001",
        device_id="btn-1",
        severity=Severity.CRITICAL,
        action=FindingAction.OPEN,
        ts=at,
        summary="call button: sos",
    )


def cancel(at: datetime) -> Finding:
    return Finding(
        rule_id="call_button",
        household_id="H001",
        device_id="btn-1",
        severity=Severity.CRITICAL,
        action=FindingAction.CLEAR,
        ts=at,
        summary="withdrawn by the elder 10 s after the call",
        resolves=True,
    )


def offline(device_id: str, action: FindingAction = FindingAction.OPEN, **extra: Any) -> Finding:
    return Finding(
        rule_id="device_offline",
        household_id="H001",
        device_id=device_id,
        severity=Severity.MEDIUM,
        action=action,
        ts=NOW,
        summary="device went offline",
        **extra,
    )


def book_on(engine: AsyncEngine) -> AlertBook:
    """A gateway process's alert book (the built-in escalation policies)."""
    return AlertBook(engine, ManualClock(NOW), "zh", ZoneInfo("Asia/Shanghai"))


@pytest.fixture
async def first(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    async with engine.begin() as conn:
        await create_household(conn, HouseholdIn.model_validate(HOME), NOW)
    yield engine
    await engine.dispose()


@pytest.fixture
async def second(database_url: str, first: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


async def table(engine: AsyncEngine, query: sa.Select[Any]) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        return [dict(row._mapping) for row in await conn.execute(query)]


async def apply(engine: AsyncEngine, findings: list[Finding]) -> Applied:
    async with engine.begin() as conn:
        return await book_on(engine).apply(conn, findings)


# --- the same alert opened by two processes -------------------------------------------------


async def waiting_for_a_lock(engine: AsyncEngine, pid: int) -> bool:
    async with engine.connect() as conn:
        waiting = await conn.scalar(
            sa.text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"),
            {"pid": pid},
        )
    return waiting == "Lock"


@pytest.mark.postgres
async def test_an_alert_two_processes_open_at_once_is_one_alert(postgres_url: str):
    one, two = create_engine(postgres_url), create_engine(postgres_url)
    try:
        async with one.begin() as conn:
            await create_household(conn, HouseholdIn.model_validate(HOME), NOW)
        async with two.connect() as other:
            other_pid = int(await other.scalar(sa.text("SELECT pg_backend_pid()")))
            await other.commit()
            inserted = asyncio.Event()

            async def first_process() -> Applied:
                async with one.begin() as conn:
                    applied = await book_on(one).apply(conn, [sos()])
                    inserted.set()
                    # Committed only once the other process waits on this uncommitted alert.
                    await eventually(lambda: waiting_for_a_lock(one, other_pid), within=10.0)
                return applied

            async def second_process() -> Applied:
                async with other.begin():
                    await inserted.wait()
                    return await book_on(two).apply(other, [sos(NOW + timedelta(seconds=2))])

            opened, repeated = await asyncio.wait_for(
                asyncio.gather(first_process(), second_process()), timeout=30.0
            )

        (alert,) = await table(one, sa.select(alerts))
        assert (alert["occurrences"], alert["last_seen_at"]) == (2, NOW + timedelta(seconds=2))
        assert opened.opened == [alert["id"]]
        assert repeated.opened == []
        assert repeated.notification_ids == []
        assert repeated.changes == []
        sent = await table(one, sa.select(notifications.c.id).order_by(notifications.c.id))
        assert [n["id"] for n in sent] == opened.notification_ids != []
        assert len(await table(one, sa.select(escalations))) == 1
        events = await table(one, sa.select(alert_events.c.event).order_by(alert_events.c.id))
        assert [e["event"] for e in events].count("opened") == 1
    finally:
        await one.dispose()
        await two.dispose()


async def test_a_second_process_repeating_a_committed_alert_counts_it(
    first: AsyncEngine, second: AsyncEngine
):
    opened = await apply(first, [sos()])
    repeated = await apply(second, [sos(NOW + timedelta(seconds=5))])

    (alert,) = await table(first, sa.select(alerts))
    assert (alert["occurrences"], alert["status"]) == (2, "open")
    assert alert["last_seen_at"] == NOW + timedelta(seconds=5)
    assert (repeated.opened, repeated.notification_ids) == ([], [])
    assert len(await table(first, sa.select(notifications))) == len(opened.notification_ids)


async def test_a_cancel_applied_by_the_other_process_withdraws_the_call(
    first: AsyncEngine, second: AsyncEngine
):
    opened = await apply(first, [sos()])
    closed = await apply(second, [cancel(NOW + timedelta(seconds=10))])

    (alert,) = await table(first, sa.select(alerts))
    assert (alert["status"], alert["resolved_by"]) == ("resolved", "system")
    assert [c.active for c in closed.changes] == [False]
    events = await table(first, sa.select(alert_events.c.event).order_by(alert_events.c.id))
    assert events[-1]["event"] == "auto_resolved"
    pending = await table(
        first,
        sa.select(notifications.c.status).where(notifications.c.id.in_(opened.notification_ids)),
    )
    assert pending
    assert all(n["status"] == "cancelled" for n in pending)
    (visit,) = await table(first, sa.select(visits.c.alert_id, visits.c.method))
    assert visit == {"alert_id": alert["id"], "method": "remote_monitoring"}


# --- many findings in one apply --------------------------------------------------------------


async def test_one_apply_opens_repeats_and_closes_in_the_findings_order(first: AsyncEngine):
    already = await apply(first, [offline("plug-0")])
    applied = await apply(
        first,
        [
            offline("plug-1"),
            offline("plug-0"),
            offline("plug-2"),
            offline("plug-1", evidence={"wet": True}),
            offline("plug-2", FindingAction.CLEAR, resolves=True),
            offline("plug-2"),
        ],
    )

    rows = await table(first, sa.select(alerts).order_by(alerts.c.id))
    state = [(r["device_id"], r["status"], r["occurrences"], r["evidence"]) for r in rows]
    assert state == [
        ("plug-0", "open", 2, {}),
        ("plug-1", "open", 2, {"wet": True}),
        ("plug-2", "resolved", 1, {}),
        ("plug-2", "open", 1, {}),
    ]
    assert applied.opened == [rows[1]["id"], rows[2]["id"], rows[3]["id"]]
    assert [(c.device_id, c.active) for c in applied.changes] == [
        ("plug-1", True),
        ("plug-2", True),
        ("plug-2", False),
        ("plug-2", True),
    ]
    # Each new alert told its visitor once (medium: SMS); the withdrawn one's message cancelled.
    queued = await table(
        first,
        sa.select(notifications.c.alert_id, notifications.c.status).order_by(notifications.c.id),
    )
    assert [q["alert_id"] for q in queued] == [r["id"] for r in rows]
    assert [q["status"] for q in queued] == ["pending", "pending", "cancelled", "pending"]
    assert applied.notification_ids + already.notification_ids != []
