"""The visitors' registry: who visits, for which organisation, covering which villages; and
their assignment to elders.

An assignment is a `contacts` row of role visitor holding the registry's name, phone and
language: escalation, reminders and the visitor's own scope all read contacts, matched by phone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.care.households import (
    Language,
    contact_row,
    households_visited_by,
    visitor_assignments,
)
from gateway.care.phones import ValidPhone, phone_forms
from gateway.care.profile import UnitType
from gateway.store.care_tables import care_visitors
from gateway.store.dialect import json_array_holds
from gateway.store.paging import Page, Window, fetch_page
from gateway.store.tables import contacts, households

Place = Annotated[str, StringConstraints(max_length=100, strip_whitespace=True)]
Named = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Village(_Body):
    county: Place = ""
    township: Named
    village: Named


class VisitorIn(_Body):
    """What POST and PUT /api/visitors accept."""

    name: Named
    phone: ValidPhone
    org_type: UnitType
    """The supporting-unit type of their organisation (village_committee, volunteer...)."""
    organisation: Annotated[str, StringConstraints(max_length=200, strip_whitespace=True)] = ""
    villages: list[Village] = Field(default_factory=list, max_length=500)
    language: Language | None = None
    """Language of their messages; None: the gateway's (Chinese by default)."""


@dataclass(frozen=True, slots=True)
class RegisteredVisitor:
    id: int
    name: str
    phone: str
    org_type: str
    organisation: str
    villages: list[Village]
    language: str | None
    created_at: datetime
    updated_at: datetime

    def covers(self, township: str) -> bool:
        """Whether any of their villages lies in `township` (an operator's area)."""
        return any(v.township == township for v in self.villages)


class VisitorExists(Exception):
    """Another visitor is registered with this phone number."""


class VisitorAssigned(Exception):
    """The visitor is still assigned to elders."""


def _visitor(row: sa.Row[Any]) -> RegisteredVisitor:
    m = row._mapping
    return RegisteredVisitor(
        id=m["id"],
        name=m["name"],
        phone=m["phone"],
        org_type=m["org_type"],
        organisation=m["organisation"],
        villages=[Village.model_validate(v) for v in m["villages"]],
        language=m["language"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


def _columns(body: VisitorIn, now: datetime) -> dict[str, object]:
    return {
        "name": body.name,
        "phone": body.phone,
        "org_type": body.org_type,
        "organisation": body.organisation,
        "villages": [v.model_dump() for v in body.villages],
        "language": body.language,
        "updated_at": now,
    }


async def _phone_taken(conn: AsyncConnection, phone: str, other_than: int | None = None) -> bool:
    query = sa.select(care_visitors.c.id).where(care_visitors.c.phone.in_(phone_forms(phone)))
    if other_than is not None:
        query = query.where(care_visitors.c.id != other_than)
    return (await conn.scalar(query.limit(1))) is not None


async def create_visitor(conn: AsyncConnection, body: VisitorIn, now: datetime) -> int:
    """Register a visitor; VisitorExists when the phone is another visitor's."""
    if await _phone_taken(conn, body.phone):
        raise VisitorExists
    result = await conn.execute(
        sa.insert(care_visitors)
        .values(created_at=now, **_columns(body, now))
        .returning(care_visitors.c.id)
    )
    return int(result.scalar_one())


async def list_visitors(
    conn: AsyncConnection, window: Window, *, covering: str | None = None
) -> Page[RegisteredVisitor]:
    """Registered visitors by id; `covering`: only those with a village in that township."""
    query = sa.select(care_visitors).order_by(care_visitors.c.id)
    if covering is not None:
        query = query.where(json_array_holds(conn, care_visitors.c.villages, "township", covering))
    return await fetch_page(conn, query, window, _visitor)


async def get_visitors(conn: AsyncConnection, ids: Sequence[int]) -> dict[int, RegisteredVisitor]:
    rows = await conn.execute(sa.select(care_visitors).where(care_visitors.c.id.in_(ids)))
    return {v.id: v for v in (_visitor(r) for r in rows)}


async def update_visitor(
    conn: AsyncConnection, before: RegisteredVisitor, body: VisitorIn, now: datetime
) -> list[str]:
    """Replace a visitor's entry, and their name, phone and language on the elders they are
    assigned to. Returns the ids of those households."""
    if await _phone_taken(conn, body.phone, other_than=before.id):
        raise VisitorExists
    await conn.execute(
        sa.update(care_visitors)
        .where(care_visitors.c.id == before.id)
        .values(**_columns(body, now))
    )
    assigned = visitor_assignments(before.phone)
    ids = sorted(
        set((await conn.scalars(sa.select(contacts.c.household_id).where(assigned))).all())
    )
    await conn.execute(
        sa.update(contacts)
        .where(assigned)
        .values(name=body.name, phone=body.phone, language=body.language)
    )
    return ids


async def delete_visitor(conn: AsyncConnection, visitor: RegisteredVisitor) -> None:
    """Remove a visitor from the registry; VisitorAssigned while they still have elders."""
    found = await conn.scalar(
        sa.select(sa.func.count()).select_from(contacts).where(visitor_assignments(visitor.phone))
    )
    if found:
        raise VisitorAssigned(found)
    await conn.execute(sa.delete(care_visitors).where(care_visitors.c.id == visitor.id))


async def assign_visitors(
    conn: AsyncConnection, household_id: str, visitors: Sequence[RegisteredVisitor]
) -> None:
    """Make `visitors`, in this order, the household's visitors (replacing the ones it had)."""
    await conn.execute(
        sa.delete(contacts).where(
            contacts.c.household_id == household_id, contacts.c.role == "visitor"
        )
    )
    if visitors:
        await conn.execute(
            sa.insert(contacts),
            [
                contact_row(
                    household_id, "visitor", i, name=v.name, phone=v.phone, language=v.language
                )
                for i, v in enumerate(visitors)
            ],
        )


@dataclass(frozen=True, slots=True)
class Assignment:
    household_id: str
    elder_name: str
    village: str


async def assigned_households(
    conn: AsyncConnection, phone: str, scope: sa.ColumnElement[bool]
) -> list[Assignment]:
    """The households a phone is assigned to as visitor, within `scope` (on households.id)."""
    rows = await conn.execute(
        sa.select(households.c.id, households.c.elder_name, households.c.village)
        .where(households.c.id.in_(households_visited_by(phone)))
        .where(scope)
        .order_by(households.c.id)
    )
    return [Assignment(r.id, r.elder_name, r.village) for r in rows]
