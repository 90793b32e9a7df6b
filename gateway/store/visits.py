"""Visit records: each contact with an elder, on the official visit form's terms (DESIGN.md §7)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store.dialect import upsert
from gateway.store.tables import visits


class VisitMethod(StrEnum):
    PHONE = "phone"
    HOME_VISIT = "home_visit"
    VIDEO = "video"
    REMOTE_MONITORING = "remote_monitoring"
    OTHER = "other"


async def add_visit(
    conn: AsyncConnection,
    *,
    household_id: str,
    method: VisitMethod,
    visited_at: datetime,
    visitor: str,
    summary: str,
    details: Mapping[str, Any],
    now: datetime,
    by: str,
    alert_id: int | None = None,
) -> int | None:
    """File a visit; None when the alert already has its visit (one per alert)."""
    values = {
        "household_id": household_id,
        "alert_id": alert_id,
        "method": method.value,
        "visited_at": visited_at,
        "visitor": visitor[:100],
        "summary": summary[:1000],
        "details": dict(details),
        "created_at": now,
        "created_by": by[:100],
    }
    if alert_id is None:
        result = await conn.execute(sa.insert(visits).values(**values).returning(visits.c.id))
        return int(result.scalar_one())
    stmt = upsert(conn, visits).values(**values).on_conflict_do_nothing(index_elements=["alert_id"])
    result = await conn.execute(stmt.returning(visits.c.id))
    found = result.scalar_one_or_none()
    return int(found) if found is not None else None
