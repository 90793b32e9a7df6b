"""Escalation: the steps of an alert's policy, run one after another until someone answers.

When an alert opens, the policy in force is frozen onto it (`escalations.policy`) and its first
step runs in the same transaction, so the first message is queued with the alert itself. Every
later action has a time (`escalations.next_at`): the next step when nobody has acknowledged, the
re-escalation of a critical alert nobody reached after its acknowledgement. `run_due` claims the
due rows (FOR UPDATE SKIP LOCKED on PostgreSQL) and runs each once, however many gateway
processes share the database; everything it needs is in the database, so a restart resumes.

A step that cannot reach anyone moves on at once: nobody on file, a check-in call that nobody
answered (or answered with another key), every message of the step failed. A person whose SMS
failed gets a call instead (and the other way round) before the step counts as failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.alerts.links import AckLinks
from gateway.alerts.messages import Texts
from gateway.alerts.notifiers.base import Channel, Purpose
from gateway.alerts.policy import Policy, Step, resolve_policy
from gateway.alerts.steps import (
    ACKNOWLEDGED,
    DONE,
    RUNNING,
    Message,
    Progress,
    Recipient,
    StepPlanner,
    StepRun,
)
from gateway.care.households import Household, get_household
from gateway.clock import Clock
from gateway.config import EscalationSettings
from gateway.models import AlertStatus, Severity
from gateway.observability import GatewayMetrics
from gateway.store.alerts import AlertRecord, add_event, add_events, get_alert
from gateway.store.tables import alerts, escalations, notifications

log = logging.getLogger(__name__)

SYSTEM_ACTOR = "system"
CLAIM_BATCH = 50
"""Due escalations claimed per transaction."""

FAILED_DELIVERY = frozenset({"failed", "undelivered", "no-answer", "busy", "canceled"})
"""What providers report (later, by callback) about a message that did not reach its person."""
_FALLBACK = {Channel.SMS: Channel.VOICE, Channel.VOICE: Channel.SMS}

Submit = Callable[[Iterable[int]], None]


@dataclass(frozen=True, slots=True)
class Start:
    """A new alert whose escalation begins: its household (None: unknown), and when its
    messages may go (None: at once; else the end of the household's quiet hours)."""

    alert: AlertRecord
    household: Household | None
    not_before: datetime | None


class Escalator:
    """Runs escalation steps; owns the `escalations` rows."""

    def __init__(
        self,
        db: AsyncEngine,
        clock: Clock,
        settings: EscalationSettings,
        metrics: GatewayMetrics,
        *,
        language: str,
        default_zone: ZoneInfo,
        public_url: str | None,
        submit: Submit,
    ) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.metrics = metrics
        self.language = language
        self.default_zone = default_zone
        self.public_url = public_url.rstrip("/") if public_url else None
        self.submit = submit
        self.texts = Texts(settings.templates)
        self.steps = StepPlanner(
            settings,
            self.texts,
            language=language,
            default_zone=default_zone,
            hears_answers=self.public_url is not None,
        )
        self.wake: Callable[[], None] = lambda: None
        """Asks for `run_due` soon (the composition root points it at the scheduler)."""
        self._running = False
        self._again = False

    @property
    def links(self) -> AckLinks | None:
        """Signs the acknowledge links group robots carry (set when the API serves them)."""
        return self.steps.links

    @links.setter
    def links(self, links: AckLinks | None) -> None:
        self.steps.links = links

    @property
    def hears_answers(self) -> bool:
        """Whether providers can call back (keypresses, replies, delivery reports)."""
        return self.public_url is not None

    # The policy.

    def policy_for(self, severity: Severity, rule_id: str, household: Household | None) -> Policy:
        """The policy an alert gets: the household's own steps where it has them."""
        policies: dict[Severity, list[Step]] = dict(self.settings.policies)
        policies.update(household_policies(household.escalation if household else None))
        return resolve_policy(
            severity,
            rule_id,
            policies,
            checkin_rules=self.settings.checkin_rules,
            checkin_wait_min=self.settings.checkin_wait_min,
            closed_loop_min=self.settings.closed_loop_min,
        )

    # Called by the alert book, in its transactions.

    async def begin(self, conn: AsyncConnection, starts: Sequence[Start]) -> list[int]:
        """Freeze the policy onto each new alert and, unless it is held, run its first step;
        returns the notifications queued. The alerts are this transaction's own (nobody else
        can have moved them), so each table is written once for them all."""
        now = self.clock.now()
        positions: list[dict[str, object]] = []
        runs: list[StepRun] = []
        for start in starts:
            alert = start.alert
            policy = self.policy_for(alert.severity, alert.rule_id, start.household)
            started = start.not_before or now
            position = {"step": 0, "rounds": 0, "runs": 0, "next_at": started}
            if started <= now:
                first = Progress(policy, RUNNING, 0, 0, 0)
                run = self.steps.plan(first, alert, start.household, now)
                runs.append(run)
                position = {
                    "step": run.step,
                    "rounds": run.rounds,
                    "runs": run.runs,
                    "next_at": run.next_at,
                }
            positions.append(
                {
                    "alert_id": alert.id,
                    "policy": policy.to_json(),
                    "state": RUNNING,
                    "started_at": started,
                    "updated_at": now,
                    **position,
                }
            )
        if positions:
            await conn.execute(sa.insert(escalations), positions)
        ids = await self._queue(conn, [m for run in runs for m in run.messages], now)
        await add_events(
            conn, [(run.alert_id, now, e, SYSTEM_ACTOR, d) for run in runs for e, d in run.events]
        )
        for run in runs:
            await self._mark(conn, run, now)
        return ids

    async def acknowledged(self, conn: AsyncConnection, alert_id: int, now: datetime) -> None:
        """Someone took charge: steps stop; a closed loop waits for arrival."""
        row = await self._lock(conn, alert_id)
        if row is None or row.state == DONE:
            return
        policy = Policy.from_json(row.policy)
        if policy.closed_loop_min is None:
            await self._set(conn, alert_id, state=DONE, next_at=None, updated_at=now)
            return
        until = now + timedelta(minutes=policy.closed_loop_min)
        await self._set(conn, alert_id, state=ACKNOWLEDGED, next_at=until, updated_at=now)

    async def finished(self, conn: AsyncConnection, alert_id: int, now: datetime) -> None:
        """Someone is on site, or the alert is closed: nothing more to do."""
        await self._set(conn, alert_id, state=DONE, next_at=None, updated_at=now)

    # Time-driven.

    async def run_due(self) -> int:
        """Run every escalation action that is due; returns how many ran."""
        self._running = True
        try:
            return await self._run_due()
        finally:
            self._running = False

    def run_soon(self) -> None:
        """Something became due now (a step failed, a call went unanswered)."""
        if self._running:
            self._again = True  # the run in progress goes round once more
        else:
            self.wake()

    async def _run_due(self) -> int:
        ran = 0
        while True:
            self._again = False
            now = self.clock.now()
            submitted: list[int] = []
            async with self.db.begin() as conn:
                query = (
                    sa.select(escalations)
                    .where(escalations.c.state != DONE, escalations.c.next_at <= now)
                    .order_by(escalations.c.next_at)
                    .limit(CLAIM_BATCH)
                )
                if conn.dialect.name == "postgresql":
                    query = query.with_for_update(skip_locked=True)
                rows = (await conn.execute(query)).all()
                for row in rows:
                    alert = await get_alert(conn, row.alert_id)
                    if alert is None or alert.status is AlertStatus.RESOLVED:
                        await self.finished(conn, row.alert_id, now)
                        continue
                    household = await get_household(conn, alert.household_id)
                    progress = Progress(
                        Policy.from_json(row.policy),
                        row.state,
                        row.step,
                        row.rounds,
                        row.runs,
                    )
                    submitted += await self._run(conn, progress, alert, household, now)
            self.submit(submitted)
            ran += len(rows)
            if len(rows) < CLAIM_BATCH and not self._again:
                return ran

    # Providers' reports.

    async def failed(self, notification_ids: Iterable[int], why: str) -> None:
        """These messages did not reach their people (the dispatcher gave up, or a provider
        reported it): act on each in its own transaction, then send what that queued."""
        for nid in notification_ids:
            try:
                async with self.db.begin() as conn:
                    queued = await self.delivery_failed(conn, nid, why)
            except _Conflict:
                continue  # the escalation moved meanwhile: nothing left to decide
            self.submit(queued)
            self.run_soon()  # committed: a step made due now is seen

    async def delivery_failed(
        self, conn: AsyncConnection, notification_id: int, why: str
    ) -> list[int]:
        """A message did not reach its person: try them on another channel, or, when nobody of
        the step was reached, move on at once. Returns notifications to submit."""
        n = (
            await conn.execute(
                sa.select(notifications).where(notifications.c.id == notification_id)
            )
        ).first()
        if n is None or n.step is None:
            return []
        row = await self._lock(conn, n.alert_id)
        if row is None or row.state != RUNNING or row.runs != n.run:
            return []  # acknowledged, finished, or a later step has already run
        now = self.clock.now()
        policy = Policy.from_json(row.policy)
        if n.purpose == Purpose.CHECKIN.value:
            await add_event(conn, n.alert_id, now, "checkin_unanswered", SYSTEM_ACTOR, why)
            await self._due_now(conn, n.alert_id, now)
            return []
        step_rows = (
            await conn.execute(
                sa.select(notifications).where(
                    notifications.c.alert_id == n.alert_id,
                    notifications.c.run == n.run,
                )
            )
        ).all()
        mine = [r for r in step_rows if r.recipient_phone == n.recipient_phone]
        fallback = _FALLBACK.get(Channel(n.channel))
        if (
            fallback is not None
            and all(_failed(r) for r in mine)
            and not any(r.channel == fallback.value for r in mine)
        ):
            nid = await self._insert(
                conn,
                n.alert_id,
                n.step,
                n.run,
                fallback,
                Recipient(n.recipient_role, n.recipient_name, n.recipient_phone, n.language),
                f"{n.reason}; {n.channel} failed, {fallback} instead",
                Purpose(n.purpose),
                n.body,
                n.fields,
                now,
            )
            await add_event(
                conn, n.alert_id, now, "fallback", SYSTEM_ACTOR, f"{n.channel} failed: {why}"
            )
            return [nid]
        if not all(_failed(r) for r in step_rows):
            return []
        if row.step < len(policy.steps):
            await add_event(
                conn, n.alert_id, now, "step_failed", SYSTEM_ACTOR, "nobody reached; next step"
            )
            await self._due_now(conn, n.alert_id, now)
        else:
            await self._flag(conn, n.alert_id, "undeliverable", now)
        return []

    # Internals.

    async def _run(
        self,
        conn: AsyncConnection,
        progress: Progress,
        alert: AlertRecord,
        household: Household | None,
        now: datetime,
    ) -> list[int]:
        """Run what is due for one escalation and set its next time (conditionally: a row
        changed by someone else since it was read is left alone)."""
        run = self.steps.plan(progress, alert, household, now)
        ids = await self._queue(conn, run.messages, now)
        await add_events(conn, [(alert.id, now, e, SYSTEM_ACTOR, d) for e, d in run.events])
        await self._mark(conn, run, now)
        changed = await conn.execute(
            sa.update(escalations)
            .where(
                escalations.c.alert_id == alert.id,
                escalations.c.state == progress.state,
                escalations.c.step == progress.step,
                escalations.c.rounds == progress.rounds,
                escalations.c.runs == progress.runs,
            )
            .values(
                state=RUNNING,
                step=run.step,
                rounds=run.rounds,
                runs=run.runs,
                next_at=run.next_at,
                updated_at=now,
            )
        )
        if changed.rowcount != 1:
            raise _Conflict(alert.id)
        return ids

    async def _queue(
        self, conn: AsyncConnection, messages: Sequence[Message], now: datetime
    ) -> list[int]:
        """Queue these notifications (one statement); their ids, in the same order."""
        if not messages:
            return []
        result = await conn.execute(
            sa.insert(notifications).returning(notifications.c.id, sort_by_parameter_order=True),
            [m.row(now) for m in messages],
        )
        return [int(nid) for nid in result.scalars()]

    async def _mark(self, conn: AsyncConnection, run: StepRun, now: datetime) -> None:
        """What a step run changes on the alert itself: its status, its flag; and the
        metrics."""
        for event in run.counted:
            self.metrics.escalation_steps.labels(event).inc()
        if run.reescalated:
            await conn.execute(
                sa.update(alerts)
                .where(alerts.c.id == run.alert_id)
                .values(status=AlertStatus.ESCALATED.value, updated_at=now)
            )
        if run.escalated:
            await conn.execute(
                sa.update(alerts)
                .where(
                    alerts.c.id == run.alert_id,
                    alerts.c.status.in_([AlertStatus.OPEN.value, AlertStatus.NOTIFIED.value]),
                )
                .values(status=AlertStatus.ESCALATED.value, updated_at=now)
            )
        if run.flag is not None:
            await self._flag(conn, run.alert_id, run.flag, now)

    async def _insert(
        self,
        conn: AsyncConnection,
        alert_id: int,
        step: int,
        run: int,
        channel: Channel,
        recipient: Recipient,
        reason: str,
        purpose: Purpose,
        body: str,
        fields: Mapping[str, str] | None,
        now: datetime,
    ) -> int:
        result = await conn.execute(
            sa.insert(notifications)
            .values(
                alert_id=alert_id,
                channel=channel.value,
                recipient_role=recipient.role,
                recipient_name=recipient.name,
                recipient_phone=recipient.address,
                reason=reason[:200],
                body=body[:1000],
                status="pending",
                attempts=0,
                created_at=now,
                step=step,
                run=run,
                purpose=purpose.value,
                language=recipient.language,
                fields=dict(fields) if fields else None,
            )
            .returning(notifications.c.id)
        )
        return int(result.scalar_one())

    async def _lock(self, conn: AsyncConnection, alert_id: int) -> Any:
        query = sa.select(escalations).where(escalations.c.alert_id == alert_id)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        return (await conn.execute(query)).first()

    async def _set(self, conn: AsyncConnection, alert_id: int, **values: Any) -> None:
        await conn.execute(
            sa.update(escalations).where(escalations.c.alert_id == alert_id).values(**values)
        )

    async def _due_now(self, conn: AsyncConnection, alert_id: int, now: datetime) -> None:
        await self._set(conn, alert_id, next_at=now, updated_at=now)

    async def _flag(self, conn: AsyncConnection, alert_id: int, reason: str, now: datetime) -> None:
        """Mark the alert for the control room's attention (once; the first reason stays)."""
        flagged = await conn.execute(
            sa.update(alerts)
            .where(alerts.c.id == alert_id, alerts.c.flagged_at.is_(None))
            .values(flagged_at=now, flag_reason=reason)
        )
        if flagged.rowcount:
            await add_event(conn, alert_id, now, "flagged", SYSTEM_ACTOR, reason)
            self.metrics.alerts_flagged_total.labels(reason).inc()
            log.warning("alert %s flagged: %s", alert_id, reason)


class _Conflict(Exception):
    """An escalation row changed between being read and being written (rolled back)."""

    def __init__(self, alert_id: int) -> None:
        super().__init__(f"escalation of alert {alert_id} changed meanwhile")


def _failed(row: Any) -> bool:
    return bool(row.status == "failed" or row.delivery_status in FAILED_DELIVERY)


def household_policies(data: Mapping[str, Any] | None) -> dict[Severity, list[Step]]:
    """A household's own steps per severity, from their JSON form; what cannot be read is
    ignored (the API validates what it stores)."""
    out: dict[Severity, list[Step]] = {}
    for severity, steps in (data or {}).items():
        try:
            out[Severity(severity)] = [Step.model_validate(s) for s in steps]
        except (ValueError, ValidationError, TypeError):
            log.warning("ignoring a household's unreadable %s escalation steps", severity)
    return out
