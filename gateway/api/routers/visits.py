"""Visits: a household's care records (DESIGN.md §7), the ones escalations file among them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, JsonValue

from gateway.api.deps import MAX_ROW_ID, CurrentUser, HouseholdKey, ReadConn
from gateway.api.strict_json import StrictJsonRoute
from gateway.care.households import get_household
from gateway.privacy import mask_personal_data
from gateway.store.visits import VisitMethod, VisitRecord, list_visits

router = APIRouter(prefix="/api/households", tags=["visits"], route_class=StrictJsonRoute)


class VisitOut(BaseModel):
    id: int
    method: VisitMethod
    visited_at: datetime
    alert_id: int | None
    """The alert the visit answered, if any."""
    visitor: str
    summary: str
    details: dict[str, JsonValue]
    """The rest of the record: who was notified, who acknowledged and when, who arrived..."""


def _masked(value: JsonValue) -> JsonValue:
    """Details name people, never their numbers; a number that got in anyway is masked."""
    if isinstance(value, str):
        return mask_personal_data(value)
    if isinstance(value, list):
        return [_masked(v) for v in value]
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    return value


def _visit_out(v: VisitRecord) -> VisitOut:
    return VisitOut(
        id=v.id,
        method=v.method,
        visited_at=v.visited_at,
        alert_id=v.alert_id,
        visitor=v.visitor,
        summary=mask_personal_data(v.summary),
        details={k: _masked(val) for k, val in v.details.items()},
    )


@router.get("/{household_id}/visits", response_model=list[VisitOut])
async def get_visits(
    household_id: HouseholdKey,
    conn: ReadConn,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before_id: Annotated[
        int | None, Query(ge=1, le=MAX_ROW_ID, description="the last visit of the previous page")
    ] = None,
) -> list[VisitOut]:
    """A household's visits, newest first."""
    if await get_household(conn, household_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"household {household_id} not found")
    records = await list_visits(conn, household_id, limit=limit, before_id=before_id)
    return [_visit_out(v) for v in records]
