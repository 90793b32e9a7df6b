"""What running an escalation's due step means: who is told, on which channels, with which
words, and what goes on the alert's record — decided without the database.

The escalator writes the outcome: at once for a step that falls due later, in bulk for the
first steps of the alerts a batch opens (one statement per table however many alerts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gateway.alerts.links import AckLinks
from gateway.alerts.messages import AlertText, Texts, alert_fields
from gateway.alerts.notifiers.base import Channel, Purpose
from gateway.alerts.policy import Audience, Policy, Step
from gateway.care.households import Household
from gateway.config import EscalationSettings, RobotSettings
from gateway.store.alerts import AlertRecord

RUNNING = "running"
ACKNOWLEDGED = "acknowledged"
"""Acknowledged, a closed loop running: escalates again unless someone arrives or resolves."""
DONE = "done"


@dataclass(frozen=True, slots=True)
class Recipient:
    role: str
    """elder, visitor, relative, control_room or robot."""
    name: str
    address: str
    """A phone number (E.164), or a robot's name."""
    language: str


@dataclass(frozen=True, slots=True)
class Progress:
    """Where an escalation stands (its `escalations` row)."""

    policy: Policy
    state: str
    step: int
    rounds: int
    runs: int


@dataclass(frozen=True, slots=True)
class Message:
    """A notification to queue."""

    alert_id: int
    step: int
    run: int
    channel: Channel
    recipient: Recipient
    reason: str
    purpose: Purpose
    body: str
    fields: Mapping[str, str] | None

    def row(self, now: datetime) -> dict[str, Any]:
        """Its `notifications` row, pending."""
        return {
            "alert_id": self.alert_id,
            "channel": self.channel.value,
            "recipient_role": self.recipient.role,
            "recipient_name": self.recipient.name,
            "recipient_phone": self.recipient.address,
            "reason": self.reason[:200],
            "body": self.body[:1000],
            "status": "pending",
            "attempts": 0,
            "created_at": now,
            "step": self.step,
            "run": self.run,
            "purpose": self.purpose.value,
            "language": self.recipient.language,
            "fields": dict(self.fields) if self.fields else None,
        }


@dataclass(slots=True)
class StepRun:
    """What running one escalation's due step does, for the escalator to write."""

    alert_id: int
    next_at: datetime
    step: int = 0
    rounds: int = 0
    runs: int = 0
    messages: list[Message] = field(default_factory=list)
    events: list[tuple[str, str]] = field(default_factory=list)
    """(event, detail) for the alert's history, in order."""
    reescalated: bool = False
    """Acknowledged but nobody arrived: the alert is escalated again."""
    escalated: bool = False
    """A step past the first reached someone: an open or notified alert is now escalated."""
    flag: str | None = None
    """Flag the alert for the control room, for this reason."""
    counted: list[str] = field(default_factory=list)
    """Labels of the escalation-step metric to count."""


class StepPlanner:
    """Plans escalation steps from a policy, a household and the gateway's settings."""

    def __init__(
        self,
        settings: EscalationSettings,
        texts: Texts,
        *,
        language: str,
        default_zone: ZoneInfo,
        hears_answers: bool,
    ) -> None:
        self.settings = settings
        self.texts = texts
        self.language = language
        self.default_zone = default_zone
        self.hears_answers = hears_answers
        self.links: AckLinks | None = None

    def plan(
        self,
        progress: Progress,
        alert: AlertRecord,
        household: Household | None,
        now: datetime,
    ) -> StepRun:
        """Run what is due for one escalation: the next step that reaches someone (skipping
        those that reach nobody), or a flag when no step does."""
        policy = progress.policy
        step, rounds, note = progress.step, progress.rounds, None
        out = StepRun(alert.id, now, runs=progress.runs)
        if progress.state == ACKNOWLEDGED:
            step, rounds = policy.first_person_step(), 0
            note = self.texts.render(
                "reescalated",
                self.language,
                by=alert.acknowledged_by or "-",
                minutes=f"{policy.closed_loop_min:g}",
            )
            out.events.append(
                (
                    "reescalated",
                    f"acknowledged by {alert.acknowledged_by}, nobody on site within "
                    f"{policy.closed_loop_min:g} min",
                )
            )
            out.reescalated = True
        skipped = 0
        while True:
            index = min(step, len(policy.steps) - 1)
            repeat = step >= len(policy.steps)
            current = policy.steps[index]
            recipients, why_nobody = self.recipients(current, household, alert)
            if recipients:
                assert household is not None  # recipients come from it
                out.runs = progress.runs + 1
                self._send(out, alert, household, index, current, recipients, rounds, repeat, note)
                out.next_at = now + timedelta(minutes=current.wait_min)
                step, rounds = (step, rounds + 1) if repeat else (step + 1, rounds)
                break
            out.events.append(
                ("step_skipped", f"step {index + 1}/{len(policy.steps)}: {why_nobody}")
            )
            skipped += 1
            if repeat or skipped > len(policy.steps):
                # Nobody anywhere in the policy: the control room must see it.
                out.flag = "no_recipient"
                out.next_at = now + timedelta(minutes=current.wait_min)
                break
            step += 1
        out.step, out.rounds = step, rounds
        return out

    def _send(
        self,
        out: StepRun,
        alert: AlertRecord,
        household: Household,
        index: int,
        step: Step,
        recipients: Sequence[Recipient],
        rounds: int,
        repeat: bool,
        note: str | None,
    ) -> None:
        zone = household.zone(self.default_zone)
        purpose = Purpose.CHECKIN if step.checkin else Purpose.ALERT
        who = ", ".join(sorted({r.role for r in recipients}))
        channels = ", ".join(c.value for c in step.channels)
        reason = f"step {index + 1}: {who}" + (f" (repeat {rounds + 1})" if repeat else "")
        for recipient in recipients:
            lang = recipient.language
            fields = alert_fields(
                AlertText(
                    rule_id=alert.rule_id,
                    severity=alert.severity,
                    elder_name=household.elder_name,
                    address=household.address.one_line(),
                    device_id=alert.device_id,
                    at=alert.opened_at,
                ),
                "en" if lang == "en" else "zh",
                zone,
            )
            prefix = (note or "") + (
                self.texts.render("repeat", lang, round=rounds + 2) if repeat else ""
            )
            for channel in self._channels(step, recipient):
                body = self._body(purpose, channel, lang, fields, household, prefix)
                if channel is Channel.ROBOT and self.links is not None:
                    fields = {**fields, "link": self.links.url(alert.id)}
                out.messages.append(
                    Message(
                        alert.id, index, out.runs, channel, recipient, reason, purpose, body, fields
                    )
                )
        event = (
            "checkin_call" if step.checkin else ("escalated" if index or repeat else "notifying")
        )
        out.events.append(
            (
                event,
                f"{reason} by {channels}: " + ", ".join(f"{r.name} ({r.role})" for r in recipients),
            )
        )
        out.counted.append(event)
        if (index or repeat) and not step.checkin:
            out.escalated = True
        if step.flag:
            out.flag = "control_room"

    def _channels(self, step: Step, recipient: Recipient) -> list[Channel]:
        if recipient.role == "robot":
            return [Channel.ROBOT]
        if step.checkin:
            return [Channel.VOICE]
        return [c for c in step.channels if c is not Channel.ROBOT]

    def _body(
        self,
        purpose: Purpose,
        channel: Channel,
        lang: str,
        fields: Mapping[str, str],
        household: Household,
        prefix: str,
    ) -> str:
        if purpose is Purpose.CHECKIN:
            return self.texts.render("checkin", lang, elder=household.elder_name)
        if channel is Channel.ROBOT:
            return prefix + self.texts.render("robot_body", lang, **fields)
        ack = ""
        if channel is Channel.SMS and self.hears_answers:
            ack = self.texts.render("ack_sms", lang)
        return prefix + self.texts.render("alert", lang, **{**fields, "ack": ack})

    def recipients(
        self, step: Step, household: Household | None, alert: AlertRecord
    ) -> tuple[list[Recipient], str]:
        """Who this step reaches, once each (by address), or why nobody."""
        if household is None:
            return [], "unknown household"
        found: dict[tuple[str, str], Recipient] = {}
        missing: list[str] = []
        default = self.language
        for audience in step.to:
            people: list[Recipient] = []
            if audience is Audience.ELDER:
                if not self.hears_answers:
                    missing.append("check-in call off: no public_url to hear the answer")
                elif household.elder_phone:
                    people = [
                        Recipient("elder", household.elder_name, household.elder_phone, default)
                    ]
                else:
                    missing.append("no phone for the elder on file")
            elif audience is Audience.VISITORS:
                people = [
                    Recipient("visitor", c.name, c.phone, c.language or default)
                    for c in household.visitors
                ]
                if not people:
                    missing.append("no visitor on file")
            elif audience in (Audience.FIRST_RELATIVE, Audience.RELATIVES):
                chosen = (
                    household.relatives[:1]
                    if audience is Audience.FIRST_RELATIVE
                    else (household.relatives)
                )
                people = [
                    Recipient("relative", c.name, c.phone, c.language or default) for c in chosen
                ]
                if not people:
                    missing.append("no relative on file")
            elif audience is Audience.CONTROL_ROOM:
                room = self.settings.control_room
                if room.phone:
                    people = [
                        Recipient("control_room", room.name, room.phone, room.language or default)
                    ]
                elif not self._robots(household, control_room=True) or (
                    Channel.ROBOT not in step.channels
                ):
                    missing.append("no control-room phone or robot configured")
            for person in people:
                found.setdefault((person.address, person.role), person)
        if Channel.ROBOT in step.channels and not step.checkin:
            control = Audience.CONTROL_ROOM in step.to
            for robot in self._robots(household, control_room=control):
                found.setdefault(
                    (robot.name, "robot"), Recipient("robot", robot.name, robot.name, default)
                )
        # A person on file twice (a visitor who is also a relative) is told once.
        by_address: dict[str, Recipient] = {}
        for person in found.values():
            by_address.setdefault(person.address, person)
        return list(by_address.values()), "; ".join(missing) or "nobody to contact"

    def _robots(self, household: Household, *, control_room: bool) -> list[RobotSettings]:
        village = household.address.village
        return [
            r
            for r in self.settings.robots
            if (village and village in r.villages) or (control_room and not r.villages)
        ]
