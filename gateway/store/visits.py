"""Visit records: each contact with an elder, on the official visit form's terms (DESIGN.md §7)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store.changes import note_households
from gateway.store.dialect import upsert
from gateway.store.paging import Page, Window, fetch_page
from gateway.store.tables import households, visits


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
    """File a visit, numbered the n-th of its household; None when the alert already has its
    visit (one per alert)."""
    note_households(conn, (household_id,))
    values = {
        "household_id": household_id,
        "alert_id": alert_id,
        "seq": await next_seq(conn, visits, household_id),
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


async def next_seq(conn: AsyncConnection, table: sa.Table, household_id: str) -> int:
    """The next sequence number of a household's records in `table` (visits, care services).

    The household's row is locked first, so two records filed at once for the same elder queue
    up rather than take the same number.
    """
    await lock_rows(conn, households, households.c.id == household_id)
    last = await conn.scalar(
        sa.select(sa.func.max(table.c.seq)).where(table.c.household_id == household_id)
    )
    return int(last or 0) + 1


async def lock_rows(conn: AsyncConnection, table: sa.Table, where: sa.ColumnElement[bool]) -> None:
    """Hold the rows of `table` matching `where` until the transaction ends, so what is read
    next cannot change under a concurrent writer before this one writes."""
    if conn.dialect.name == "sqlite":
        # The driver begins SQLite's transaction at the first write, not at a read: a SELECT
        # FOR UPDATE would read outside it. A write that changes nothing takes the database's
        # one write lock first, and the reads that follow see everything committed before it.
        key = next(iter(table.primary_key.columns))
        await conn.execute(sa.update(table).where(where).values({key.name: key}))
        return
    await conn.execute(sa.select(*table.primary_key.columns).where(where).with_for_update())


@dataclass(frozen=True, slots=True)
class VisitRecord:
    id: int
    household_id: str
    alert_id: int | None
    method: VisitMethod
    visited_at: datetime
    visitor: str
    summary: str
    details: dict[str, Any]
    seq: int | None = None
    """The n-th visit to the household (None: filed before visits were numbered)."""
    created_by: str = ""
    """Who entered the record (the form's data-entry person)."""


_COLUMNS = (
    visits.c.id,
    visits.c.household_id,
    visits.c.alert_id,
    visits.c.method,
    visits.c.visited_at,
    visits.c.visitor,
    visits.c.summary,
    visits.c.details,
    visits.c.seq,
    visits.c.created_by,
)


def _record(row: Any) -> VisitRecord:
    # Any: SQLAlchemy types a row by its columns' tuple, which says nothing useful here.
    return VisitRecord(
        id=row.id,
        household_id=row.household_id,
        alert_id=row.alert_id,
        method=VisitMethod(row.method),
        visited_at=row.visited_at,
        visitor=row.visitor,
        summary=row.summary,
        details=dict(row.details),
        seq=row.seq,
        created_by=row.created_by,
    )


async def get_visit(conn: AsyncConnection, household_id: str, visit_id: int) -> VisitRecord | None:
    """One of a household's visits; None when the id is not one of them."""
    row = (
        await conn.execute(
            sa.select(*_COLUMNS).where(
                visits.c.id == visit_id, visits.c.household_id == household_id
            )
        )
    ).first()
    return _record(row) if row is not None else None


async def visits_between(
    conn: AsyncConnection,
    start: datetime,
    end: datetime,
    where: sa.ColumnElement[bool] | None = None,
) -> list[VisitRecord]:
    """Visits made in [start, end) of the households matching `where` (on `households`), in
    household and visit order."""
    query = (
        sa.select(*_COLUMNS)
        .join(households, households.c.id == visits.c.household_id)
        .where(visits.c.visited_at >= start, visits.c.visited_at < end)
        .order_by(visits.c.household_id, visits.c.visited_at, visits.c.id)
    )
    if where is not None:
        query = query.where(where)
    return [_record(row) for row in await conn.execute(query)]


async def household_visits(conn: AsyncConnection, household_id: str) -> list[VisitRecord]:
    """All of a household's visits in the form's order (by number, then visit time)."""
    query = (
        sa.select(*_COLUMNS)
        .where(visits.c.household_id == household_id)
        .order_by(visits.c.seq.asc().nulls_first(), visits.c.visited_at, visits.c.id)
    )
    return [_record(row) for row in await conn.execute(query)]


async def list_visits(
    conn: AsyncConnection, household_id: str, window: Window, *, before_id: int | None = None
) -> Page[VisitRecord]:
    """A household's visits, newest first (by visit time, then id).

    `before_id` continues a listing after that visit (the last one of the previous page); a
    visit time can be earlier than an older row's (a paper form entered later), so the page
    boundary is the visit's place in that order, not its id alone. An id that is not one of
    the household's visits gives an empty page.
    """
    query = (
        sa.select(*_COLUMNS)
        .where(visits.c.household_id == household_id)
        .order_by(visits.c.visited_at.desc(), visits.c.id.desc())
    )
    if before_id is not None:
        after = (
            sa.select(visits.c.visited_at)
            .where(visits.c.id == before_id, visits.c.household_id == household_id)
            .scalar_subquery()
        )
        query = query.where(
            sa.or_(
                visits.c.visited_at < after,
                sa.and_(visits.c.visited_at == after, visits.c.id < before_id),
            )
        )
    return await fetch_page(conn, query, window, _record)
