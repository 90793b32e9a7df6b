"""Care services given to an elder, and referrals of the needs found on visits, followed up."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel

from gateway.api.deps import Context, CurrentUser, ReadConn
from gateway.api.field_errors import invalid
from gateway.api.paging import PAGED_RESPONSE, PageQuery
from gateway.api.scope import VisibleHousehold, VisibleReferral, in_scope
from gateway.api.strict_json import StrictJsonRoute
from gateway.care import audit
from gateway.care.services import (
    CareService,
    Referral,
    add_referral,
    add_service,
    follow_up,
    get_referral,
    list_referrals,
    list_services,
)
from gateway.care.visit_form import (
    FollowUpIn,
    ReferralIn,
    ReferralStatus,
    Satisfaction,
    ServiceIn,
)
from gateway.privacy import mask_personal_data
from gateway.store.care_tables import referrals
from gateway.store.visits import get_visit

router = APIRouter(prefix="/api", tags=["care services"], route_class=StrictJsonRoute)


class ServiceOut(BaseModel):
    id: int
    seq: int
    """The n-th service to this household."""
    served_on: date
    service: str
    provider: str
    satisfaction: Satisfaction
    entered_by: str
    created_at: datetime


class FollowUpOut(BaseModel):
    at: datetime
    by: str
    status: ReferralStatus
    note: str


class ReferralOut(BaseModel):
    id: int
    household_id: str
    visit_id: int | None
    need: str
    referred_to: str
    status: ReferralStatus
    due_on: date | None
    history: list[FollowUpOut]
    created_at: datetime
    created_by: str
    updated_at: datetime


def _service_out(s: CareService) -> ServiceOut:
    return ServiceOut(
        id=s.id,
        seq=s.seq,
        served_on=s.served_on,
        service=mask_personal_data(s.service),
        provider=s.provider,
        satisfaction=s.satisfaction,
        entered_by=s.created_by,
        created_at=s.created_at,
    )


def _referral_out(r: Referral) -> ReferralOut:
    history: list[dict[str, Any]] = [
        {**entry, "note": mask_personal_data(str(entry.get("note", "")))} for entry in r.history
    ]
    return ReferralOut(
        id=r.id,
        household_id=r.household_id,
        visit_id=r.visit_id,
        need=mask_personal_data(r.need),
        referred_to=mask_personal_data(r.referred_to),
        status=r.status,
        due_on=r.due_on,
        history=[FollowUpOut.model_validate(entry) for entry in history],
        created_at=r.created_at,
        created_by=r.created_by,
        updated_at=r.updated_at,
    )


@router.post(
    "/households/{household_id}/services",
    status_code=status.HTTP_201_CREATED,
    response_model=ServiceOut,
)
async def create_service(
    household_id: VisibleHousehold, body: ServiceIn, context: Context, user: CurrentUser
) -> ServiceOut:
    """File a care service given to the elder, with their satisfaction; numbered the n-th."""
    now = context.clock.now()
    if body.served_on > now.astimezone(context.zone).date():
        raise invalid(("body", "served_on"), "served_on is in the future")
    async with context.db.begin() as conn:
        service = await add_service(conn, household_id, body, now=now, by=user.name)
        await audit.record(
            conn,
            user.actor,
            "service.create",
            now=now,
            household_id=household_id,
            target=f"service {service.id}",
            details={"seq": service.seq, "satisfaction": service.satisfaction.value},
        )
    return _service_out(service)


@router.get(
    "/households/{household_id}/services",
    response_model=list[ServiceOut],
    responses=PAGED_RESPONSE,
)
async def get_services(
    household_id: VisibleHousehold, conn: ReadConn, pages: PageQuery
) -> list[ServiceOut]:
    """A household's care services in number order."""
    found = await list_services(conn, household_id, pages.window)
    return [_service_out(s) for s in pages.answer(found)]


@router.post(
    "/households/{household_id}/referrals",
    status_code=status.HTTP_201_CREATED,
    response_model=ReferralOut,
)
async def create_referral(
    household_id: VisibleHousehold, body: ReferralIn, context: Context, user: CurrentUser
) -> ReferralOut:
    """Refer a need found on a visit to whoever can meet it; it stays open until followed up."""
    now = context.clock.now()
    async with context.db.begin() as conn:
        if body.visit_id is not None and await get_visit(conn, household_id, body.visit_id) is None:
            raise invalid(("body", "visit_id"), "visit_id is not one of this household's visits")
        referral = await add_referral(conn, household_id, body, now=now, by=user.name)
        await audit.record(
            conn,
            user.actor,
            "referral.create",
            now=now,
            household_id=household_id,
            target=f"referral {referral.id}",
            details={"visit_id": referral.visit_id},
        )
    return _referral_out(referral)


@router.get(
    "/households/{household_id}/referrals",
    response_model=list[ReferralOut],
    responses=PAGED_RESPONSE,
)
async def get_household_referrals(
    household_id: VisibleHousehold, conn: ReadConn, pages: PageQuery
) -> list[ReferralOut]:
    """A household's referrals, the oldest due first."""
    found = await list_referrals(
        conn, where=referrals.c.household_id == household_id, window=pages.window
    )
    return [_referral_out(r) for r in pages.answer(found)]


@router.get("/referrals", response_model=list[ReferralOut], responses=PAGED_RESPONSE)
async def get_referrals(
    conn: ReadConn,
    user: CurrentUser,
    pages: PageQuery,
    status_: Annotated[ReferralStatus | None, Query(alias="status")] = None,
) -> list[ReferralOut]:
    """Referrals of the households the caller sees (`status=open`: the follow-up list)."""
    found = await list_referrals(
        conn, where=in_scope(user, referrals.c.household_id), status=status_, window=pages.window
    )
    return [_referral_out(r) for r in pages.answer(found)]


@router.post("/referrals/{referral_id}/follow-ups", response_model=ReferralOut)
async def add_follow_up(
    referral_id: VisibleReferral, body: FollowUpIn, context: Context, user: CurrentUser
) -> ReferralOut:
    """Follow a referral up: the note joins its history and its status changes."""
    now = context.clock.now()
    async with context.db.begin() as conn:
        referral = await get_referral(conn, referral_id, in_scope(user, referrals.c.household_id))
        if referral is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"referral {referral_id} not found")
        updated = await follow_up(
            conn, referral, ReferralStatus(body.status), body.note, now=now, by=user.name
        )
        await audit.record(
            conn,
            user.actor,
            "referral.follow_up",
            now=now,
            household_id=referral.household_id,
            target=f"referral {referral_id}",
            details={"from": referral.status.value, "to": updated.status.value},
        )
    return _referral_out(updated)
