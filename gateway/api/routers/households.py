"""Households: register an elder's home with its visitors and relatives; see its devices."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status
from pydantic import BaseModel, ConfigDict, StringConstraints

from gateway.api.auth import Principal
from gateway.api.deps import Context, CurrentUser, HouseholdKey, ReadConn
from gateway.api.strict_json import StrictJsonRoute
from gateway.care.households import (
    Address,
    Contact,
    Household,
    HouseholdExists,
    HouseholdIn,
    get_households,
)
from gateway.care.households import create_household as store_household
from gateway.care.households import get_household as load_household
from gateway.models import DeviceKind, EvidenceValue
from gateway.privacy import mask_phone
from gateway.store.alerts import list_alerts
from gateway.store.readings import DeviceRecord, device_states, list_devices
from gateway.store.readings import install_device as store_device

router = APIRouter(prefix="/api/households", tags=["households"], route_class=StrictJsonRoute)


class ContactOut(BaseModel):
    name: str
    phone: str
    relation: str | None = None


class HouseholdSummary(BaseModel):
    id: str
    elder_name: str
    elder_phone: str | None
    address: Address
    visitors: list[ContactOut]
    relatives: list[ContactOut]
    created_at: datetime


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


class HouseholdDetail(HouseholdSummary):
    devices: list[DeviceOut]
    active_alerts: int


def _contact(c: Contact, whole: bool) -> ContactOut:
    return ContactOut(
        name=c.name, phone=c.phone if whole else mask_phone(c.phone), relation=c.relation
    )


def _summary(h: Household, whole: bool) -> dict[str, object]:
    """Phone numbers are personal data: masked in lists, whole only for roles that need them."""
    phone = h.elder_phone if whole or not h.elder_phone else mask_phone(h.elder_phone)
    return {
        "id": h.id,
        "elder_name": h.elder_name,
        "elder_phone": phone,
        "address": h.address,
        "visitors": [_contact(c, whole) for c in h.visitors],
        "relatives": [_contact(c, whole) for c in h.relatives],
        "created_at": h.created_at,
    }


@router.post("", status_code=status.HTTP_201_CREATED, response_model=HouseholdSummary)
async def create_household(
    body: HouseholdIn, context: Context, user: CurrentUser
) -> HouseholdSummary:
    """Register a household: the elder, the address, assigned visitors and relatives."""
    try:
        async with context.db.begin() as conn:
            await store_household(conn, body, context.clock.now())
            created = await load_household(conn, body.id)
    except HouseholdExists:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"household {body.id} already exists"
        ) from None
    assert created is not None
    context.directory.remember(body.id)
    await context.household_changed(body.id)
    return HouseholdSummary.model_validate(_summary(created, user.sees_personal_data))


@router.get("", response_model=list[HouseholdSummary])
async def list_households(conn: ReadConn, user: CurrentUser) -> list[HouseholdSummary]:
    """All households; phone numbers masked."""
    return [
        HouseholdSummary.model_validate(_summary(h, whole=False))
        for h in await get_households(conn)
    ]


@router.get("/{household_id}", response_model=HouseholdDetail)
async def get_household(
    household_id: HouseholdKey, conn: ReadConn, user: CurrentUser
) -> HouseholdDetail:
    """One household with its devices and their latest state."""
    household = await load_household(conn, household_id)
    if household is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"household {household_id} not found")
    states: dict[str, dict[str, MetricState]] = {}
    for s in await device_states(conn, household_id):
        states.setdefault(s.device_id, {})[s.metric.value] = MetricState(value=s.value, ts=s.ts)
    devices = [
        _device_out(d, states.get(d.device_id, {})) for d in await list_devices(conn, household_id)
    ]
    active = await list_alerts(
        conn, household_id=household_id, statuses=None, limit=1000, active_only=True
    )
    return HouseholdDetail.model_validate(
        {**_summary(household, _whole(user)), "devices": devices, "active_alerts": len(active)}
    )


@router.put("/{household_id}/devices/{device_id}", response_model=DeviceOut)
async def install_device(
    household_id: HouseholdKey,
    device_id: DeviceId,
    body: DeviceIn,
    context: Context,
    user: CurrentUser,
) -> DeviceOut:
    """Register a device fitted at installation, or confirm one discovered from its traffic.

    A registered device that never reports is flagged by the device_offline rule: a smoke alarm
    that was never connected protects nobody.
    """
    async with context.db.begin() as conn:
        if await load_household(conn, household_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"household {household_id} not found")
        device = await store_device(
            conn, household_id, device_id, body.kind, body.label, context.clock.now()
        )
    context.device_installed(device)
    return _device_out(device, {})


def _whole(user: Principal) -> bool:
    return user.sees_personal_data
