"""Care services (the form's second table) and referrals of the needs a visit found."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.care.visit_form import ReferralIn, ReferralStatus, Satisfaction, ServiceIn
from gateway.store.care_tables import care_services, referrals
from gateway.store.paging import Page, Window, fetch_page
from gateway.store.visits import lock_rows, next_seq


@dataclass(frozen=True, slots=True)
class CareService:
    id: int
    household_id: str
    seq: int
    served_on: date
    service: str
    provider: str
    satisfaction: Satisfaction
    created_at: datetime
    created_by: str


async def add_service(
    conn: AsyncConnection, household_id: str, body: ServiceIn, *, now: datetime, by: str
) -> CareService:
    """File a care service, numbered the n-th of its household."""
    values: dict[str, Any] = {
        "household_id": household_id,
        "seq": await next_seq(conn, care_services, household_id),
        "served_on": body.served_on,
        "service": body.service,
        "provider": body.provider,
        "satisfaction": body.satisfaction.value,
        "created_at": now,
        "created_by": by[:100],
    }
    result = await conn.execute(
        sa.insert(care_services).values(**values).returning(care_services.c.id)
    )
    return CareService(id=int(result.scalar_one()), **{**values, "satisfaction": body.satisfaction})


def _services_of(household_id: str) -> sa.Select[Any]:
    return (
        sa.select(care_services)
        .where(care_services.c.household_id == household_id)
        .order_by(care_services.c.seq)
    )


def _service(r: sa.Row[Any]) -> CareService:
    return CareService(
        id=r.id,
        household_id=r.household_id,
        seq=r.seq,
        served_on=r.served_on,
        service=r.service,
        provider=r.provider,
        satisfaction=Satisfaction(r.satisfaction),
        created_at=r.created_at,
        created_by=r.created_by,
    )


async def household_services(conn: AsyncConnection, household_id: str) -> list[CareService]:
    """All of a household's care services in number order (the form's table)."""
    return [_service(r) for r in await conn.execute(_services_of(household_id))]


async def list_services(
    conn: AsyncConnection, household_id: str, window: Window
) -> Page[CareService]:
    """A window of a household's care services in number order."""
    return await fetch_page(conn, _services_of(household_id), window, _service)


@dataclass(frozen=True, slots=True)
class Referral:
    id: int
    household_id: str
    visit_id: int | None
    need: str
    referred_to: str
    status: ReferralStatus
    due_on: date | None
    history: list[dict[str, Any]]
    """Follow-ups, oldest first: {"at", "by", "status", "note"}."""
    created_at: datetime
    created_by: str
    updated_at: datetime


def _referral(r: Any) -> Referral:
    return Referral(
        id=r.id,
        household_id=r.household_id,
        visit_id=r.visit_id,
        need=r.need,
        referred_to=r.referred_to,
        status=ReferralStatus(r.status),
        due_on=r.due_on,
        history=list(r.history),
        created_at=r.created_at,
        created_by=r.created_by,
        updated_at=r.updated_at,
    )


async def add_referral(
    conn: AsyncConnection, household_id: str, body: ReferralIn, *, now: datetime, by: str
) -> Referral:
    """Refer a need: open until someone follows it up."""
    result = await conn.execute(
        sa.insert(referrals)
        .values(
            household_id=household_id,
            visit_id=body.visit_id,
            need=body.need,
            referred_to=body.referred_to,
            status=ReferralStatus.OPEN.value,
            due_on=body.due_on,
            history=[],
            created_at=now,
            created_by=by[:100],
            updated_at=now,
        )
        .returning(referrals.c.id)
    )
    found = await get_referral(conn, int(result.scalar_one()))
    assert found is not None
    return found


async def get_referral(
    conn: AsyncConnection, referral_id: int, where: sa.ColumnElement[bool] | None = None
) -> Referral | None:
    """A referral by id, when it also matches `where` (the caller's scope)."""
    query = sa.select(referrals).where(referrals.c.id == referral_id)
    if where is not None:
        query = query.where(where)
    row = (await conn.execute(query)).first()
    return _referral(row) if row is not None else None


async def list_referrals(
    conn: AsyncConnection,
    *,
    where: sa.ColumnElement[bool] | None = None,
    status: ReferralStatus | None = None,
    window: Window,
) -> Page[Referral]:
    """Referrals matching `where` and `status`, the oldest due first, then the oldest made."""
    query = sa.select(referrals).order_by(referrals.c.due_on.asc().nulls_last(), referrals.c.id)
    if where is not None:
        query = query.where(where)
    if status is not None:
        query = query.where(referrals.c.status == status.value)
    return await fetch_page(conn, query, window, _referral)


async def follow_up(
    conn: AsyncConnection,
    referral: Referral,
    status: ReferralStatus,
    note: str,
    *,
    now: datetime,
    by: str,
) -> Referral:
    """Append a follow-up to a referral's history and take its status."""
    entry = {"at": now.isoformat(), "by": by[:100], "status": status.value, "note": note}
    # The row is locked while its history is rewritten, so two follow-ups at once keep both.
    await lock_rows(conn, referrals, referrals.c.id == referral.id)
    current = await conn.scalar(sa.select(referrals.c.history).where(referrals.c.id == referral.id))
    await conn.execute(
        sa.update(referrals)
        .where(referrals.c.id == referral.id)
        .values(history=[*(current or []), entry], status=status.value, updated_at=now)
    )
    updated = await get_referral(conn, referral.id)
    assert updated is not None
    return updated
