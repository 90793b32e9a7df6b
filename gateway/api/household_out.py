"""What the API shows of a household: whole numbers only on its own page to staff.

Citizen ID and phone numbers are personal data: masked in every list and for visitors,
whole on an elder's own page for admin and operator (and then the view is audited).
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel

from gateway.care.households import Address, Contact, Household
from gateway.care.profile import Categories, Living, Risk, Sex, UnitType
from gateway.privacy import mask_citizen_id, mask_phone


class ContactOut(BaseModel):
    name: str
    phone: str
    relation: str | None = None


class HouseholdSummary(BaseModel):
    id: str
    elder_name: str
    elder_phone: str | None
    citizen_id: str | None = None
    """The elder's citizen ID number, masked (whole on the elder's page for staff)."""
    address: Address
    visitors: list[ContactOut]
    relatives: list[ContactOut]
    """The emergency contacts, in the order they are called."""
    risk: Risk = "normal"
    registered_on: date | None = None
    left_on: date | None = None
    created_at: datetime


class MemberOut(BaseModel):
    name: str
    sex: Sex | None
    citizen_id: str | None
    relation: str
    health: str
    subsistence_support: bool | None


class SupportOut(BaseModel):
    unit_type: UnitType | None
    unit: str
    responsible: str
    responsible_phone: str | None
    measures: str


class HouseholdRegistry(HouseholdSummary):
    """The elder's page: every field of the form."""

    sex: Sex | None
    timezone: str | None
    categories: Categories
    members: list[MemberOut]
    living: Living
    support: SupportOut
    left_reason: str | None
    updated_at: datetime | None


def _phone(value: str | None, whole: bool) -> str | None:
    return value if whole or not value else mask_phone(value)


def _citizen_id(value: str | None, whole: bool) -> str | None:
    return value if whole or not value else mask_citizen_id(value)


def _contact(c: Contact, whole: bool) -> ContactOut:
    return ContactOut(name=c.name, phone=_phone(c.phone, whole) or "", relation=c.relation)


def summary(h: Household, whole: bool) -> dict[str, object]:
    """The fields of `HouseholdSummary`; numbers masked unless `whole`."""
    return {
        "id": h.id,
        "elder_name": h.elder_name,
        "elder_phone": _phone(h.elder_phone, whole),
        "citizen_id": _citizen_id(h.citizen_id, whole),
        "address": h.address,
        "visitors": [_contact(c, whole) for c in h.visitors],
        "relatives": [_contact(c, whole) for c in h.relatives],
        "risk": h.risk,
        "registered_on": h.registered_on,
        "left_on": h.left_on,
        "created_at": h.created_at,
    }


def registry(h: Household, whole: bool) -> dict[str, object]:
    """The fields of `HouseholdRegistry`; numbers masked unless `whole`."""
    p = h.profile
    return {
        **summary(h, whole),
        "sex": p.sex,
        "timezone": h.timezone,
        "categories": p.categories,
        "members": [
            MemberOut(
                **{**m.model_dump(), "citizen_id": _citizen_id(m.citizen_id, whole)},
            )
            for m in p.members
        ],
        "living": p.living,
        "support": SupportOut(
            **{
                **p.support.model_dump(),
                "responsible_phone": _phone(p.support.responsible_phone, whole),
            }
        ),
        "left_reason": h.left_reason,
        "updated_at": h.updated_at,
    }


def holds_citizen_ids(h: Household) -> bool:
    """Whether the household's page shows any citizen ID number (the elder's, a member's)."""
    return bool(h.citizen_id) or any(m.citizen_id for m in h.profile.members)
