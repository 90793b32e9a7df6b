"""The visit-reminder job: each visitor gets, by SMS, the elders they have not yet visited.

Run hourly (at the minute of `[care] send_at`, in the gateway's zone); what is due is decided
by gateway/care/reminder_plan.py from the clock. Each reminder is claimed in `care_reminders`
(unique per phone, kind and period) in the same transaction that queues its SMS, so restarts
and several gateway processes on one database never send one twice; the alert dispatcher then
sends it (retries, provider, delivery reports).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.alerts.notifiers.base import Purpose
from gateway.alerts.outbox import queue_message
from gateway.care.phones import normalise_phone
from gateway.care.reminder_plan import (
    Due,
    ReminderKind,
    ReminderRules,
    Sent,
    Ward,
    due_now,
    not_yet_reminded,
    reminder_fields,
    reminder_text,
    wards_due,
)
from gateway.clock import Clock
from gateway.reports.coverage import Contact, in_programme, local_date, month_of
from gateway.store.care_tables import care_reminders
from gateway.store.coverage import Assignment, assignments, ledger_elders, visit_contacts
from gateway.store.dialect import upsert
from gateway.store.tables import households

log = logging.getLogger(__name__)

_KINDS = frozenset(k.value for k in ReminderKind)


@dataclass(frozen=True, slots=True)
class Visitor:
    """One person, however many contact rows name them: keyed by the normalised phone."""

    key: str
    name: str
    phone: str
    language: str
    household_ids: frozenset[str]


def visitors_of(rows: Iterable[Assignment], default_language: str) -> list[Visitor]:
    """The distinct visitors among the assignments (name, phone and language: the first row's
    that has one)."""
    grouped: dict[str, list[Assignment]] = {}
    for row in rows:
        key = normalise_phone(row.phone)
        if key:
            grouped.setdefault(key, []).append(row)
    return [
        Visitor(
            key=key,
            name=found[0].name,
            phone=found[0].phone,
            language=next((r.language for r in found if r.language), default_language),
            household_ids=frozenset(r.household_id for r in found),
        )
        for key, found in sorted(grouped.items())
    ]


class VisitReminders:
    """Finds the reminders due now and queues them, once each."""

    def __init__(
        self,
        db: AsyncEngine,
        clock: Clock,
        rules: ReminderRules,
        zone: ZoneInfo,
        *,
        language: str,
        submit: Callable[[Iterable[int]], None],
    ) -> None:
        self.db = db
        self.clock = clock
        self.rules = rules
        self.zone = zone
        self.language = language
        self.submit = submit

    async def run_due(self) -> list[int]:
        """Queue the reminders due now; the notification ids queued (and submitted)."""
        now = self.clock.now()
        due = due_now(now, self.zone, self.rules)
        if not due:
            return []
        async with self.db.connect() as conn:
            wards, visitors, contacts, sent = await self._read(conn, now)
        queued: list[int] = []
        for item in due:
            for_kind = {
                w.household_id: w
                for w in wards_due(item.kind, wards, contacts, now, self.zone, self.rules)
            }
            for visitor in visitors:
                mine = sorted(
                    (for_kind[h] for h in visitor.household_ids if h in for_kind),
                    key=lambda w: (w.village, w.name, w.household_id),
                )
                mine = not_yet_reminded(item.kind, visitor.key, mine, sent, now, self.rules)
                if mine:
                    nid = await self._claim_and_queue(item, visitor, mine, now)
                    if nid is not None:
                        queued.append(nid)
        if queued:
            self.submit(queued)
            log.info("queued %d visit reminders", len(queued))
        return queued

    async def _read(
        self, conn: AsyncConnection, now: datetime
    ) -> tuple[list[Ward], list[Visitor], list[Contact], list[Sent]]:
        today = local_date(now, self.zone)
        elders = [
            e
            for e in await ledger_elders(conn, self.zone, not_left_before=today)
            if in_programme(e, today, today)
        ]
        extra = {
            row.id: row
            for row in await conn.execute(
                sa.select(households.c.id, households.c.risk, households.c.situation_changed_at)
            )
        }
        wards = [
            Ward(
                e.household_id,
                e.name,
                e.village,
                extra[e.household_id].risk,
                extra[e.household_id].situation_changed_at,
            )
            for e in elders
        ]
        visitors = visitors_of(
            await assignments(conn, [w.household_id for w in wards]), self.language
        )
        lookback = max(
            timedelta(days=self.rules.high_risk_every_days or 0),
            timedelta(hours=self.rules.changed_within_hours or 0),
        )
        month_start, _ = month_of(now, self.zone).bounds(self.zone)
        since = min(month_start, now - lookback)
        contacts = await visit_contacts(conn, since, now + timedelta(days=366))
        return wards, visitors, contacts, await self._sent(conn, now - lookback)

    async def _sent(self, conn: AsyncConnection, since: datetime) -> list[Sent]:
        rows = await conn.execute(
            sa.select(
                care_reminders.c.phone,
                care_reminders.c.kind,
                care_reminders.c.households,
                care_reminders.c.sent_at,
            ).where(
                care_reminders.c.sent_at >= since,
                care_reminders.c.kind != ReminderKind.MONTHLY.value,
            )
        )
        return [
            Sent(r.phone, ReminderKind(r.kind), frozenset(r.households), r.sent_at)
            for r in rows
            if r.kind in _KINDS
        ]

    async def _claim_and_queue(
        self, due: Due, visitor: Visitor, wards: Sequence[Ward], now: datetime
    ) -> int | None:
        """Claim (phone, kind, period) and queue the SMS in one transaction; None: taken."""
        async with self.db.begin() as conn:
            claim = (
                upsert(conn, care_reminders)
                .values(
                    phone=visitor.key,
                    kind=due.kind.value,
                    period=due.period,
                    households=[w.household_id for w in wards],
                    sent_at=now,
                )
                .on_conflict_do_nothing(index_elements=["phone", "kind", "period"])
                .returning(care_reminders.c.id)
            )
            if (await conn.execute(claim)).scalar_one_or_none() is None:
                return None
            return await queue_message(
                conn,
                purpose=Purpose.REMINDER,
                recipient_role="visitor",
                name=visitor.name,
                phone=visitor.phone,
                body=reminder_text(due.kind, wards, visitor.language, self.rules),
                language=visitor.language,
                reason=f"visit reminder: {due.kind.value} {due.period} ({len(wards)} elders)",
                now=now,
                fields=reminder_fields(
                    due.kind, wards, visitor.language, self.rules, local_date(now, self.zone)
                ),
            )
