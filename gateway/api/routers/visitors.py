"""The visitors' registry (staff only) and the assignment of registered visitors to an elder.

An operator sees and manages the visitors who cover a village of their township.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.api.auth import Principal
from gateway.api.deps import Context, ReadConn, RowId
from gateway.api.paging import PAGED_RESPONSE, PageQuery
from gateway.api.scope import StaffUser, VisibleHousehold, in_scope
from gateway.api.strict_json import StrictJsonRoute
from gateway.care import audit
from gateway.care.visitors import (
    RegisteredVisitor,
    Village,
    VisitorAssigned,
    VisitorExists,
    VisitorIn,
    assign_visitors,
    assigned_households,
    create_visitor,
    delete_visitor,
    get_visitors,
    list_visitors,
    update_visitor,
)
from gateway.privacy import mask_phone
from gateway.store.tables import households

router = APIRouter(prefix="/api", tags=["visitors"], route_class=StrictJsonRoute)


class VisitorOut(BaseModel):
    id: int
    name: str
    phone: str
    """Masked in the list, whole on the visitor's own page."""
    org_type: str
    organisation: str
    villages: list[Village]
    language: str | None
    created_at: datetime
    updated_at: datetime


class AssignedOut(BaseModel):
    household_id: str
    elder_name: str
    village: str


class VisitorPage(VisitorOut):
    households: list[AssignedOut]
    """The elders assigned to this visitor's phone that the caller may see."""


class AssignmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    visitor_ids: Annotated[list[Annotated[int, Field(ge=1)]], Field(max_length=20)]
    """Registered visitors, in the order they are called."""

    @field_validator("visitor_ids")
    @classmethod
    def _each_once(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError("a visitor is listed twice")
        return value


def _out(v: RegisteredVisitor, whole: bool) -> dict[str, object]:
    return {
        "id": v.id,
        "name": v.name,
        "phone": v.phone if whole else mask_phone(v.phone),
        "org_type": v.org_type,
        "organisation": v.organisation,
        "villages": v.villages,
        "language": v.language,
        "created_at": v.created_at,
        "updated_at": v.updated_at,
    }


def _manages(user: Principal, visitor: RegisteredVisitor) -> bool:
    return user.role == "admin" or visitor.covers(user.township or "")


def _check_villages(user: Principal, body: VisitorIn) -> None:
    """An operator registers visitors for villages of their own township only."""
    if user.role == "operator" and any(v.township != user.township for v in body.villages):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "an operator may assign villages of their township only"
        )


async def _visible(conn: ReadConn, user: Principal, visitor_id: int) -> RegisteredVisitor:
    visitor = (await get_visitors(conn, [visitor_id])).get(visitor_id)
    if visitor is None or not _manages(user, visitor):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"visitor {visitor_id} not found")
    return visitor


@router.get("/visitors", response_model=list[VisitorOut], responses=PAGED_RESPONSE)
async def list_all(conn: ReadConn, user: StaffUser, pages: PageQuery) -> list[VisitorOut]:
    """The visitors the caller manages, by id (phones masked)."""
    covering = None if user.role == "admin" else (user.township or "")
    found = await list_visitors(conn, pages.window, covering=covering)
    return [VisitorOut.model_validate(_out(v, whole=False)) for v in pages.answer(found)]


@router.post("/visitors", status_code=status.HTTP_201_CREATED, response_model=VisitorOut)
async def create(body: VisitorIn, context: Context, user: StaffUser) -> VisitorOut:
    """Register a visitor: name, phone, organisation and the villages they cover."""
    _check_villages(user, body)
    now = context.clock.now()
    try:
        async with context.db.begin() as conn:
            visitor_id = await create_visitor(conn, body, now)
            await audit.record(
                conn, user.actor, "visitor.create", now=now, target=f"visitor {visitor_id}"
            )
            created = (await get_visitors(conn, [visitor_id]))[visitor_id]
    except VisitorExists:
        raise HTTPException(
            status.HTTP_409_CONFLICT, "a visitor with this phone is registered"
        ) from None
    return VisitorOut.model_validate(_out(created, whole=False))


@router.get("/visitors/{visitor_id}", response_model=VisitorPage)
async def get_one(visitor_id: RowId, conn: ReadConn, user: StaffUser) -> VisitorPage:
    """A visitor with the elders assigned to them (those within the caller's scope)."""
    visitor = await _visible(conn, user, visitor_id)
    assigned = await assigned_households(conn, visitor.phone, in_scope(user, households.c.id))
    return VisitorPage.model_validate(
        {
            **_out(visitor, whole=True),
            "households": [
                AssignedOut(household_id=a.household_id, elder_name=a.elder_name, village=a.village)
                for a in assigned
            ],
        }
    )


@router.put("/visitors/{visitor_id}", response_model=VisitorOut)
async def replace(
    visitor_id: RowId, body: VisitorIn, context: Context, user: StaffUser
) -> VisitorOut:
    """Replace a visitor's entry; the elders they are assigned to get the new name and phone."""
    _check_villages(user, body)
    now = context.clock.now()
    try:
        async with context.db.begin() as conn:
            before = await _visible(conn, user, visitor_id)
            touched = await update_visitor(conn, before, body, now)
            await audit.record(
                conn,
                user.actor,
                "visitor.update",
                now=now,
                target=f"visitor {visitor_id}",
                details={"households": touched},
            )
            after = (await get_visitors(conn, [visitor_id]))[visitor_id]
    except VisitorExists:
        raise HTTPException(
            status.HTTP_409_CONFLICT, "a visitor with this phone is registered"
        ) from None
    for household_id in touched:
        await context.household_changed(household_id)
    return VisitorOut.model_validate(_out(after, whole=False))


@router.delete("/visitors/{visitor_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove(visitor_id: RowId, context: Context, user: StaffUser) -> None:
    """Remove a visitor from the registry (409 while they are assigned to elders)."""
    now = context.clock.now()
    try:
        async with context.db.begin() as conn:
            visitor = await _visible(conn, user, visitor_id)
            await delete_visitor(conn, visitor)
            await audit.record(
                conn, user.actor, "visitor.delete", now=now, target=f"visitor {visitor_id}"
            )
    except VisitorAssigned as exc:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"the visitor is assigned to {exc.args[0]} households: assign others first",
        ) from None


@router.put("/households/{household_id}/visitors", response_model=list[VisitorOut])
async def assign(
    household_id: VisibleHousehold, body: AssignmentIn, context: Context, user: StaffUser
) -> list[VisitorOut]:
    """Make these registered visitors, in this order, the elder's visitors."""
    now = context.clock.now()
    async with context.db.begin() as conn:
        found = await get_visitors(conn, body.visitor_ids)
        unknown = [
            {"loc": ["body", "visitor_ids", i], "msg": "no such visitor", "type": "not_found"}
            for i, v in enumerate(body.visitor_ids)
            if v not in found or not _manages(user, found[v])
        ]
        if unknown:
            raise RequestValidationError(unknown)
        chosen = [found[v] for v in body.visitor_ids]
        await assign_visitors(conn, household_id, chosen)
        await audit.record(
            conn,
            user.actor,
            "household.assign_visitors",
            now=now,
            household_id=household_id,
            details={"visitor_ids": body.visitor_ids},
        )
    await context.household_changed(household_id)
    return [VisitorOut.model_validate(_out(v, whole=False)) for v in chosen]
