"""Alert rows, their audit trail and their notifications."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.models import AlertStatus, EvidenceValue, Finding, Severity
from gateway.store.changes import note_alert
from gateway.store.paging import Page, Window, fetch_page
from gateway.store.tables import alert_events, alerts, notifications

SEVERITY_ORDER: tuple[Severity, ...] = (
    Severity.CRITICAL,
    Severity.HIGH,
    Severity.MEDIUM,
    Severity.LOW,
)
AlertKey = tuple[str, str, str]
"""(household id, rule id, device id): at most one active alert each (`uq_alerts_active`)."""
ACTIVE = sa.text("status != 'resolved'")
"""The predicate of `uq_alerts_active`, word for word: an upsert names it to use the index."""
KEYS_PER_QUERY = 500
"""Households per look-up of active alerts (bind parameters are limited)."""
AlertOrder = Literal["newest", "queue"]
"""newest: the latest opened first; queue: critical first, then high, medium, low, and the
longest waiting first within a severity (the order the control room works in)."""


def severity_rank(column: sa.ColumnElement[str]) -> sa.ColumnElement[int]:
    """0 for critical … 3 for low (4 for anything unknown)."""
    return sa.case({s.value: k for k, s in enumerate(SEVERITY_ORDER)}, value=column, else_=4)


@dataclass(frozen=True, slots=True)
class AlertRecord:
    id: int
    household_id: str
    device_id: str
    rule_id: str
    severity: Severity
    status: AlertStatus
    summary: str
    evidence: dict[str, EvidenceValue]
    opened_at: datetime
    last_seen_at: datetime
    occurrences: int
    condition_cleared_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    resolution_note: str | None
    updated_at: datetime
    arrived_at: datetime | None = None
    arrived_by: str | None = None
    flagged_at: datetime | None = None
    flag_reason: str | None = None


def _record(row: sa.Row[Any]) -> AlertRecord:
    m = dict(row._mapping)
    m["severity"] = Severity(m["severity"])
    m["status"] = AlertStatus(m["status"])
    return AlertRecord(**m)


def alert_key(item: Finding | AlertRecord) -> AlertKey:
    return (item.household_id, item.rule_id, item.device_id)


async def open_alerts(
    conn: AsyncConnection, items: Iterable[Finding], now: datetime
) -> dict[AlertKey, AlertRecord]:
    """Insert an open alert for each finding (one per key) unless its key has an active alert
    already, committed or not: the unique index decides, so two processes opening the same
    alert make one. On PostgreSQL an insert meeting another transaction's uncommitted alert
    waits for it, and does nothing once that commits. Returns the alerts inserted, by key.

    Rows go in key order, so that two processes opening overlapping sets wait for each other
    in one order (no deadlock)."""
    rows = [_new_alert(item, now) for item in sorted(items, key=alert_key)]
    if not rows:
        return {}
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(alerts)
        .on_conflict_do_nothing(
            index_elements=[alerts.c.household_id, alerts.c.rule_id, alerts.c.device_id],
            index_where=ACTIVE,
        )
        .returning(*alerts.c)
    )
    result = await conn.execute(statement, rows)
    return {alert_key(alert): alert for alert in map(_record, result)}


def _new_alert(item: Finding, now: datetime) -> dict[str, Any]:
    return {
        "household_id": item.household_id,
        "device_id": item.device_id,
        "rule_id": item.rule_id,
        "severity": item.severity.value,
        "status": AlertStatus.OPEN.value,
        "summary": item.summary[:500],
        "evidence": item.evidence,
        "opened_at": item.ts,
        "last_seen_at": item.ts,
        "occurrences": 1,
        "updated_at": now,
    }


async def active_alerts_of(
    conn: AsyncConnection, keys: Iterable[AlertKey]
) -> dict[AlertKey, AlertRecord]:
    """The active alert of each of these keys that has one (committed, or written by this
    transaction), by key."""
    wanted = set(keys)
    homes = sorted({household for household, _, _ in wanted})
    found: dict[AlertKey, AlertRecord] = {}
    for start in range(0, len(homes), KEYS_PER_QUERY):
        query = sa.select(alerts).where(
            alerts.c.household_id.in_(homes[start : start + KEYS_PER_QUERY]),
            alerts.c.status != AlertStatus.RESOLVED.value,
        )
        for row in await conn.execute(query):
            alert = _record(row)
            if alert_key(alert) in wanted:
                found[alert_key(alert)] = alert
    return found


async def update_alert(conn: AsyncConnection, alert_id: int, **values: Any) -> None:
    if isinstance(values.get("status"), AlertStatus):
        values["status"] = values["status"].value
    await conn.execute(sa.update(alerts).where(alerts.c.id == alert_id).values(**values))
    note_alert(conn, alert_id, "updated")


async def add_event(
    conn: AsyncConnection,
    alert_id: int,
    at: datetime,
    event: str,
    actor: str | None,
    detail: str | None,
) -> None:
    await conn.execute(
        sa.insert(alert_events).values(
            alert_id=alert_id,
            at=at,
            event=event,
            actor=actor,
            detail=detail[:1000] if detail else None,
        )
    )
    note_alert(conn, alert_id, event)


EventRow = tuple[int, datetime, str, str | None, str | None]
"""(alert id, at, event, actor, detail): an `alert_events` row, as `add_event` takes it."""


async def add_events(conn: AsyncConnection, rows: Sequence[EventRow]) -> None:
    """Several `add_event`s in one statement; each alert's events keep their order."""
    if not rows:
        return
    await conn.execute(
        sa.insert(alert_events),
        [
            {
                "alert_id": alert_id,
                "at": at,
                "event": event,
                "actor": actor,
                "detail": detail[:1000] if detail else None,
            }
            for alert_id, at, event, actor, detail in rows
        ],
    )
    for alert_id, _, event, _, _ in rows:
        note_alert(conn, alert_id, event)


async def find_active(
    conn: AsyncConnection, household_id: str, rule_id: str, device_id: str
) -> AlertRecord | None:
    row = (
        await conn.execute(
            sa.select(alerts).where(
                alerts.c.household_id == household_id,
                alerts.c.rule_id == rule_id,
                alerts.c.device_id == device_id,
                alerts.c.status != AlertStatus.RESOLVED.value,
            )
        )
    ).first()
    return _record(row) if row else None


async def get_alert(conn: AsyncConnection, alert_id: int) -> AlertRecord | None:
    row = (await conn.execute(sa.select(alerts).where(alerts.c.id == alert_id))).first()
    return _record(row) if row else None


async def list_alerts(
    conn: AsyncConnection,
    *,
    statuses: list[AlertStatus] | None = None,
    household_id: str | None = None,
    window: Window,
    before_id: int | None = None,
    active_only: bool = False,
    flagged_only: bool = False,
    within: sa.Select[tuple[str]] | None = None,
    order: AlertOrder = "newest",
) -> Page[AlertRecord]:
    """Newest first, or in queue order; `within`: only alerts of these households (a subquery
    of ids)."""
    query = sa.select(alerts)
    if order == "queue":
        query = query.order_by(severity_rank(alerts.c.severity), alerts.c.opened_at, alerts.c.id)
    else:
        query = query.order_by(alerts.c.id.desc())
    if within is not None:
        query = query.where(alerts.c.household_id.in_(within))
    if statuses:
        query = query.where(alerts.c.status.in_([s.value for s in statuses]))
    if household_id is not None:
        query = query.where(alerts.c.household_id == household_id)
    if before_id is not None:
        query = query.where(alerts.c.id < before_id)
    if active_only or flagged_only:
        query = query.where(alerts.c.status != AlertStatus.RESOLVED.value)
    if flagged_only:
        query = query.where(alerts.c.flagged_at.is_not(None))
    return await fetch_page(conn, query, window, _record)


async def active_alerts(conn: AsyncConnection) -> list[AlertRecord]:
    query = sa.select(alerts).where(alerts.c.status != AlertStatus.RESOLVED.value)
    return [_record(row) for row in await conn.execute(query)]


async def open_counts_by_severity(conn: AsyncConnection) -> dict[str, int]:
    rows = await conn.execute(
        sa.select(alerts.c.severity, sa.func.count())
        .where(alerts.c.status != AlertStatus.RESOLVED.value)
        .group_by(alerts.c.severity)
    )
    return {severity: int(count) for severity, count in rows}


async def open_flagged_by_reason(conn: AsyncConnection) -> dict[str, int]:
    rows = await conn.execute(
        sa.select(alerts.c.flag_reason, sa.func.count())
        .where(alerts.c.status != AlertStatus.RESOLVED.value, alerts.c.flagged_at.is_not(None))
        .group_by(alerts.c.flag_reason)
    )
    return {str(reason): int(count) for reason, count in rows}


@dataclass(frozen=True, slots=True)
class AlertEvent:
    at: datetime
    event: str
    actor: str | None
    detail: str | None


async def alert_history(conn: AsyncConnection, alert_id: int) -> list[AlertEvent]:
    rows = await conn.execute(
        sa.select(
            alert_events.c.at, alert_events.c.event, alert_events.c.actor, alert_events.c.detail
        )
        .where(alert_events.c.alert_id == alert_id)
        .order_by(alert_events.c.id)
    )
    return [AlertEvent(*row) for row in rows]


@dataclass(frozen=True, slots=True)
class NotificationRecord:
    id: int
    alert_id: int
    channel: str
    recipient_role: str
    recipient_name: str
    recipient_phone: str
    reason: str
    body: str
    status: str
    attempts: int
    provider: str | None
    provider_id: str | None
    error: str | None
    created_at: datetime
    claimed_at: datetime | None
    sent_at: datetime | None
    not_before: datetime | None = None
    """Held back until then (quiet hours); None: sent at once."""
    step: int | None = None
    run: int | None = None
    purpose: str = "alert"
    language: str = "zh"
    delivery_status: str | None = None
    batched_into: int | None = None
    fields: dict[str, str] | None = None


async def alert_notifications(conn: AsyncConnection, alert_id: int) -> list[NotificationRecord]:
    rows = await conn.execute(
        sa.select(notifications)
        .where(notifications.c.alert_id == alert_id)
        .order_by(notifications.c.id)
    )
    return [NotificationRecord(**dict(row._mapping)) for row in rows]


async def active_alert_keys(
    conn: AsyncConnection, household_ids: Iterable[str], rule_ids: Iterable[str] | None
) -> dict[str, dict[tuple[str, str], datetime]]:
    """Per household, the active alerts of these rules (None: of every rule): (rule id,
    device id) -> opened at."""
    households = sorted(set(household_ids))
    found: dict[str, dict[tuple[str, str], datetime]] = {}
    of_rules = sa.true() if rule_ids is None else alerts.c.rule_id.in_(sorted(set(rule_ids)))
    for start in range(0, len(households), KEYS_PER_QUERY):
        rows = await conn.execute(
            sa.select(
                alerts.c.household_id, alerts.c.rule_id, alerts.c.device_id, alerts.c.opened_at
            ).where(
                alerts.c.household_id.in_(households[start : start + KEYS_PER_QUERY]),
                alerts.c.status != AlertStatus.RESOLVED.value,
                of_rules,
            )
        )
        for household_id, rule_id, device_id, opened_at in rows:
            found.setdefault(household_id, {})[(rule_id, device_id)] = opened_at
    return found


async def lock_households(conn: AsyncConnection, household_ids: Iterable[str]) -> None:
    """Hold these households until the transaction ends (PostgreSQL; SQLite has one writer):
    another process judging the same household's messages waits, then sees what this one
    committed (the call its cancel withdraws). Taken in one order, so two batches cannot each
    wait for the other."""
    if conn.dialect.name != "postgresql":
        return
    ordered = sorted(set(household_ids))
    if ordered:
        await conn.execute(_LOCK_HOUSEHOLDS, {"ids": ordered})


_LOCK_HOUSEHOLDS = sa.text(
    "SELECT pg_advisory_xact_lock(hashtext(h))"
    " FROM (SELECT unnest(:ids) AS h ORDER BY 1) AS households"
).bindparams(sa.bindparam("ids", type_=ARRAY(sa.Text)))
