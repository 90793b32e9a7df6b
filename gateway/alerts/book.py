"""The alert book: alert lifecycle (open -> notified -> acknowledged -> resolved) in the database.

Every state change is written to `alert_events`, and every message to be sent is written to
`notifications` (status `pending`) in the same transaction, so a restart loses nothing. A message
about a low-severity alert opened in the household's quiet hours is written with `not_before`,
the end of those hours: the dispatcher holds it until then.

Listeners hear that an alert opened or closed only once that is committed: `apply` returns the
changes for its caller to `announce` after its commit; `acknowledge` and `resolve` own their
transaction and announce themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.alerts.escalation import Escalator
from gateway.alerts.messages import Language
from gateway.alerts.visits import CHECKIN_NOTE, file_visit
from gateway.care.households import get_household
from gateway.clock import Clock
from gateway.config import EscalationSettings
from gateway.models import AlertStatus, EvidenceValue, Finding, FindingAction, Severity
from gateway.observability import GatewayMetrics
from gateway.rules.catalogue import QuietHoursConfig
from gateway.store.alerts import (
    AlertRecord,
    add_event,
    find_active,
    get_alert,
    insert_alert,
    update_alert,
)
from gateway.store.tables import notifications

log = logging.getLogger(__name__)

SYSTEM_ACTOR = "system"


@dataclass(frozen=True, slots=True)
class AlertChange:
    """An alert became active or stopped being active (for the rule engine's state)."""

    household_id: str
    rule_id: str
    device_id: str
    opened_at: datetime
    active: bool
    evidence: Mapping[str, EvidenceValue] = field(default_factory=dict)
    """The finding's evidence, for an alert that opened."""
    outcome: str | None = None
    """How a closed alert ended, when it says something about the rule: "well" (the elder
    answered a check-in call: a false alarm)."""


@dataclass(slots=True)
class Applied:
    """What applying findings did, in a transaction the caller is yet to commit."""

    notification_ids: list[int] = field(default_factory=list)
    opened: list[int] = field(default_factory=list)
    changes: list[AlertChange] = field(default_factory=list)
    """To `announce` once committed."""


class TransitionRefused(Exception):
    """The alert is not in a state that allows this (e.g. acknowledging a resolved alert)."""


class AlertNotFound(Exception):
    pass


AlertListener = Callable[[AlertChange], None]

QuietHoursFor = Callable[[str], tuple[QuietHoursConfig, ZoneInfo]]
"""A household's quiet hours and its time zone, by household id."""


class AlertBook:
    """Applies Findings and people's actions to alerts."""

    def __init__(
        self,
        db: AsyncEngine,
        clock: Clock,
        language: Language,
        default_zone: ZoneInfo,
        *,
        quiet_hours: QuietHoursFor | None = None,
        escalator: Escalator | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.language = language
        self.default_zone = default_zone
        self.quiet_hours = quiet_hours
        self.listeners: list[AlertListener] = []
        self.escalator = escalator or Escalator(
            db,
            clock,
            EscalationSettings(),
            GatewayMetrics(),
            language=language,
            default_zone=default_zone,
            public_url=None,
            submit=lambda ids: None,
        )
        """Runs each alert's escalation: the built-in policies unless one is given."""

    async def apply(self, conn: AsyncConnection, findings: Sequence[Finding]) -> Applied:
        """Open, update or close alerts for these findings, in order, in the caller's
        transaction; the caller announces `Applied.changes` after its commit."""
        applied = Applied()
        for item in findings:
            if item.action is FindingAction.OPEN:
                await self._open(conn, item, applied)
            else:
                await self._clear(conn, item, applied)
        return applied

    def announce(self, changes: Iterable[AlertChange]) -> None:
        """Tell the listeners about committed changes, in order."""
        for change in changes:
            for listener in self.listeners:
                try:
                    listener(change)
                except Exception:  # the change is committed: a broken listener must not undo
                    log.exception("alert listener %r failed", listener)

    async def acknowledge(self, alert_id: int, by: str) -> AlertRecord:
        """Someone has taken charge (committed at once)."""
        async with self.db.begin() as conn:
            return await self._acknowledge(conn, alert_id, by)

    async def resolve(self, alert_id: int, by: str, note: str) -> AlertRecord:
        """Close the alert with what was done (committed at once, then announced)."""
        applied = Applied()
        async with self.db.begin() as conn:
            alert = await self._get(conn, alert_id)
            if alert.status is AlertStatus.RESOLVED:
                raise TransitionRefused(f"alert {alert_id} is already resolved")
            await self._close(conn, alert, by, note, applied, event="resolved")
            resolved = await self._get(conn, alert_id)
        self.announce(applied.changes)
        return resolved

    async def arrive(self, alert_id: int, by: str) -> AlertRecord:
        """Someone is at the elder's home: the escalation ends (acknowledging it if need be)."""
        async with self.db.begin() as conn:
            return await self._arrive(conn, alert_id, by)

    async def _arrive(self, conn: AsyncConnection, alert_id: int, by: str) -> AlertRecord:
        alert = await self._acknowledge(conn, alert_id, by)
        if alert.arrived_at is not None:
            return alert
        now = self.clock.now()
        await update_alert(conn, alert_id, arrived_at=now, arrived_by=by, updated_at=now)
        await add_event(conn, alert_id, now, "arrived", by, None)
        await self.escalator.finished(conn, alert_id, now)
        return await self._get(conn, alert_id)

    async def checkin_answered(self, alert_id: int, elder: str, detail: str) -> AlertRecord | None:
        """The elder answered a check-in call with 1 ("I am well"): the alert is closed as a
        false alarm, filed as a phone visit, and the rules hear it (outcome "well")."""
        applied = Applied()
        async with self.db.begin() as conn:
            alert = await self._get(conn, alert_id)
            if alert.status is AlertStatus.RESOLVED:
                return None
            now = self.clock.now()
            await update_alert(
                conn, alert_id, acknowledged_at=now, acknowledged_by=elder, updated_at=now
            )
            await add_event(conn, alert_id, now, "checkin_answered", elder, detail)
            alert = await self._get(conn, alert_id)
            await self._close(
                conn,
                alert,
                elder,
                CHECKIN_NOTE[self.language],
                applied,
                event="resolved",
                outcome="well",
            )
            closed = await self._get(conn, alert_id)
        self.announce(applied.changes)
        return closed

    async def _acknowledge(self, conn: AsyncConnection, alert_id: int, by: str) -> AlertRecord:
        alert = await self._get(conn, alert_id)
        if alert.status is AlertStatus.RESOLVED:
            raise TransitionRefused(f"alert {alert_id} is already resolved")
        if alert.status is AlertStatus.ACKNOWLEDGED:
            return alert
        now = self.clock.now()
        await update_alert(
            conn,
            alert_id,
            status=AlertStatus.ACKNOWLEDGED,
            acknowledged_at=now,
            acknowledged_by=by,
            updated_at=now,
        )
        await add_event(conn, alert_id, now, "acknowledged", by, None)
        await self.escalator.acknowledged(conn, alert_id, now)
        # Someone has taken charge: messages held back for the quiet hours are no longer needed.
        await conn.execute(
            sa.update(notifications)
            .where(
                notifications.c.alert_id == alert_id,
                notifications.c.status == "pending",
                notifications.c.not_before.is_not(None),
            )
            .values(status="cancelled")
        )
        return await self._get(conn, alert_id)

    async def _open(self, conn: AsyncConnection, item: Finding, applied: Applied) -> None:
        now = self.clock.now()
        active = await find_active(conn, item.household_id, item.rule_id, item.device_id)
        if active is not None:
            await update_alert(
                conn,
                active.id,
                last_seen_at=max(active.last_seen_at, item.ts),
                occurrences=active.occurrences + 1,
                evidence=item.evidence,
                condition_cleared_at=None,
                updated_at=now,
            )
            if active.condition_cleared_at is not None:
                await add_event(conn, active.id, now, "recurred", SYSTEM_ACTOR, item.summary)
            return
        alert_id = await insert_alert(conn, item, AlertStatus.OPEN, now)
        await add_event(conn, alert_id, now, "opened", SYSTEM_ACTOR, item.summary)
        applied.opened.append(alert_id)
        applied.notification_ids += await self._escalate(conn, alert_id, item, now)
        applied.changes.append(
            AlertChange(
                item.household_id, item.rule_id, item.device_id, item.ts, True, item.evidence
            )
        )

    async def _clear(self, conn: AsyncConnection, item: Finding, applied: Applied) -> None:
        active = await find_active(conn, item.household_id, item.rule_id, item.device_id)
        if active is None:
            return
        if item.resolves:
            await self._close(
                conn, active, SYSTEM_ACTOR, item.summary, applied, event="auto_resolved"
            )
            return
        now = self.clock.now()
        await update_alert(conn, active.id, condition_cleared_at=item.ts, updated_at=now)
        await add_event(conn, active.id, now, "condition_cleared", SYSTEM_ACTOR, item.summary)

    async def _close(
        self,
        conn: AsyncConnection,
        alert: AlertRecord,
        by: str,
        note: str,
        applied: Applied,
        *,
        event: str,
        outcome: str | None = None,
    ) -> None:
        now = self.clock.now()
        await self.escalator.finished(conn, alert.id, now)
        await update_alert(
            conn,
            alert.id,
            status=AlertStatus.RESOLVED,
            resolved_at=now,
            resolved_by=by,
            resolution_note=note,
            updated_at=now,
        )
        await add_event(conn, alert.id, now, event, by, note)
        # Messages not yet sent are no longer needed; ones already sent stay on record.
        await conn.execute(
            sa.update(notifications)
            .where(notifications.c.alert_id == alert.id, notifications.c.status == "pending")
            .values(status="cancelled")
        )
        await file_visit(conn, await self._get(conn, alert.id), self.language, now, outcome)
        applied.changes.append(
            AlertChange(
                alert.household_id,
                alert.rule_id,
                alert.device_id,
                alert.opened_at,
                False,
                outcome=outcome,
            )
        )

    async def _escalate(
        self, conn: AsyncConnection, alert_id: int, item: Finding, now: datetime
    ) -> list[int]:
        """Start the new alert's escalation (its first step at once, unless held)."""
        household = await get_household(conn, item.household_id)
        if household is None:
            await add_event(conn, alert_id, now, "no_recipient", SYSTEM_ACTOR, "unknown household")
        not_before = None
        if household is not None:
            not_before = await self._hold(conn, alert_id, household.id, item.severity, now)
        if self.escalator is None:
            return []
        return await self.escalator.begin(
            conn, await self._get(conn, alert_id), household, not_before
        )

    async def _hold(
        self,
        conn: AsyncConnection,
        alert_id: int,
        household_id: str,
        severity: Severity,
        now: datetime,
    ) -> datetime | None:
        """The end of the household's quiet hours if they hold this alert's messages, noted."""
        if self.quiet_hours is None:
            return None
        config, zone = self.quiet_hours(household_id)
        until = quiet_hours_end(config, severity, now, zone)
        if until is not None:
            local = until.astimezone(zone)
            await add_event(
                conn,
                alert_id,
                now,
                "notification_held",
                SYSTEM_ACTOR,
                f"quiet hours: messages wait until {local:%Y-%m-%d %H:%M}",
            )
        return until

    async def _get(self, conn: AsyncConnection, alert_id: int) -> AlertRecord:
        alert = await get_alert(conn, alert_id)
        if alert is None:
            raise AlertNotFound(alert_id)
        return alert


def quiet_hours_end(
    config: QuietHoursConfig, severity: Severity, now: datetime, zone: ZoneInfo
) -> datetime | None:
    """When a message about a `severity` alert opened at `now` may be sent (UTC); None: at once.

    The quiet hours are wall-clock times in `zone`, so the end is the next `config.end` there
    (today's if that is still to come, else tomorrow's), whatever the date or the UTC offset.
    """
    local = now.astimezone(zone)
    if not config.holds(severity, local.time()):
        return None
    day = local.date() if local.time() < config.end else local.date() + timedelta(days=1)
    return datetime.combine(day, config.end, tzinfo=zone).astimezone(UTC)
