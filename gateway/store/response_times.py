"""What the response-time report reads: each alert's start, acknowledgement and place."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store.tables import alerts, escalations, households


@dataclass(frozen=True, slots=True)
class AlertTiming:
    id: int
    rule_id: str
    severity: str
    status: str
    household_id: str
    county: str
    township: str
    village: str
    """Empty when the household has none on file, or is not on file at all."""
    started_at: datetime
    """When escalation began: the alert's opening, or the end of quiet hours it was held for."""
    acknowledged_at: datetime | None
    flagged: bool
    resolved_by: str | None


async def alert_timings(
    conn: AsyncConnection,
    start: datetime,
    end: datetime,
    within: sa.Select[tuple[str]] | None = None,
) -> list[AlertTiming]:
    """Alerts whose escalation started in [start, end), oldest first; `within`: only those of
    these households (a subquery of ids).

    Alerts from before escalations existed have no escalations row: their opening is the start.
    """
    started_at = sa.func.coalesce(escalations.c.started_at, alerts.c.opened_at)
    query = (
        sa.select(
            alerts.c.id,
            alerts.c.rule_id,
            alerts.c.severity,
            alerts.c.status,
            alerts.c.household_id,
            households.c.county,
            households.c.township,
            households.c.village,
            escalations.c.started_at,
            alerts.c.opened_at,
            alerts.c.acknowledged_at,
            alerts.c.flagged_at,
            alerts.c.resolved_by,
        )
        .select_from(
            alerts.outerjoin(escalations, escalations.c.alert_id == alerts.c.id).outerjoin(
                households, households.c.id == alerts.c.household_id
            )
        )
        # An escalation never starts before its alert opens: this bound is cheap to check first.
        .where(alerts.c.opened_at < end, started_at >= start, started_at < end)
        .order_by(started_at, alerts.c.id)
    )
    if within is not None:
        query = query.where(alerts.c.household_id.in_(within))
    return [
        AlertTiming(
            id=row.id,
            rule_id=row.rule_id,
            severity=row.severity,
            status=row.status,
            household_id=row.household_id,
            county=row.county or "",
            township=row.township or "",
            village=row.village or "",
            started_at=row.started_at or row.opened_at,
            acknowledged_at=row.acknowledged_at,
            flagged=row.flagged_at is not None,
            resolved_by=row.resolved_by,
        )
        for row in await conn.execute(query)
    ]
