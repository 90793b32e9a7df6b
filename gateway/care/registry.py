"""The registry's changes: replace and erase a household, find households, say what changed.

Pydantic checks a registry's shape; what depends on today (no date in the future) is checked
here, with the day the caller's clock gives, so rules and tests share one notion of now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.care.households import (
    Household,
    HouseholdFields,
    contact_rows,
    get_households,
    registry_columns,
)
from gateway.care.profile import birth_date
from gateway.store.paging import Page, Window, fetch_page
from gateway.store.tables import alerts, contacts, device_state, households, readings, visits

FUTURE = "date_in_future"
"""The `type` of a 422 error for a date after today."""


def future_dates(body: HouseholdFields, today: date) -> list[dict[str, Any]]:
    """Errors (FastAPI's shape, `loc` inside the body) for every date after `today`: the
    programme dates and the birth dates in citizen ID numbers."""
    found: list[tuple[tuple[str | int, ...], date | None]] = [
        (("registered_on",), body.registered_on),
        (("left_on",), body.left_on),
    ]
    if body.elder.citizen_id:
        found.append((("elder", "citizen_id"), birth_date(body.elder.citizen_id)))
    for i, member in enumerate(body.members):
        if member.citizen_id:
            found.append((("members", i, "citizen_id"), birth_date(member.citizen_id)))
    return [
        {"loc": list(loc), "msg": "must not be in the future", "type": FUTURE}
        for loc, day in found
        if day is not None and day > today
    ]


def registry_view(h: Household) -> dict[str, Any]:
    """A stored household in the shape of `HouseholdFields.model_dump(mode="json")`."""
    p = h.profile
    return {
        "elder": {
            "name": h.elder_name,
            "phone": h.elder_phone,
            "citizen_id": h.citizen_id,
            "sex": p.sex,
        },
        "address": h.address.model_dump(mode="json"),
        "visitors": [
            {"name": c.name, "phone": c.phone, "language": c.language} for c in h.visitors
        ],
        "relatives": [
            {"name": c.name, "phone": c.phone, "relation": c.relation, "language": c.language}
            for c in h.relatives
        ],
        "timezone": h.timezone,
        "categories": p.categories.model_dump(mode="json"),
        "members": [m.model_dump(mode="json") for m in p.members],
        "living": p.living.model_dump(mode="json"),
        "support": p.support.model_dump(mode="json"),
        "risk": h.risk,
        "registered_on": h.registered_on.isoformat() if h.registered_on else None,
        "left_on": h.left_on.isoformat() if h.left_on else None,
        "left_reason": h.left_reason,
    }


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The names of the fields that differ ("elder.phone", "members"): the audit log records
    what changed, never the values (they are personal data)."""
    names = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            names += [f"{key}.{k}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        elif old != new:
            names.append(key)
    return names


async def replace_household(
    conn: AsyncConnection, household_id: str, body: HouseholdFields, now: datetime
) -> None:
    """Replace a household's registry and contacts (its devices, alerts and visits stay)."""
    await conn.execute(
        sa.update(households)
        .where(households.c.id == household_id)
        .values(**registry_columns(body, now))
    )
    await conn.execute(sa.delete(contacts).where(contacts.c.household_id == household_id))
    rows = contact_rows(household_id, body)
    if rows:
        await conn.execute(sa.insert(contacts), rows)


class HouseholdHasRecords(Exception):
    """A household with alerts, visits or readings is not erased: it leaves (left_on)."""


async def delete_household(conn: AsyncConnection, household_id: str) -> None:
    """Erase a household registered by mistake, with its contacts, devices and settings.

    One with a history (readings, alerts, visits) raises HouseholdHasRecords: those records
    are the programme's evidence, and a running detector may hold its alerts in memory.
    """
    for table in (alerts, visits, readings):
        found = await conn.scalar(
            sa.select(table.c.household_id).where(table.c.household_id == household_id).limit(1)
        )
        if found is not None:
            raise HouseholdHasRecords(table.name)
    # Contacts, devices, rule settings, away periods go with it (ON DELETE CASCADE; the
    # engine turns foreign keys on in SQLite too); device_state has no foreign key.
    await conn.execute(sa.delete(device_state).where(device_state.c.household_id == household_id))
    await conn.execute(sa.delete(households).where(households.c.id == household_id))


@dataclass(frozen=True, slots=True)
class AreaFilter:
    """What a list or an export asks for, on top of the caller's scope."""

    county: str | None = None
    township: str | None = None
    village: str | None = None
    name_contains: str | None = None
    active: bool | None = None
    """True: still in the programme (no left_on); False: left; None: both."""

    def clause(self) -> sa.ColumnElement[bool]:
        parts: list[sa.ColumnElement[bool]] = []
        if self.county is not None:
            parts.append(households.c.county == self.county)
        if self.township is not None:
            parts.append(households.c.township == self.township)
        if self.village is not None:
            parts.append(households.c.village == self.village)
        if self.name_contains:
            parts.append(households.c.elder_name.contains(self.name_contains, autoescape=True))
        if self.active is True:
            parts.append(households.c.left_on.is_(None))
        elif self.active is False:
            parts.append(households.c.left_on.is_not(None))
        return sa.and_(sa.true(), *parts)


async def find_households(
    conn: AsyncConnection, scope: sa.ColumnElement[bool], wanted: AreaFilter
) -> list[Household]:
    """The households within `scope` (a clause on households.id) that match `wanted`."""
    return await get_households(conn, where=sa.and_(scope, wanted.clause()))


async def page_households(
    conn: AsyncConnection, scope: sa.ColumnElement[bool], wanted: AreaFilter, window: Window
) -> Page[Household]:
    """One window, in id order, of the households `find_households` gives, and their total.

    Only the window's ids are read first: the registries and contacts of a county's whole
    list are never loaded to answer one page.
    """
    ids = sa.select(households.c.id).where(scope, wanted.clause()).order_by(households.c.id)
    page = await fetch_page(conn, ids, window, lambda row: str(row.id))
    return Page(await get_households(conn, page.items), page.total)
