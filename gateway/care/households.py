"""Households: the elder, the address, the assigned visitors and the relatives, and the
official form's ledger (DESIGN.md §7; `gateway.care.profile`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.care.phones import ValidPhone, phone_forms
from gateway.care.profile import (
    Categories,
    CitizenId,
    Living,
    Member,
    Profile,
    Risk,
    Sex,
    Support,
)
from gateway.store.tables import contacts, households

# A household id is one MQTT topic level: no '/', '+' or '#'.
HouseholdId = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", strip_whitespace=True)
]
Name = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
Place = Annotated[str, StringConstraints(max_length=100, strip_whitespace=True)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Elder(_Body):
    name: Name
    phone: ValidPhone | None = None
    citizen_id: CitizenId | None = None
    sex: Sex | None = None


class Address(_Body):
    county: Place = ""
    township: Place = ""
    village: Place = ""
    detail: Annotated[str, StringConstraints(max_length=200, strip_whitespace=True)] = ""

    def one_line(self) -> str:
        return f"{self.county}{self.township}{self.village}{self.detail}"


Language = Literal["zh", "en"]


class Visitor(_Body):
    name: Name
    phone: ValidPhone
    language: Language | None = None
    """Language of this person's messages; None: the gateway's (Chinese by default)."""


class Relative(_Body):
    name: Name
    phone: ValidPhone
    relation: Annotated[str, StringConstraints(max_length=50)] | None = None
    language: Language | None = None


class HouseholdFields(_Body):
    """A household's registry: what PUT /api/households/{id} replaces."""

    elder: Elder
    address: Address = Field(default_factory=Address)
    visitors: list[Visitor] = Field(default_factory=list, max_length=20)
    relatives: list[Relative] = Field(default_factory=list, max_length=20)
    """The emergency contacts, in the order they are called."""
    timezone: str | None = None
    """IANA zone of the home (e.g. Asia/Urumqi); default: the gateway's (Asia/Shanghai)."""
    categories: Categories = Field(default_factory=Categories)
    members: list[Member] = Field(default_factory=list, max_length=20)
    living: Living = Field(default_factory=Living)
    support: Support = Field(default_factory=Support)
    risk: Risk = "normal"
    registered_on: date | None = None
    """In the programme from (dates in the future are refused by the routes)."""
    left_on: date | None = Field(default=None, validate_default=True)
    """Left the programme on (death, moving away); its visits and alerts stay on record."""
    left_reason: Annotated[str, StringConstraints(max_length=200, strip_whitespace=True)] | None = (
        None
    )

    @field_validator("left_on")
    @classmethod
    def _left_after_registered(cls, value: date | None, info: ValidationInfo) -> date | None:
        registered = info.data.get("registered_on")
        if value and registered and value < registered:
            raise ValueError("before registered_on")
        return value

    def profile(self) -> Profile:
        """The part of the registry kept as JSON."""
        return Profile(
            sex=self.elder.sex,
            categories=self.categories,
            members=self.members,
            living=self.living,
            support=self.support,
        )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (an IANA name like Asia/Shanghai)"
            ) from None
        return value


class HouseholdIn(HouseholdFields):
    """What POST /api/households accepts: the registry and the household's id."""

    id: HouseholdId


@dataclass(frozen=True, slots=True)
class Contact:
    role: Literal["visitor", "relative"]
    name: str
    phone: str
    relation: str | None
    language: str | None = None


@dataclass(frozen=True, slots=True)
class Household:
    id: str
    elder_name: str
    elder_phone: str | None
    address: Address
    timezone: str | None
    visitors: list[Contact]
    relatives: list[Contact]
    created_at: datetime
    escalation: dict[str, Any] | None = None
    """The household's own escalation steps per severity (JSON), where it has them."""
    citizen_id: str | None = None
    profile: Profile = field(default_factory=Profile)
    risk: str = "normal"
    registered_on: date | None = None
    left_on: date | None = None
    left_reason: str | None = None
    updated_at: datetime | None = None

    def zone(self, default: ZoneInfo) -> ZoneInfo:
        """The home's time zone, or `default` (the gateway's) when it has none of its own."""
        return ZoneInfo(self.timezone) if self.timezone else default


class HouseholdExists(Exception):
    pass


async def create_household(conn: AsyncConnection, body: HouseholdIn, now: datetime) -> None:
    """Insert a household with its contacts; raise HouseholdExists if the id is taken."""
    if await household_exists(conn, body.id):
        raise HouseholdExists(body.id)
    await conn.execute(
        sa.insert(households).values(
            id=body.id, details={}, created_at=now, **registry_columns(body, now)
        )
    )
    await insert_contacts(conn, body.id, body)


def registry_columns(body: HouseholdFields, now: datetime) -> dict[str, object]:
    """The `households` columns a registry sets (all but id, details and created_at)."""
    return {
        "elder_name": body.elder.name,
        "elder_phone": body.elder.phone,
        "county": body.address.county,
        "township": body.address.township,
        "village": body.address.village,
        "address_detail": body.address.detail,
        "timezone": body.timezone,
        "citizen_id": body.elder.citizen_id,
        "profile": body.profile().model_dump(mode="json"),
        "risk": body.risk,
        "registered_on": body.registered_on,
        "left_on": body.left_on,
        "left_reason": body.left_reason,
        "updated_at": now,
    }


def contact_row(
    household_id: str,
    role: Literal["visitor", "relative"],
    position: int,
    *,
    name: str,
    phone: str,
    language: str | None,
    relation: str | None = None,
) -> dict[str, object]:
    """One `contacts` row: a visitor or a relative of the household, at `position` in order."""
    return {
        "household_id": household_id,
        "role": role,
        "position": position,
        "name": name,
        "phone": phone,
        "relation": relation,
        "language": language,
    }


def contact_rows(household_id: str, body: HouseholdFields) -> list[dict[str, object]]:
    """The `contacts` rows of a registry: visitors then relatives, each in order."""
    visitors = [
        contact_row(household_id, "visitor", i, name=v.name, phone=v.phone, language=v.language)
        for i, v in enumerate(body.visitors)
    ]
    relatives = [
        contact_row(
            household_id,
            "relative",
            i,
            name=r.name,
            phone=r.phone,
            language=r.language,
            relation=r.relation,
        )
        for i, r in enumerate(body.relatives)
    ]
    return visitors + relatives


async def insert_contacts(conn: AsyncConnection, household_id: str, body: HouseholdFields) -> None:
    rows = contact_rows(household_id, body)
    if rows:
        await conn.execute(sa.insert(contacts), rows)


def visitor_assignments(phone: str) -> sa.ColumnElement[bool]:
    """The contact rows that assign this phone as a visitor, however either was written."""
    return sa.and_(contacts.c.role == "visitor", contacts.c.phone.in_(phone_forms(phone)))


def households_visited_by(phone: str) -> sa.Select[tuple[str]]:
    """The ids of the households whose visitors include this phone, as a subquery."""
    return sa.select(contacts.c.household_id).where(visitor_assignments(phone))


async def household_exists(conn: AsyncConnection, household_id: str) -> bool:
    found = await conn.scalar(sa.select(households.c.id).where(households.c.id == household_id))
    return found is not None


async def all_household_ids(conn: AsyncConnection) -> set[str]:
    return set((await conn.scalars(sa.select(households.c.id))).all())


async def get_households(
    conn: AsyncConnection,
    ids: list[str] | None = None,
    *,
    where: sa.ColumnElement[bool] | None = None,
) -> list[Household]:
    """Households with their contacts, in id order; all of them when `ids` is None; only
    those matching `where` (a clause on `households`) when given."""
    query = sa.select(households).order_by(households.c.id)
    contact_query = sa.select(contacts).order_by(
        contacts.c.household_id, contacts.c.role, contacts.c.position
    )
    if ids is not None:
        query = query.where(households.c.id.in_(ids))
        contact_query = contact_query.where(contacts.c.household_id.in_(ids))
    if where is not None:
        query = query.where(where)
        # A subquery, not a list of ids: an export of a whole county has too many for IN (...).
        contact_query = contact_query.where(
            contacts.c.household_id.in_(sa.select(households.c.id).where(where))
        )
    by_household: dict[str, list[Contact]] = {}
    for row in await conn.execute(contact_query):
        c = row._mapping
        by_household.setdefault(c["household_id"], []).append(
            Contact(c["role"], c["name"], c["phone"], c["relation"], c["language"])
        )
    out = []
    for row in await conn.execute(query):
        h = row._mapping
        people = by_household.get(h["id"], [])
        out.append(
            Household(
                id=h["id"],
                elder_name=h["elder_name"],
                elder_phone=h["elder_phone"],
                address=Address(
                    county=h["county"],
                    township=h["township"],
                    village=h["village"],
                    detail=h["address_detail"],
                ),
                timezone=h["timezone"],
                visitors=[p for p in people if p.role == "visitor"],
                relatives=[p for p in people if p.role == "relative"],
                created_at=h["created_at"],
                escalation=h["escalation"],
                citizen_id=h["citizen_id"],
                profile=Profile.model_validate(h["profile"] or {}),
                risk=h["risk"],
                registered_on=h["registered_on"],
                left_on=h["left_on"],
                left_reason=h["left_reason"],
                updated_at=h["updated_at"],
            )
        )
    return out


async def get_household(conn: AsyncConnection, household_id: str) -> Household | None:
    found = await get_households(conn, [household_id])
    return found[0] if found else None


@dataclass(frozen=True, slots=True)
class ElderLabel:
    """How a list names a household: the elder and their village (no numbers)."""

    elder_name: str
    village: str


async def elder_labels(conn: AsyncConnection, ids: set[str]) -> dict[str, ElderLabel]:
    """The label of each of these households that exists."""
    if not ids:
        return {}
    rows = await conn.execute(
        sa.select(households.c.id, households.c.elder_name, households.c.village).where(
            households.c.id.in_(sorted(ids))
        )
    )
    return {hid: ElderLabel(name, village) for hid, name, village in rows}


async def household_zones(conn: AsyncConnection) -> list[tuple[str, str | None]]:
    """Every household's id and time zone (None: the gateway's default)."""
    rows = await conn.execute(sa.select(households.c.id, households.c.timezone))
    return [(h, tz) for h, tz in rows.all()]
