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

from gateway.alerts.escalation import Escalator, Start
from gateway.alerts.messages import Language
from gateway.alerts.visits import CHECKIN_NOTE, file_visit
from gateway.care.households import Household, get_households
from gateway.clock import Clock
from gateway.config import EscalationSettings
from gateway.models import AlertStatus, EvidenceValue, Finding, FindingAction, Severity
from gateway.observability import GatewayMetrics
from gateway.rules.catalogue import QuietHoursConfig
from gateway.store.alerts import (
    AlertKey,
    AlertRecord,
    EventRow,
    active_alerts_of,
    add_event,
    add_events,
    alert_key,
    find_active,
    get_alert,
    open_alerts,
    update_alert,
)
from gateway.store.tables import alerts, notifications

log = logging.getLogger(__name__)

SYSTEM_ACTOR = "system"
HOUSEHOLDS_PER_QUERY = 1000


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
        transaction; the caller announces `Applied.changes` after its commit.

        Everything is read from the database, so any gateway process may apply any finding:
        a clear closes the alert another process opened, and an alert two processes open at
        once is one alert (the second's finding repeats it). Consecutive openings are written
        together, a few statements for the lot."""
        applied = Applied()
        opening: list[Finding] = []
        for item in findings:
            if item.action is FindingAction.OPEN:
                opening.append(item)
                continue
            await self._open(conn, opening, applied)
            opening = []
            await self._clear(conn, item, applied)
        await self._open(conn, opening, applied)
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

    async def _open(
        self, conn: AsyncConnection, findings: Sequence[Finding], applied: Applied
    ) -> None:
        """Open an alert for each key without an active one, and repeat the active ones."""
        if not findings:
            return
        now = self.clock.now()
        by_key: dict[AlertKey, list[Finding]] = {}
        for item in findings:
            by_key.setdefault(alert_key(item), []).append(item)
        active = await active_alerts_of(conn, by_key)
        opened: dict[AlertKey, AlertRecord] = {}
        missing = [key for key in by_key if key not in active]
        while missing:
            opened |= await open_alerts(conn, [by_key[key][0] for key in missing], now)
            # Not inserted: another process's alert, committed meanwhile, is the one to repeat
            # (or, were it resolved meanwhile too, the next round opens a new one).
            lost = [key for key in missing if key not in opened]
            active |= await active_alerts_of(conn, lost) if lost else {}
            missing = [key for key in lost if key not in active]
        for key, group in by_key.items():
            repeats = group[1:] if key in opened else group
            if repeats:
                await self._repeat(conn, opened.get(key) or active[key], repeats, now)
        fresh = [(opened[key], group[0]) for key, group in by_key.items() if key in opened]
        await self._escalate(conn, fresh, applied, now)

    async def _repeat(
        self, conn: AsyncConnection, alert: AlertRecord, repeats: Sequence[Finding], now: datetime
    ) -> None:
        """The condition of an active alert was found again: it is the same alert."""
        await update_alert(
            conn,
            alert.id,
            last_seen_at=max(alert.last_seen_at, *(item.ts for item in repeats)),
            # Counted in SQL: another process may be repeating the same alert.
            occurrences=alerts.c.occurrences + len(repeats),
            evidence=repeats[-1].evidence,
            condition_cleared_at=None,
            updated_at=now,
        )
        if alert.condition_cleared_at is not None:
            await add_event(conn, alert.id, now, "recurred", SYSTEM_ACTOR, repeats[0].summary)

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
        self,
        conn: AsyncConnection,
        fresh: Sequence[tuple[AlertRecord, Finding]],
        applied: Applied,
        now: datetime,
    ) -> None:
        """Note the new alerts opened and start their escalations (each one's first step at
        once, unless held)."""
        homes = await self._households(conn, {alert.household_id for alert, _ in fresh})
        events: list[EventRow] = []
        starts: list[Start] = []
        for alert, item in fresh:
            events.append((alert.id, now, "opened", SYSTEM_ACTOR, item.summary))
            household = homes.get(alert.household_id)
            not_before = None
            if household is None:
                events.append((alert.id, now, "no_recipient", SYSTEM_ACTOR, "unknown household"))
            else:
                not_before = self._hold(alert.id, household.id, item.severity, now, events)
            starts.append(Start(alert, household, not_before))
            applied.opened.append(alert.id)
            applied.changes.append(
                AlertChange(
                    item.household_id, item.rule_id, item.device_id, item.ts, True, item.evidence
                )
            )
        await add_events(conn, events)
        applied.notification_ids += await self.escalator.begin(conn, starts)

    async def _households(self, conn: AsyncConnection, ids: set[str]) -> dict[str, Household]:
        """These households with their contacts, by id (the ones that exist)."""
        wanted = sorted(ids)
        found: dict[str, Household] = {}
        for start in range(0, len(wanted), HOUSEHOLDS_PER_QUERY):
            chunk = wanted[start : start + HOUSEHOLDS_PER_QUERY]
            found |= {h.id: h for h in await get_households(conn, chunk)}
        return found

    def _hold(
        self,
        alert_id: int,
        household_id: str,
        severity: Severity,
        now: datetime,
        events: list[EventRow],
    ) -> datetime | None:
        """The end of the household's quiet hours if they hold this alert's messages, noted."""
        if self.quiet_hours is None:
            return None
        config, zone = self.quiet_hours(household_id)
        until = quiet_hours_end(config, severity, now, zone)
        if until is not None:
            local = until.astimezone(zone)
            events.append(
                (
                    alert_id,
                    now,
                    "notification_held",
                    SYSTEM_ACTOR,
                    f"quiet hours: messages wait until {local:%Y-%m-%d %H:%M}",
                )
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
