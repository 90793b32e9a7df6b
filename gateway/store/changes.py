"""What a transaction changed, noted on its connection, for listeners to hear once committed.

Store functions that change what people watch (alerts, device state, visits, warnings) note it
here. The notes are plain values kept in the connection's `info`; store/ knows no listener. A
listener that wants them (gateway/live/capture.py) opens a `Notes` on each checkout, keeps what
a commit confirmed and drops what a rollback undid. Without one, noting does nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncConnection

NOTES_KEY = "gateway.changes"
"""Key of the open `Notes` in a connection's `info` (present only while someone listens)."""


@dataclass(slots=True)
class Notes:
    """Changes noted in the transaction in progress on one connection."""

    alerts: list[tuple[int, str]] = field(default_factory=list)
    """(alert id, what happened: an `alert_events` event, or "updated")."""
    households: set[str] = field(default_factory=set)
    """Households whose devices, visits or registry changed."""
    warnings: set[tuple[int, str]] = field(default_factory=set)
    """(warning id, household id) whose accounted-for state changed."""

    def __bool__(self) -> bool:
        return bool(self.alerts or self.households or self.warnings)

    def absorb(self, other: Notes) -> None:
        self.alerts += other.alerts
        self.households |= other.households
        self.warnings |= other.warnings


def _notes(conn: AsyncConnection) -> Notes | None:
    notes = conn.info.get(NOTES_KEY)
    return notes if isinstance(notes, Notes) else None


def note_alert(conn: AsyncConnection, alert_id: int, event: str) -> None:
    """An alert changed in this transaction (`event` as written to its history)."""
    notes = _notes(conn)
    if notes is not None:
        notes.alerts.append((alert_id, event))


def note_households(conn: AsyncConnection, household_ids: Iterable[str]) -> None:
    """These households' devices, visits or registry changed in this transaction."""
    notes = _notes(conn)
    if notes is not None:
        notes.households.update(household_ids)


def note_warning(conn: AsyncConnection, warning_id: int, household_id: str) -> None:
    """An elder of a warning was accounted for (or their mark changed) in this transaction."""
    notes = _notes(conn)
    if notes is not None:
        notes.warnings.add((warning_id, household_id))
