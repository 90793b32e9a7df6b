"""What the live feed carries: committed changes, or word that some may have been lost."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ChangeKind = Literal[
    "opened",
    "updated",
    "acknowledged",
    "arrived",
    "escalated",
    "flagged",
    "resolved",
    "checkin",
]

CHANGE_OF_EVENT: dict[str, ChangeKind] = {
    "opened": "opened",
    "acknowledged": "acknowledged",
    "arrived": "arrived",
    "resolved": "resolved",
    "auto_resolved": "resolved",
    "flagged": "flagged",
    "checkin_call": "checkin",
    "checkin_answered": "checkin",
    "checkin_unanswered": "checkin",
    "notifying": "escalated",
    "escalated": "escalated",
    "reescalated": "escalated",
    "notified": "escalated",
    "notification_held": "escalated",
    "notification_failed": "escalated",
    "not_delivered": "escalated",
    "no_recipient": "escalated",
    "fallback": "escalated",
    "step_skipped": "escalated",
    "step_failed": "escalated",
}
"""The page's kind of change for each event of an alert's history (`alert_events.event`);
any other event (a repeat, a condition cleared or recurring) is an "updated"."""


def change_of(event: str) -> ChangeKind:
    """The kind of change an alert history event is to the page."""
    return CHANGE_OF_EVENT.get(event, "updated")


@dataclass(frozen=True, slots=True)
class AlertChanged:
    """An alert changed; `status` is the alert's status after the change."""

    id: int
    household_id: str
    rule: str
    severity: str
    status: str
    change: ChangeKind

    def frame(self) -> dict[str, object]:
        return {
            "id": self.id,
            "household_id": self.household_id,
            "rule": self.rule,
            "severity": self.severity,
            "status": self.status,
            "change": self.change,
        }


@dataclass(frozen=True, slots=True)
class Changed:
    """What one or more commits changed."""

    alerts: tuple[AlertChanged, ...] = ()
    households: frozenset[str] = frozenset()
    """Households whose devices, visits or registry changed."""
    warnings: frozenset[tuple[int, str]] = frozenset()
    """(warning id, household id): an elder of the warning was accounted for."""
    registry: frozenset[str] = frozenset()
    """Households whose registry entry changed: who may see them may have changed too."""

    def __bool__(self) -> bool:
        return bool(self.alerts or self.households or self.warnings or self.registry)


@dataclass(frozen=True, slots=True)
class Resync:
    """Changes may have been lost: whoever listens refetches everything it shows."""

    reason: str


LiveEvent = Changed | Resync
