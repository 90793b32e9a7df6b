"""What coverage and visit reminders read: the elders on the ledger and their visits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement

from gateway.reports.coverage import (
    Contact,
    CoverageReport,
    Elder,
    Level,
    coverage_for_month,
    is_automatic,
    local_date,
    month_days,
)
from gateway.reports.response import Month
from gateway.store.tables import contacts, households, visits


@dataclass(frozen=True, slots=True)
class Assignment:
    """A visitor of role visitor assigned to an elder (a `contacts` row)."""

    household_id: str
    name: str
    phone: str
    language: str | None


async def ledger_elders(
    conn: AsyncConnection,
    zone: ZoneInfo,
    *,
    where: ColumnElement[bool] | None = None,
    not_left_before: date | None = None,
) -> list[Elder]:
    """The elders (households) matching `where`, with their visitors' names; those who left
    the programme before `not_left_before` are left out."""
    query = sa.select(
        households.c.id,
        households.c.elder_name,
        households.c.county,
        households.c.township,
        households.c.village,
        households.c.registered_on,
        households.c.created_at,
        households.c.left_on,
    ).order_by(households.c.id)
    if where is not None:
        query = query.where(where)
    if not_left_before is not None:
        query = query.where(
            sa.or_(households.c.left_on.is_(None), households.c.left_on >= not_left_before)
        )
    rows = (await conn.execute(query)).all()
    names: dict[str, list[str]] = {}
    for a in await assignments(conn, [row.id for row in rows]):
        names.setdefault(a.household_id, []).append(a.name)
    return [
        Elder(
            household_id=row.id,
            name=row.elder_name,
            county=row.county or "",
            township=row.township or "",
            village=row.village or "",
            joined_on=row.registered_on or local_date(row.created_at, zone),
            left_on=row.left_on,
            visitors=tuple(dict.fromkeys(names.get(row.id, []))),
        )
        for row in rows
    ]


async def assignments(conn: AsyncConnection, household_ids: Sequence[str]) -> list[Assignment]:
    """The visitors assigned to these households, in each household's order."""
    found: list[Assignment] = []
    # In chunks: a county's ledger is more ids than a database takes as parameters at once.
    for i in range(0, len(household_ids), 500):
        chunk = household_ids[i : i + 500]
        query = (
            sa.select(
                contacts.c.household_id, contacts.c.name, contacts.c.phone, contacts.c.language
            )
            .where(contacts.c.role == "visitor", contacts.c.household_id.in_(chunk))
            .order_by(contacts.c.household_id, contacts.c.position, contacts.c.id)
        )
        found.extend(
            Assignment(row.household_id, row.name, row.phone, row.language)
            for row in await conn.execute(query)
        )
    return found


async def visit_contacts(
    conn: AsyncConnection,
    start: datetime,
    end: datetime,
    *,
    where: ColumnElement[bool] | None = None,
) -> list[Contact]:
    """Visits with `visited_at` in [start, end) of the households matching `where`."""
    query = sa.select(visits.c.household_id, visits.c.visited_at, visits.c.details).where(
        visits.c.visited_at >= start, visits.c.visited_at < end
    )
    if where is not None:
        query = query.where(visits.c.household_id.in_(sa.select(households.c.id).where(where)))
    return [
        Contact(row.household_id, row.visited_at, is_automatic(row.details))
        for row in await conn.execute(query)
    ]


async def coverage_report(
    conn: AsyncConnection,
    month: Month,
    zone: ZoneInfo,
    level: Level = "village",
    *,
    where: ColumnElement[bool] | None = None,
) -> CoverageReport:
    """The month's coverage of the households matching `where` (None: all)."""
    first, _ = month_days(month)
    start, end = month.bounds(zone)
    elders = await ledger_elders(conn, zone, where=where, not_left_before=first)
    return coverage_for_month(
        month, zone, elders, await visit_contacts(conn, start, end, where=where), level
    )
