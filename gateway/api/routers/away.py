"""Away periods: the elder is with relatives or in hospital, and the inactivity rules pause."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.api.auth import Principal
from gateway.api.deps import Context, CurrentUser, ReadConn, RowId
from gateway.api.field_errors import invalid
from gateway.api.paging import PAGED_RESPONSE, PageQuery
from gateway.api.routers.household_settings import require_household
from gateway.api.scope import VisibleHousehold
from gateway.api.strict_json import StrictJsonRoute
from gateway.care import audit
from gateway.store.rule_settings import (
    AwayRecord,
    add_away,
    delete_away,
    end_away,
    get_away,
    list_away,
)

router = APIRouter(prefix="/api/households", tags=["away periods"], route_class=StrictJsonRoute)

MAX_AWAY = timedelta(days=90)
"""Longer absences (a move to a care home) are a change of the household, not an away period."""


def _may_change_away(user: CurrentUser) -> Principal:
    # Operators are the ones a relative calls to say the elder is staying with them.
    if user.role not in ("admin", "operator"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "not allowed to change away periods")
    return user


AwayEditor = Annotated[Principal, Depends(_may_change_away)]


class AwayIn(BaseModel):
    """The elder is away (with relatives, in hospital): the inactivity rules pause meanwhile."""

    model_config = ConfigDict(extra="forbid")

    starts_at: AwareDatetime | None = Field(
        default=None, alias="from", description="ISO 8601 with offset; default now"
    )
    ends_at: AwareDatetime = Field(alias="until", description="ISO 8601 with offset")
    note: Annotated[str, StringConstraints(max_length=200, strip_whitespace=True)] = ""


class AwayOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: int
    household_id: str
    starts_at: datetime = Field(alias="from")
    ends_at: datetime = Field(alias="until")
    note: str
    created_at: datetime
    created_by: str
    active: bool
    """Whether the elder is away now."""


class AwayChange(BaseModel):
    action: Literal["ended", "deleted"]
    """"ended": it had started, and now ends (came back early); "deleted": it had not started."""
    away: AwayOut


def _away_out(record: AwayRecord, now: datetime) -> AwayOut:
    return AwayOut(
        id=record.id,
        household_id=record.household_id,
        starts_at=record.starts_at,
        ends_at=record.ends_at,
        note=record.note,
        created_at=record.created_at,
        created_by=record.created_by,
        active=record.starts_at <= now < record.ends_at,
    )


@router.post("/{household_id}/away", status_code=status.HTTP_201_CREATED, response_model=AwayOut)
async def create_away(
    household_id: VisibleHousehold, body: AwayIn, context: Context, user: AwayEditor
) -> AwayOut:
    """Record that the elder is away from `from` (default now) until `until`.

    no_water_use, no_power_use and missed_routine stay silent meanwhile; safety rules (smoke,
    falls, the call button, vitals...) never pause.
    """
    now = context.clock.now()
    starts_at = body.starts_at or now
    if body.ends_at <= starts_at:
        raise invalid(["body", "until"], "must be later than from")
    if body.ends_at - starts_at > MAX_AWAY:
        raise invalid(["body", "until"], f"at most {MAX_AWAY.days} days after from")
    async with context.db.begin() as conn:
        await require_household(conn, household_id)
        record = await add_away(
            conn, household_id, starts_at, body.ends_at, note=body.note, by=user.name, now=now
        )
        await audit.record(
            conn,
            user.actor,
            "away.create",
            now=now,
            household_id=household_id,
            target=f"away {record.id}",
        )
    await context.household_changed(household_id)
    return _away_out(record, now)


@router.get("/{household_id}/away", response_model=list[AwayOut], responses=PAGED_RESPONSE)
async def get_away_periods(
    household_id: VisibleHousehold,
    context: Context,
    conn: ReadConn,
    user: CurrentUser,
    pages: PageQuery,
    include_past: Annotated[bool, Query(description="also periods that have ended")] = False,
) -> list[AwayOut]:
    """The household's away periods, earliest first: current and future ones unless asked."""
    await require_household(conn, household_id)
    now = context.clock.now()
    records = await list_away(
        conn, household_id, pages.window, ending_after=None if include_past else now
    )
    return [_away_out(r, now) for r in pages.answer(records)]


@router.delete("/{household_id}/away/{away_id}", response_model=AwayChange)
async def remove_away(
    household_id: VisibleHousehold, away_id: RowId, context: Context, user: AwayEditor
) -> AwayChange:
    """End an away period now (the elder came back early), or cancel one not yet started.

    A period that is over stays: the routine learning leaves its days out.
    """
    now = context.clock.now()
    async with context.db.begin() as conn:
        record = await get_away(conn, away_id)
        if record is None or record.household_id != household_id:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                f"away period {away_id} of household {household_id} not found",
            )
        if record.ends_at <= now:
            raise HTTPException(status.HTTP_409_CONFLICT, f"away period {away_id} is already over")
        if record.starts_at < now:
            await end_away(conn, away_id, now)
            change = AwayChange(action="ended", away=_away_out(await _reloaded(conn, away_id), now))
        else:
            await delete_away(conn, away_id)
            change = AwayChange(action="deleted", away=_away_out(record, now))
        await audit.record(
            conn,
            user.actor,
            f"away.{change.action}",
            now=now,
            household_id=household_id,
            target=f"away {away_id}",
        )
    await context.household_changed(household_id)
    return change


async def _reloaded(conn: AsyncConnection, away_id: int) -> AwayRecord:
    record = await get_away(conn, away_id)
    assert record is not None  # updated in this transaction
    return record
