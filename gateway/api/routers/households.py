"""Households: register an elder's home with the form's registry, its visitors and
relatives; change or erase it; see its devices. Every route keeps to the caller's scope."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Path, Query, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, StringConstraints
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.api.auth import Principal
from gateway.api.deps import Context, CurrentUser, ReadConn
from gateway.api.household_out import (
    HouseholdRegistry,
    HouseholdSummary,
    holds_citizen_ids,
    registry,
    summary,
)
from gateway.api.paging import PAGED_RESPONSE, PageQuery
from gateway.api.scope import AdminUser, StaffUser, VisibleHousehold, in_scope
from gateway.api.strict_json import StrictJsonRoute
from gateway.care import audit
from gateway.care.households import HouseholdExists, HouseholdFields, HouseholdIn
from gateway.care.households import create_household as store_household
from gateway.care.households import get_household as load_household
from gateway.care.registry import (
    AreaFilter,
    HouseholdHasRecords,
    changed_fields,
    delete_household,
    future_dates,
    page_households,
    registry_view,
    replace_household,
)
from gateway.models import DeviceKind, EvidenceValue
from gateway.store.alerts import list_alerts
from gateway.store.paging import Window
from gateway.store.readings import DeviceRecord, device_states, list_devices
from gateway.store.readings import install_device as store_device
from gateway.store.tables import households

router = APIRouter(prefix="/api/households", tags=["households"], route_class=StrictJsonRoute)

Filter = Annotated[str | None, Query(max_length=100)]


class MetricState(BaseModel):
    value: EvidenceValue
    ts: datetime


class DeviceOut(BaseModel):
    device_id: str
    kind: str | None
    label: str | None
    source: str | None
    review: str
    """"new": discovered from its traffic, to be reviewed; "confirmed": registered by a person."""
    registered_at: datetime | None
    first_seen: datetime | None
    last_seen: datetime | None
    never_reported: bool
    state: dict[str, MetricState]


class DeviceIn(BaseModel):
    """A device fitted in the home (or a discovered one confirmed by a person)."""

    model_config = ConfigDict(extra="forbid")

    kind: DeviceKind
    label: Annotated[str, StringConstraints(max_length=100, strip_whitespace=True)] | None = None


DeviceId = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")]


def _device_out(d: DeviceRecord, state: dict[str, MetricState]) -> DeviceOut:
    return DeviceOut(
        device_id=d.device_id,
        kind=d.kind.value if d.kind else None,
        label=d.label,
        source=d.source,
        review=d.review,
        registered_at=d.registered_at,
        first_seen=d.first_seen,
        last_seen=d.last_seen,
        never_reported=d.first_seen is None,
        state=state,
    )


class HouseholdDetail(HouseholdRegistry):
    devices: list[DeviceOut]
    active_alerts: int


def _check_dates(body: HouseholdFields, context: Context) -> None:
    """422 naming each date after today (pydantic alone cannot know today)."""
    errors = future_dates(body, context.clock.now().astimezone(context.zone).date())
    if errors:
        raise RequestValidationError([{**e, "loc": ["body", *e["loc"]]} for e in errors])


def _check_area(user: Principal, township: str) -> None:
    """An operator registers and moves households within their own township only."""
    if user.role == "operator" and township != (user.township or ""):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "an operator may place households in their township only"
        )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=HouseholdSummary)
async def create_household(
    body: HouseholdIn, context: Context, user: StaffUser
) -> HouseholdSummary:
    """Register a household: the elder, the address, the form's registry, visitors, relatives."""
    _check_dates(body, context)
    _check_area(user, body.address.township)
    now = context.clock.now()
    try:
        async with context.db.begin() as conn:
            await store_household(conn, body, now)
            await audit.record(conn, user.actor, "household.create", now=now, household_id=body.id)
            created = await load_household(conn, body.id)
    except HouseholdExists:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"household {body.id} already exists"
        ) from None
    assert created is not None
    context.directory.remember(body.id)
    await context.household_changed(body.id)
    # Numbers masked as in a list: whole only on the elder's page (GET), where views are audited.
    return HouseholdSummary.model_validate(summary(created, whole=False))


@router.get("", response_model=list[HouseholdSummary], responses=PAGED_RESPONSE)
async def list_households(
    conn: ReadConn,
    user: CurrentUser,
    pages: PageQuery,
    county: Filter = None,
    township: Filter = None,
    village: Filter = None,
    q: Annotated[str | None, Query(max_length=100, description="elder's name contains")] = None,
    active: Annotated[bool | None, Query(description="true: not left the programme")] = None,
) -> list[HouseholdSummary]:
    """The households the caller may see, by id, a page at a time; phone and citizen ID
    numbers masked."""
    wanted = AreaFilter(county, township, village, q, active)
    found = await page_households(conn, in_scope(user, households.c.id), wanted, pages.window)
    return [HouseholdSummary.model_validate(summary(h, whole=False)) for h in pages.answer(found)]


@router.get("/{household_id}", response_model=HouseholdDetail)
async def get_household(
    household_id: VisibleHousehold, context: Context, user: CurrentUser
) -> HouseholdDetail:
    """The elder's page: the registry, devices and their latest state. Numbers are whole for
    admin and operator (each such view is audited), masked for visitors."""
    whole = user.sees_personal_data
    async with context.db.begin() as conn:
        household = await load_household(conn, household_id)
        if household is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"household {household_id} not found")
        if whole and holds_citizen_ids(household):
            await audit.record(
                conn,
                user.actor,
                "household.view_citizen_id",
                now=context.clock.now(),
                household_id=household_id,
            )
        devices = await _devices_with_state(conn, household_id)
        active = await list_alerts(
            conn, household_id=household_id, window=Window(limit=1), active_only=True
        )
    return HouseholdDetail.model_validate(
        {**registry(household, whole), "devices": devices, "active_alerts": active.total}
    )


@router.get("/{household_id}/devices", response_model=list[DeviceOut])
async def get_devices(household_id: VisibleHousehold, conn: ReadConn) -> list[DeviceOut]:
    """The household's devices with their latest values: what a live page refetches as
    readings arrive, without the registry (and so without auditing a view of ID numbers)."""
    if not await conn.scalar(sa.select(households.c.id).where(households.c.id == household_id)):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"household {household_id} not found")
    return await _devices_with_state(conn, household_id)


async def _devices_with_state(conn: AsyncConnection, household_id: str) -> list[DeviceOut]:
    states: dict[str, dict[str, MetricState]] = {}
    for s in await device_states(conn, household_id):
        states.setdefault(s.device_id, {})[s.metric.value] = MetricState(value=s.value, ts=s.ts)
    return [
        _device_out(d, states.get(d.device_id, {})) for d in await list_devices(conn, household_id)
    ]


@router.put("/{household_id}", response_model=HouseholdRegistry)
async def update_household(
    household_id: VisibleHousehold, body: HouseholdFields, context: Context, user: StaffUser
) -> HouseholdRegistry:
    """Replace the registry and contacts (leaving the programme: set left_on)."""
    _check_dates(body, context)
    _check_area(user, body.address.township)
    now = context.clock.now()
    async with context.db.begin() as conn:
        before = await load_household(conn, household_id)
        if before is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"household {household_id} not found")
        changed = changed_fields(registry_view(before), body.model_dump(mode="json"))
        await replace_household(conn, household_id, body, now)
        await audit.record(
            conn,
            user.actor,
            "household.update",
            now=now,
            household_id=household_id,
            details={"fields": changed},
        )
        after = await load_household(conn, household_id)
    assert after is not None
    await context.household_changed(household_id)
    return HouseholdRegistry.model_validate(registry(after, whole=False))


@router.delete("/{household_id}", status_code=status.HTTP_204_NO_CONTENT)
async def erase_household(
    household_id: VisibleHousehold, context: Context, user: AdminUser
) -> None:
    """Erase a household registered by mistake (one with readings, alerts or visits: 409)."""
    now = context.clock.now()
    try:
        async with context.db.begin() as conn:
            await delete_household(conn, household_id)
            await audit.record(
                conn, user.actor, "household.delete", now=now, household_id=household_id
            )
    except HouseholdHasRecords as exc:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"household {household_id} has {exc.args[0]}: record that it left (left_on) instead",
        ) from None
    context.directory.forget(household_id)


@router.put("/{household_id}/devices/{device_id}", response_model=DeviceOut)
async def install_device(
    household_id: VisibleHousehold,
    device_id: DeviceId,
    body: DeviceIn,
    context: Context,
    user: StaffUser,
) -> DeviceOut:
    """Register a device fitted at installation, or confirm one discovered from its traffic.

    A registered device that never reports is flagged by the device_offline rule: a smoke alarm
    that was never connected protects nobody.
    """
    now = context.clock.now()
    async with context.db.begin() as conn:
        device = await store_device(conn, household_id, device_id, body.kind, body.label, now)
        await audit.record(
            conn,
            user.actor,
            "device.install",
            now=now,
            household_id=household_id,
            target=f"device {device_id}",
        )
    context.device_installed(device)
    return _device_out(device, {})
