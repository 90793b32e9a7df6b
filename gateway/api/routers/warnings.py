"""Emergency warnings: issued to an area by staff, each elder there accounted for by visitors.

Who sees what: an admin every warning; an operator their township's (issuing to another is
403, reading one 404); a visitor the warnings with elders assigned to them, and only those
elders. Phone numbers in answers are masked.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.api.auth import Principal
from gateway.api.deps import Context, CurrentUser, ReadConn, RowId
from gateway.api.field_errors import invalid
from gateway.api.paging import PAGED_RESPONSE, PageQuery
from gateway.api.scope import StaffUser, can_see, visible_households
from gateway.api.strict_json import StrictJsonRoute
from gateway.care import audit
from gateway.care.warning_replies import Mark
from gateway.care.warning_texts import Kind, Level
from gateway.care.warnings import (
    Check,
    CheckStatus,
    EmergencyWarning,
    NoEldersInArea,
    WarningSpec,
    checks_of,
    close_warning,
    counts,
    get_warning,
    issue_warning,
    list_warnings,
    mark,
)
from gateway.privacy import mask_personal_data, mask_phone

router = APIRouter(prefix="/api/warnings", tags=["warnings"], route_class=StrictJsonRoute)

Place = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]


class WarningIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
    body: Annotated[str, StringConstraints(min_length=1, max_length=1000, strip_whitespace=True)]
    kind: Kind
    level: Level
    county: Place | None = None
    township: Place
    villages: list[Place] = Field(default_factory=list, max_length=200)
    """Villages of the township it covers; empty: the whole township."""


class WarningOut(BaseModel):
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


class IssuedOut(WarningOut):
    elders: int
    """Elders of the area in the programme: one check each."""
    visitors_notified: int
    unreached: list[str]
    """Households with no visitor: nobody was told about these elders; act on them."""
    villages_without_elders: list[str]
    """Villages asked for where nobody in the programme lives (a misspelling?)."""


class VisitorOut(BaseModel):
    name: str
    phone: str
    """Masked."""


class ElderOut(BaseModel):
    household_id: str
    number: int
    name: str
    village: str
    address_detail: str
    status: CheckStatus
    note: str
    updated_at: datetime | None
    updated_by: str | None
    visitors: list[VisitorOut]
    no_visitor: bool
    """Nobody was sent the warning for this elder: the operator must act."""


class WarningDetail(WarningOut):
    counts: dict[CheckStatus, int]
    pending: list[ElderOut]
    """Not yet accounted for, in number order."""
    no_visitor: list[ElderOut]
    """Pending elders that no visitor was told about."""
    elders: list[ElderOut]
    """Every elder of the warning the caller may see."""


class CheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    household_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    status: Mark
    note: Annotated[str, StringConstraints(max_length=500, strip_whitespace=True)] | None = None


def _out(w: EmergencyWarning) -> dict[str, object]:
    return {
        "id": w.id,
        "title": w.title,
        "body": w.body,
        "kind": w.kind,
        "level": w.level,
        "county": w.county,
        "township": w.township,
        "villages": w.villages,
        "issued_at": w.issued_at,
        "issued_by": w.issued_by,
        "closed_at": w.closed_at,
    }


def _elder(c: Check) -> ElderOut:
    return ElderOut(
        household_id=c.household_id,
        number=c.number,
        name=c.elder.name,
        village=c.elder.village,
        address_detail=mask_personal_data(c.elder.address_detail),
        status=c.status,
        note=mask_personal_data(c.note),
        updated_at=c.updated_at,
        updated_by=c.updated_by,
        visitors=[VisitorOut(name=v.name, phone=mask_phone(v.phone)) for v in c.visitors],
        no_visitor=not c.visitors,
    )


def _may_see(user: Principal, warning: EmergencyWarning) -> bool:
    """Operators: their township's warnings (visitors are judged by their elders in it)."""
    return user.role != "operator" or warning.township == user.township


async def _visible(conn: AsyncConnection, user: Principal, warning_id: int) -> EmergencyWarning:
    """The warning when the caller may see it (a visitor: it has elders of theirs); 404."""
    warning = await get_warning(conn, warning_id)
    if (
        warning is not None
        and _may_see(user, warning)
        and (
            user.role != "visitor"
            or await checks_of(conn, warning_id, households_in=visible_households(user))
        )
    ):
        return warning
    raise HTTPException(status.HTTP_404_NOT_FOUND, f"warning {warning_id} not found")


async def _visible_warning(warning_id: RowId, conn: ReadConn, user: CurrentUser) -> int:
    await _visible(conn, user, warning_id)
    return warning_id


VisibleWarning = Annotated[int, Depends(_visible_warning)]
"""A warning id from the path the caller may see: 404 before a body is judged (a 422 would
tell that the warning exists)."""


@router.post("", status_code=status.HTTP_201_CREATED, response_model=IssuedOut)
async def issue(body: WarningIn, context: Context, user: StaffUser) -> IssuedOut:
    """Issue a warning to a township (or some of its villages): every visitor with elders
    there is sent an SMS naming them, and each elder is pending until accounted for."""
    if user.role == "operator" and body.township != user.township:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "an operator issues warnings to their own township only"
        )
    now = context.clock.now()
    spec = WarningSpec(
        title=body.title,
        body=body.body,
        kind=body.kind,
        level=body.level,
        township=body.township,
        county=body.county or "",
        villages=tuple(dict.fromkeys(body.villages)),
    )
    try:
        async with context.db.begin() as conn:
            issued = await issue_warning(conn, spec, by=user.name, now=now, zone=context.zone)
            await audit.record(
                conn,
                user.actor,
                "warning.issue",
                now=now,
                target=f"warning {issued.warning.id}",
                details={
                    "title": spec.title,
                    "kind": spec.kind,
                    "level": spec.level,
                    "township": spec.township,
                    "villages": list(spec.villages),
                    "elders": issued.elders,
                    "visitors_notified": issued.notified,
                },
            )
    except NoEldersInArea:
        field = "villages" if spec.villages else "township"
        raise invalid(["body", field], "no elder in the programme lives in this area") from None
    context.send_now(issued.notification_ids)
    return IssuedOut.model_validate(
        {
            **_out(issued.warning),
            "elders": issued.elders,
            "visitors_notified": issued.notified,
            "unreached": issued.unreached,
            "villages_without_elders": issued.villages_without_elders,
        }
    )


@router.get("", response_model=list[WarningOut], responses=PAGED_RESPONSE)
async def list_all(
    conn: ReadConn,
    user: CurrentUser,
    pages: PageQuery,
    open_only: Annotated[bool, Query(alias="open", description="only warnings not closed")] = False,
) -> list[WarningOut]:
    """Warnings, newest first: an operator's township's, a visitor's with elders of theirs."""
    found = await list_warnings(
        conn,
        township=(user.township or "") if user.role == "operator" else None,
        households_in=visible_households(user) if user.role == "visitor" else None,
        open_only=open_only,
        window=pages.window,
    )
    return [WarningOut.model_validate(_out(w)) for w in pages.answer(found)]


@router.get("/{warning_id}", response_model=WarningDetail)
async def detail(warning_id: RowId, conn: ReadConn, user: CurrentUser) -> WarningDetail:
    """Where the warning stands now: counts by status and who is not yet accounted for."""
    warning = await _visible(conn, user, warning_id)
    checks = await checks_of(conn, warning_id, households_in=visible_households(user))
    elders = [_elder(c) for c in checks]
    pending = [e for e in elders if e.status == "pending"]
    return WarningDetail.model_validate(
        {
            **_out(warning),
            "counts": counts(checks),
            "pending": pending,
            "no_visitor": [e for e in pending if e.no_visitor],
            "elders": elders,
        }
    )


@router.post("/{warning_id}/checks", response_model=ElderOut)
async def check(
    warning_id: VisibleWarning, body: CheckIn, context: Context, user: CurrentUser
) -> ElderOut:
    """Mark an elder checked, safe or moved to shelter (a visitor: only their own elders)."""
    now = context.clock.now()
    async with context.db.begin() as conn:
        warning = await get_warning(conn, warning_id)  # VisibleWarning: it exists, in scope
        assert warning is not None
        if warning.closed_at is not None:
            raise HTTPException(status.HTTP_409_CONFLICT, f"warning {warning_id} is closed")
        if not await can_see(conn, user, body.household_id) or not await mark(
            conn, warning_id, body.household_id, body.status, by=user.name, now=now, note=body.note
        ):
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"no elder {body.household_id} in warning {warning_id}"
            )
        await audit.record(
            conn,
            user.actor,
            "warning.check",
            now=now,
            household_id=body.household_id,
            target=f"warning {warning_id}",
            details={"status": body.status, "via": "api"},
        )
        (found,) = await checks_of(conn, warning_id, household_id=body.household_id)
    return _elder(found)


@router.post("/{warning_id}/close", response_model=WarningOut)
async def close(warning_id: VisibleWarning, context: Context, user: StaffUser) -> WarningOut:
    """Close a warning: SMS replies no longer mark it; the record stays."""
    now = context.clock.now()
    async with context.db.begin() as conn:
        if not await close_warning(conn, warning_id, now):
            raise HTTPException(status.HTTP_409_CONFLICT, f"warning {warning_id} is closed already")
        await audit.record(
            conn, user.actor, "warning.close", now=now, target=f"warning {warning_id}"
        )
        warning = await get_warning(conn, warning_id)
    assert warning is not None
    return WarningOut.model_validate(_out(warning))
