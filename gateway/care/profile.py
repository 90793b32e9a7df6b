"""The official form's ledger of an elder (DESIGN.md §7): categories, household members,
living conditions and support received, and the citizen ID number they all hang on.

Stored as validated JSON in `households.profile`; the elder's own ID number has its column.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from stdnum.cn import ric
from stdnum.exceptions import (
    InvalidChecksum,
    InvalidComponent,
    InvalidFormat,
    InvalidLength,
    ValidationError,
)

from gateway.care.phones import ValidPhone

Sex = Literal["male", "female"]
UnitType = Literal[
    "party_government",
    "village_committee",
    "enterprise",
    "social_organisation",
    "social_worker",
    "volunteer",
    "other",
]
"""The form's supporting-unit types (party/government organ, township/village committee...)."""
Risk = Literal["normal", "high"]

Text = Annotated[str, StringConstraints(max_length=200, strip_whitespace=True)]
LongText = Annotated[str, StringConstraints(max_length=1000, strip_whitespace=True)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
Money = Annotated[float, Field(ge=0, le=10_000_000)]
"""Yuan a month: never negative."""


def valid_citizen_id(value: str) -> str:
    """An 18-character citizen ID number with a valid check digit, upper-case X; the error
    says what is wrong without repeating the number (it is personal data)."""
    number = value.strip().upper()
    try:
        return str(ric.validate(number))
    except InvalidLength:
        raise ValueError("a citizen ID number has 18 characters") from None
    except InvalidFormat:
        raise ValueError("a citizen ID number is 17 digits and a digit or X") from None
    except InvalidChecksum:
        raise ValueError("the check digit (the 18th character) is wrong") from None
    except InvalidComponent:
        raise ValueError("the region code or the birth date is not valid") from None
    except ValidationError:
        raise ValueError("not a valid citizen ID number") from None


CitizenId = Annotated[str, AfterValidator(valid_citizen_id)]


def birth_date(citizen_id: str) -> date:
    """The birth date written in a (valid) citizen ID number."""
    born: date = ric.get_birth_date(citizen_id)
    return born


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Categories(_Body):
    """The form's yes/no categories; None: not recorded."""

    living_alone: bool | None = None
    """Living alone or empty-nest (独居/空巢)."""
    left_behind: bool | None = None
    disabled: bool | None = None
    disability_certificate: Annotated[str, StringConstraints(max_length=40)] | None = Field(
        default=None, validate_default=True
    )
    unable_to_self_care: bool | None = None
    """Disabled in daily living (失能)."""
    family_planning_special: bool | None = None
    """A family-planning special family (计生特殊家庭)."""
    at_registered_residence: bool | None = None
    """Living at the registered residence (居住在户籍地)."""

    @field_validator("disability_certificate")
    @classmethod
    def _certificate_when_disabled(cls, value: str | None, info: ValidationInfo) -> str | None:
        # A field validator, not a model one, so the error names this field (and its column).
        if info.data.get("disabled") and not (value or "").strip():
            raise ValueError("required when disabled is true")
        return value


class Member(_Body):
    """A member of the elder's household."""

    name: Name
    sex: Sex | None = None
    citizen_id: CitizenId | None = None
    relation: Annotated[str, StringConstraints(max_length=50, strip_whitespace=True)] = ""
    health: Text = ""
    subsistence_support: bool | None = None
    """On the minimum living allowance or destitute support (低保/特困)."""


class Living(_Body):
    """Living conditions."""

    safe_water: bool | None = None
    safe_electricity: bool | None = None
    safe_housing: bool | None = None
    monthly_income: Money | None = None
    monthly_benefits: Money | None = None
    """Pension, assistance and subsidies a month."""


class Support(_Body):
    """Support received: the supporting unit, the person responsible, the measures."""

    unit_type: UnitType | None = None
    unit: Text = ""
    responsible: Text = ""
    responsible_phone: ValidPhone | None = None
    measures: LongText = ""


class Profile(_Body):
    """What `households.profile` holds."""

    sex: Sex | None = None
    categories: Categories = Field(default_factory=Categories)
    members: list[Member] = Field(default_factory=list, max_length=20)
    living: Living = Field(default_factory=Living)
    support: Support = Field(default_factory=Support)
