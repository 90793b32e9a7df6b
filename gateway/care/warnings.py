"""Emergency warnings: issued to an area, every elder there accounted for by their visitors.

Issuing one is a single transaction: the warning, a pending check for every elder of the area
who is in the programme (numbered 1..N, by village then name, so an SMS reply can name them),
and one SMS per visitor listing their elders there, queued in the notifications table for the
dispatcher. Visitors then mark each elder checked, safe or moved to shelter, by the API or by
replying to the SMS (`warning_sms`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.alerts.messages import format_time
from gateway.alerts.notifiers.base import Purpose
from gateway.alerts.outbox import queue_message
from gateway.care.phones import normalise_phone
from gateway.care.warning_replies import Mark
from gateway.care.warning_texts import ElderLine, Kind, Level, language_of, warning_messages
from gateway.store.care_tables import warning_checks, warnings
from gateway.store.changes import note_warning
from gateway.store.paging import Page, Window, fetch_page
from gateway.store.tables import contacts, households

CheckStatus = Literal["pending", "checked", "safe", "shelter"]
STATUSES: tuple[CheckStatus, ...] = ("pending", "checked", "safe", "shelter")


@dataclass(frozen=True, slots=True)
class WarningSpec:
    """What an operator issues: the warning and its area (villages empty: the township)."""

    title: str
    body: str
    kind: Kind
    level: Level
    township: str
    county: str = ""
    villages: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EmergencyWarning:
    id: int
    title: str
    body: str
    kind: Kind
    level: Level
    county: str
    township: str
    villages: list[str]
    issued_at: datetime
    issued_by: str
    closed_at: datetime | None


@dataclass(frozen=True, slots=True)
class VisitorContact:
    name: str
    phone: str
    language: str | None


@dataclass(frozen=True, slots=True)
class Check:
    """Where one elder stands in a warning, with the visitors assigned to them now."""

    household_id: str
    number: int
    status: CheckStatus
    note: str
    updated_at: datetime | None
    updated_by: str | None
    elder: ElderLine
    visitors: list[VisitorContact] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Issued:
    warning: EmergencyWarning
    elders: int
    notified: int
    """Visitors sent the warning."""
    unreached: list[str]
    """Elders with no visitor: nobody was told about them."""
    villages_without_elders: list[str]
    notification_ids: list[int]


class NoEldersInArea(Exception):
    """Nobody in the programme lives in the area (a misspelt township?)."""


def _warning(row: sa.Row[tuple[object, ...]]) -> EmergencyWarning:
    m = row._mapping
    return EmergencyWarning(
        id=m["id"],
        title=m["title"],
        body=m["body"],
        kind=m["kind"],
        level=m["level"],
        county=m["county"],
        township=m["township"],
        villages=list(m["villages"]),
        issued_at=m["issued_at"],
        issued_by=m["issued_by"],
        closed_at=m["closed_at"],
    )


async def _elders_in_area(
    conn: AsyncConnection, spec: WarningSpec, today: date
) -> list[sa.Row[Any, Any, Any, Any]]:
    query = sa.select(
        households.c.id,
        households.c.elder_name,
        households.c.village,
        households.c.address_detail,
    ).where(
        households.c.township == spec.township,
        sa.or_(households.c.left_on.is_(None), households.c.left_on > today),
    )
    if spec.county:
        query = query.where(households.c.county == spec.county)
    if spec.villages:
        query = query.where(households.c.village.in_(spec.villages))
    # Sorted here, not by the database, whose collation of Chinese names varies: the numbers
    # must not depend on where the data lives.
    return sorted((await conn.execute(query)).all(), key=lambda r: (r.village, r.elder_name, r.id))


async def visitors_of(
    conn: AsyncConnection, household_ids: Sequence[str]
) -> dict[str, list[VisitorContact]]:
    """Each household's visitors (contacts of role visitor), in their order."""
    found: dict[str, list[VisitorContact]] = {h: [] for h in household_ids}
    if not household_ids:
        return found
    rows = await conn.execute(
        sa.select(contacts.c.household_id, contacts.c.name, contacts.c.phone, contacts.c.language)
        .where(contacts.c.role == "visitor", contacts.c.household_id.in_(household_ids))
        .order_by(contacts.c.household_id, contacts.c.position, contacts.c.id)
    )
    for r in rows:
        found[r.household_id].append(VisitorContact(r.name, r.phone, r.language))
    return found


async def issue_warning(
    conn: AsyncConnection, spec: WarningSpec, *, by: str, now: datetime, zone: ZoneInfo
) -> Issued:
    """Record the warning and its checks and queue the visitors' SMS, in the caller's
    transaction; NoEldersInArea when nobody in the programme lives there."""
    elders = await _elders_in_area(conn, spec, now.astimezone(zone).date())
    if not elders:
        raise NoEldersInArea(spec.township)
    warning_id = await conn.scalar(
        sa.insert(warnings)
        .values(
            title=spec.title,
            body=spec.body,
            kind=spec.kind,
            level=spec.level,
            county=spec.county,
            township=spec.township,
            villages=list(spec.villages),
            issued_at=now,
            issued_by=by,
        )
        .returning(warnings.c.id)
    )
    assert isinstance(warning_id, int)
    lines = {
        e.id: ElderLine(n, e.elder_name, e.village, e.address_detail)
        for n, e in enumerate(elders, start=1)
    }
    await conn.execute(
        sa.insert(warning_checks),
        [
            {
                "warning_id": warning_id,
                "household_id": h,
                "number": line.number,
                "status": "pending",
            }
            for h, line in lines.items()
        ],
    )
    assigned = await visitors_of(conn, list(lines))
    # One message per person, however many of their elders or ways of writing their number.
    recipients: dict[str, tuple[VisitorContact, list[ElderLine]]] = {}
    for household_id, line in lines.items():
        for visitor in assigned[household_id]:
            key = normalise_phone(visitor.phone)
            contact, theirs = recipients.setdefault(key, (visitor, []))
            if contact.language is None and visitor.language is not None:
                recipients[key] = (visitor, theirs)
            if line not in theirs:
                theirs.append(line)
    ids: list[int] = []
    area = "、".join(spec.villages) or spec.township
    for contact, theirs in recipients.values():
        lang = language_of(contact.language)
        for sms in warning_messages(
            title=spec.title,
            body=spec.body,
            kind=spec.kind,
            level=spec.level,
            area=area,
            time=format_time(now, zone, lang),
            elders=theirs,
            lang=lang,
        ):
            ids.append(
                await queue_message(
                    conn,
                    purpose=Purpose.WARNING,
                    recipient_role="visitor",
                    name=contact.name,
                    phone=contact.phone,
                    body=sms.body,
                    language=lang,
                    reason=f"warning {warning_id}: {spec.kind} {spec.level}",
                    now=now,
                    fields=sms.fields,
                )
            )
    warning = await get_warning(conn, warning_id)
    assert warning is not None
    present = {e.village for e in elders}
    return Issued(
        warning=warning,
        elders=len(lines),
        notified=len(recipients),
        unreached=[h for h, people in assigned.items() if not people],
        villages_without_elders=[v for v in spec.villages if v not in present],
        notification_ids=ids,
    )


async def get_warning(conn: AsyncConnection, warning_id: int) -> EmergencyWarning | None:
    row = (await conn.execute(sa.select(warnings).where(warnings.c.id == warning_id))).first()
    return _warning(row) if row is not None else None


async def list_warnings(
    conn: AsyncConnection,
    *,
    township: str | None = None,
    households_in: sa.Select[tuple[str]] | None = None,
    open_only: bool = False,
    window: Window,
) -> Page[EmergencyWarning]:
    """Warnings, newest first: of a township, or with a check for one of `households_in`."""
    query = sa.select(warnings).order_by(warnings.c.id.desc())
    if township is not None:
        query = query.where(warnings.c.township == township)
    if households_in is not None:
        query = query.where(
            warnings.c.id.in_(
                sa.select(warning_checks.c.warning_id).where(
                    warning_checks.c.household_id.in_(households_in)
                )
            )
        )
    if open_only:
        query = query.where(warnings.c.closed_at.is_(None))
    return await fetch_page(conn, query, window, _warning)


async def checks_of(
    conn: AsyncConnection,
    warning_id: int,
    *,
    households_in: sa.Select[tuple[str]] | None = None,
    household_id: str | None = None,
) -> list[Check]:
    """The warning's checks in number order (only `households_in`'s, or `household_id`'s,
    when given), with the visitors each elder has now."""
    query = (
        sa.select(
            warning_checks,
            households.c.elder_name,
            households.c.village,
            households.c.address_detail,
        )
        .join(households, households.c.id == warning_checks.c.household_id)
        .where(warning_checks.c.warning_id == warning_id)
        .order_by(warning_checks.c.number)
    )
    if households_in is not None:
        query = query.where(warning_checks.c.household_id.in_(households_in))
    if household_id is not None:
        query = query.where(warning_checks.c.household_id == household_id)
    rows = (await conn.execute(query)).all()
    assigned = await visitors_of(conn, [r.household_id for r in rows])
    return [
        Check(
            household_id=r.household_id,
            number=r.number,
            status=r.status,
            note=r.note,
            updated_at=r.updated_at,
            updated_by=r.updated_by,
            elder=ElderLine(r.number, r.elder_name, r.village, r.address_detail),
            visitors=assigned[r.household_id],
        )
        for r in rows
    ]


async def mark(
    conn: AsyncConnection,
    warning_id: int,
    household_id: str,
    status: Mark,
    *,
    by: str,
    now: datetime,
    note: str | None = None,
) -> bool:
    """Record how an elder was found; False when the elder is not in the warning."""
    values: dict[str, object] = {"status": status, "updated_at": now, "updated_by": by[:100]}
    if note is not None:
        values["note"] = note
    result = await conn.execute(
        sa.update(warning_checks)
        .where(
            warning_checks.c.warning_id == warning_id,
            warning_checks.c.household_id == household_id,
        )
        .values(**values)
    )
    if result.rowcount != 1:
        return False
    note_warning(conn, warning_id, household_id)
    return True


async def close_warning(conn: AsyncConnection, warning_id: int, now: datetime) -> bool:
    """Close an open warning (replies no longer mark it); False if it was closed already."""
    result = await conn.execute(
        sa.update(warnings)
        .where(warnings.c.id == warning_id, warnings.c.closed_at.is_(None))
        .values(closed_at=now)
    )
    return result.rowcount == 1


def counts(checks: Sequence[Check]) -> dict[CheckStatus, int]:
    """How many elders stand at each status."""
    tally: dict[CheckStatus, int] = dict.fromkeys(STATUSES, 0)
    for c in checks:
        tally[c.status] += 1
    return tally
