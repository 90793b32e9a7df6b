"""The overview the control room keeps open: every household in scope with its live status."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from gateway.api.deps import Context, CurrentUser, ReadConn
from gateway.api.scope import households_in_scope
from gateway.api.strict_json import StrictJsonRoute
from gateway.care.profile import Risk
from gateway.models import Severity
from gateway.store.overview import HouseholdStatus, OverviewFilter, overview

router = APIRouter(prefix="/api/overview", tags=["overview"], route_class=StrictJsonRoute)

Filter = Annotated[str | None, Query(max_length=100)]


class StatusCounts(BaseModel):
    total: int
    well: int
    alert: int
    checkin: int
    offline: int
    low_battery: int


class AreaOut(BaseModel):
    township: str
    village: str
    households: int


class HouseholdTileOut(BaseModel):
    id: str
    elder_name: str
    township: str
    village: str
    status: HouseholdStatus
    worst_severity: Severity | None = Field(description="the worst of its active alerts")
    active_alerts: int
    devices: int
    devices_offline: int = Field(description="devices with an active device_offline alert")
    devices_low_battery: int = Field(description="devices with an active low_battery alert")
    last_seen: datetime | None = Field(description="when any of its devices was last heard")
    risk: Risk


class OverviewOut(BaseModel):
    counts: StatusCounts = Field(description="per status, for the area filter (status ignored)")
    areas: list[AreaOut] = Field(description="every village in the caller's scope")
    total: int = Field(description="households matching every filter, status included")
    households: list[HouseholdTileOut]


@router.get("", response_model=OverviewOut)
async def get_overview(
    conn: ReadConn,
    user: CurrentUser,
    context: Context,
    township: Filter = None,
    village: Filter = None,
    status: Annotated[HouseholdStatus | None, Query()] = None,
    q: Annotated[
        str | None,
        Query(max_length=100, description="the elder's name contains it, or the id begins so"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> OverviewOut:
    """Households in the programme with their status: alerts first (worst, then oldest),
    then check-in calls, offline devices, low batteries, then the well."""
    found = await overview(
        conn,
        households_in_scope(user),
        OverviewFilter(township=township, village=village, q=q, status=status),
        today=context.clock.now().astimezone(context.zone).date(),
        limit=limit,
        offset=offset,
    )
    return OverviewOut(
        counts=StatusCounts(**found.counts),
        areas=[
            AreaOut(township=a.township, village=a.village, households=a.households)
            for a in found.areas
        ],
        total=found.total,
        households=[
            HouseholdTileOut.model_validate(t, from_attributes=True) for t in found.households
        ],
    )
