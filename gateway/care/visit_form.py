"""The official visit form (DESIGN.md §7): what a visitor finds, as stable English codes.

Every finding is optional: a phone call cannot judge hygiene, and an alert filed as a visit
knows only what happened. Unknown keys are refused, so a misspelt finding is a 422 rather than
a field silently lost. Labels for people (Chinese, English) are in `visit_labels`.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from gateway.store.visits import VisitMethod

# The form's boxes are small: these lengths keep one visit on one printed A4 sheet.
Note = Annotated[str, StringConstraints(max_length=100, strip_whitespace=True)]
Text = Annotated[str, StringConstraints(max_length=200, strip_whitespace=True)]
Summary = Annotated[str, StringConstraints(max_length=400, strip_whitespace=True)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]


class Trend(StrEnum):
    """Expression, mobility, mood, hygiene, indoor environment since the last visit."""

    NO_CHANGE = "no_change"
    BETTER = "better"
    WORSE = "worse"


class IllnessChange(StrEnum):
    NO_CHANGE = "no_change"
    SERIOUS = "serious"
    IMPROVED = "improved"


class Safety(StrEnum):
    """Gas, water heating, electricity, fire."""

    SAFE = "safe"
    FAIRLY_SAFE = "fairly_safe"
    UNSAFE = "unsafe"


class Health(StrEnum):
    GOOD = "good"
    FAIR = "fair"
    POOR = "poor"


class LivingSecurity(StrEnum):
    """Whether the elder's daily needs (food, money, care) are provided for."""

    SECURE = "secure"
    BASIC = "basic"
    INSECURE = "insecure"


class FamilyContact(StrEnum):
    """How often the children visit, or call."""

    REGULARLY = "regularly"
    OCCASIONALLY = "occasionally"
    NEVER = "never"
    NO_CHILDREN = "no_children"


class Satisfaction(StrEnum):
    """The elder's satisfaction with a care service."""

    VERY_SATISFIED = "very_satisfied"
    SATISFIED = "satisfied"
    FAIR = "fair"
    DISSATISFIED = "dissatisfied"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VisitForm(_Body):
    """The findings of one visit, in the order of the paper form."""

    household_size_change: int | None = Field(default=None, ge=-20, le=20)
    """Household size since the last visit: 0 no change, +n or -n people."""
    expression: Trend | None = None
    mobility: Trend | None = None
    mood: Trend | None = None
    personal_hygiene: Trend | None = None
    home_hygiene: Trend | None = None
    indoor_environment: Trend | None = None
    illness: IllnessChange | None = None
    illness_name: Note | None = None
    """The illness, when it is serious."""
    gas: Safety | None = None
    water_heating: Safety | None = None
    electricity: Safety | None = None
    fire: Safety | None = None
    # The areas the programme asks visitors to look at, beyond the boxes above.
    health: Health | None = None
    health_note: Note | None = None
    living_security: LivingSecurity | None = None
    living_security_note: Note | None = None
    living_environment_note: Note | None = None
    hygiene_note: Note | None = None
    children_visit: FamilyContact | None = None
    children_call: FamilyContact | None = None
    family_care_note: Note | None = None
    service_needs: Text | None = None
    care_suggestions: Text | None = None
    special_circumstances: Text | None = None
    elder_confirmed: bool | None = None
    """The elder (or a family member) confirmed the record."""
    elder_signature: (
        Annotated[str, StringConstraints(max_length=50, strip_whitespace=True)] | None
    ) = None
    """The name as signed on paper (or who signed for the elder)."""

    @model_validator(mode="after")
    def _illness_named_when_serious(self) -> Self:
        if self.illness_name and self.illness != IllnessChange.SERIOUS:
            raise ValueError("illness_name is given only when illness is serious")
        if self.illness == IllnessChange.SERIOUS and not self.illness_name:
            raise ValueError("illness_name is needed when illness is serious")
        return self


class VisitIn(_Body):
    """What POST /api/households/{id}/visits accepts."""

    method: VisitMethod
    visited_at: AwareDatetime
    """When the visit took place (with its offset); not in the future."""
    visitor: Name | None = None
    """Who visited; default: the caller."""
    summary: Summary = ""
    """What happened, in a few words."""
    form: VisitForm = Field(default_factory=VisitForm)


class ServiceIn(_Body):
    """What POST /api/households/{id}/services accepts: one care service given."""

    served_on: date
    """Not in the future (the gateway's time zone)."""
    service: Text = Field(min_length=1)
    provider: Name
    satisfaction: Satisfaction


class ReferralStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    DECLINED = "declined"


class ReferralIn(_Body):
    """A need found on a visit, referred to someone who can meet it."""

    need: Text = Field(min_length=1)
    referred_to: Name
    due_on: date | None = None
    visit_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    """The visit it was found on: one of the household's."""


class FollowUpIn(_Body):
    status: Literal["in_progress", "done", "declined"]
    note: Text = ""


def is_future(when: datetime, now: datetime, *, grace_s: float = 300) -> bool:
    """Whether `when` is later than `now`, allowing a device clock a few minutes ahead."""
    return (when - now).total_seconds() > grace_s
