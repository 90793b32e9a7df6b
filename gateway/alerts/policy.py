"""Escalation policies: who is contacted, on which channels, and how long to wait for an answer.

A policy is a list of steps per severity. Each step names recipients (`Audience`) and channels,
and how long to wait for an acknowledgement before the next step; the last step repeats until
someone acknowledges. For the inactivity rules a check-in call to the elder comes first.

The policy in force is resolved when an alert opens and frozen onto it (`Policy.to_json`), so a
changed configuration never alters an escalation under way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.alerts.notifiers.base import Channel
from gateway.models import Severity


class Audience(StrEnum):
    """Who a step contacts, resolved against the household's contacts when the step runs."""

    ELDER = "elder"
    """The elder's own phone (check-in calls)."""
    VISITORS = "visitors"
    """The assigned visitors, all of them."""
    FIRST_RELATIVE = "first_relative"
    """The first relative or emergency contact on file."""
    RELATIVES = "relatives"
    """Every relative and emergency contact, in their order."""
    CONTROL_ROOM = "control_room"
    """The control room's duty phone and its group robots (from the settings)."""


FirstContact = str
"""What `first_contact` reports: "elder", "visitor", "relative", "control_room"."""

_FIRST_CONTACT: dict[Audience, FirstContact] = {
    Audience.ELDER: "elder",
    Audience.VISITORS: "visitor",
    Audience.FIRST_RELATIVE: "relative",
    Audience.RELATIVES: "relative",
    Audience.CONTROL_ROOM: "control_room",
}

INACTIVITY_RULES: tuple[str, ...] = ("no_water_use", "no_power_use", "missed_routine")
"""Rules whose alerts are, in the field, mostly a late morning or a day out: the elder is
called first and asked to press 1."""


class Step(BaseModel):
    """One step of a policy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    to: list[Audience] = Field(min_length=1, max_length=5)
    channels: list[Channel] = Field(min_length=1, max_length=3)
    wait_min: float = Field(gt=0, le=7 * 24 * 60)
    """Minutes to wait for an acknowledgement before the next step (or, for the last step,
    before it is repeated)."""
    flag: bool = False
    """Flag the alert for the control room's attention when this step runs."""
    checkin: bool = False
    """A check-in call: the elder is asked to press 1 if well (voice only)."""

    @field_validator("to", "channels")
    @classmethod
    def _distinct(cls, value: list[Any]) -> list[Any]:
        if len(set(value)) != len(value):
            raise ValueError("lists each entry once")
        return value


class Policy(BaseModel):
    """The steps an alert's escalation runs through, frozen onto the alert when it opens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    steps: list[Step] = Field(min_length=1, max_length=10)
    closed_loop_min: float | None = None
    """After acknowledgement, escalate again if nobody confirms arrival or resolves within
    this many minutes (critical alerts); None: acknowledgement ends the escalation."""

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Policy:
        return cls.model_validate(data)

    def first_contact(self) -> FirstContact | None:
        """Who this policy contacts first."""
        first = self.steps[0].to[0] if self.steps else None
        return _FIRST_CONTACT[first] if first is not None else None

    def first_person_step(self) -> int:
        """The first step that is not a check-in with the elder (re-escalation starts there)."""
        return next((i for i, s in enumerate(self.steps) if not s.checkin), 0)


def _step(to: Sequence[Audience], channels: Sequence[Channel], wait: float, **kw: Any) -> Step:
    return Step(to=list(to), channels=list(channels), wait_min=wait, **kw)


V, R1, R, CR = Audience.VISITORS, Audience.FIRST_RELATIVE, Audience.RELATIVES, Audience.CONTROL_ROOM
SMS, VOICE, ROBOT = Channel.SMS, Channel.VOICE, Channel.ROBOT

DEFAULT_POLICIES: dict[Severity, list[Step]] = {
    # DESIGN.md §6: the visitor and the first relative at once by SMS and voice; relatives after
    # 2 minutes; then the control room, flagged, repeated every 10 minutes.
    Severity.CRITICAL: [
        _step([V, R1], [SMS, VOICE], 2),
        _step([R], [SMS, VOICE], 3),
        _step([CR], [SMS, VOICE, ROBOT], 10, flag=True),
    ],
    Severity.HIGH: [
        _step([V], [SMS, VOICE], 5),
        _step([R], [SMS, VOICE], 5),
        _step([CR], [SMS, VOICE, ROBOT], 10, flag=True),
    ],
    Severity.MEDIUM: [
        _step([V], [SMS], 15),
        _step([R], [SMS], 30),
        _step([CR], [SMS, ROBOT], 60, flag=True),
    ],
    # A low battery or the like: the visitor, reminded daily until someone takes it on.
    Severity.LOW: [_step([V], [SMS], 24 * 60)],
}

CHECKIN_WAIT_MIN = 3.0
CLOSED_LOOP_MIN = 30.0


def checkin_step(wait_min: float = CHECKIN_WAIT_MIN) -> Step:
    return Step(to=[Audience.ELDER], channels=[Channel.VOICE], wait_min=wait_min, checkin=True)


def resolve_policy(
    severity: Severity,
    rule_id: str,
    policies: Mapping[Severity, Sequence[Step]],
    *,
    checkin_rules: Sequence[str] = INACTIVITY_RULES,
    checkin_wait_min: float = CHECKIN_WAIT_MIN,
    closed_loop_min: float | None = CLOSED_LOOP_MIN,
) -> Policy:
    """The policy an alert of `rule_id` at `severity` is escalated by.

    `policies` are the configured steps per severity (a household's own where it has them);
    for the rules in `checkin_rules` a check-in call to the elder comes first, and critical
    alerts get the closed loop.
    """
    steps = list(policies.get(severity) or DEFAULT_POLICIES[severity])
    if rule_id in checkin_rules and not any(s.checkin for s in steps):
        steps.insert(0, checkin_step(checkin_wait_min))
    return Policy(
        name=severity.value,
        steps=steps,
        closed_loop_min=closed_loop_min if severity is Severity.CRITICAL else None,
    )
