"""Sends pending notifications: sort into lanes -> claim -> send (retry with backoff) -> record.

Submitted ids are sorted into lanes by their alert's severity (one query per batch): critical
ones have workers of their own, so no backlog of lower ones can delay them (see `lanes`).
A notification row is claimed before it is sent (so two workers or two gateways never send
the same one), and its outcome is written only after the provider has answered.

Batching: a message to a person about a household they were sent a message about within
`batch_window_s` waits until that window ends, and then goes out with every other message
waiting for them about that household, as one (a digest). The first message is never held, nor
one about a critical alert, which takes the waiting ones along.

A message that fails for good is reported to the escalation (`on_failed`), which tries the
person on another channel or moves on to the next step. A row whose
`not_before` is still to come (quiet hours) is neither claimed nor swept: it stays pending, and
the first sweep after that time sends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.alerts.lanes import Lane, Lanes, severity_rank
from gateway.alerts.messages import Texts
from gateway.alerts.notifiers.base import (
    Channel,
    Delivery,
    Notifier,
    OutboundMessage,
    Purpose,
    SendError,
)
from gateway.clock import Clock
from gateway.models import AlertStatus, Severity
from gateway.observability import GatewayMetrics
from gateway.privacy import mask_phone
from gateway.store.alerts import add_event
from gateway.store.tables import alerts, notifications

log = logging.getLogger(__name__)

# A claim older than this belongs to a process that died mid-send; the message is sent again,
# because a duplicate SMS is better than a lost one.
STALE_CLAIM = timedelta(minutes=5)
# Submitted ids looked up in one query, at most this many at a time.
SORT_BATCH = 500

Sleep = Callable[[float], Awaitable[None]]
FailureHook = Callable[[list[int], str], Awaitable[None]]
"""Told which notifications failed for good, and why (the escalation moves on)."""


class NotificationDispatcher:
    def __init__(
        self,
        engine: AsyncEngine,
        notifiers: Mapping[Channel, Notifier],
        clock: Clock,
        metrics: GatewayMetrics,
        *,
        attempts: int = 3,
        backoff_s: float = 2.0,
        workers: int = 4,
        urgent_workers: int = 2,
        sweep_interval_s: float = 15.0,
        queue_size: int = 10_000,
        sleep: Sleep = asyncio.sleep,
        batch_window_s: float = 0.0,
        texts: Texts | None = None,
        gather: bool = False,
        on_failed: FailureHook | None = None,
    ) -> None:
        self.engine = engine
        self.notifiers = notifiers
        self.clock = clock
        self.metrics = metrics
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.workers = workers
        self.urgent_workers = urgent_workers
        self.sweep_interval_s = sweep_interval_s
        self.sleep = sleep
        self.batch_window = timedelta(seconds=batch_window_s)
        self.texts = texts or Texts()
        self.gather = gather
        """Calls ask for a key (press 1): only when providers can call back with it."""
        self.on_failed = on_failed
        # Submitted ids, until their lane is known. When this queue or a lane is full the rows
        # stay pending and the next sweep picks them up.
        self.queue: asyncio.Queue[int] = asyncio.Queue(maxsize=queue_size)
        self.lanes = Lanes(queue_size)
        self._closing = False
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def submit(self, notification_ids: Iterable[int]) -> None:
        for nid in notification_ids:
            try:
                self.queue.put_nowait(nid)
            except asyncio.QueueFull:
                log.warning("notification queue full; %s waits for the next sweep", nid)
                return

    async def stop(self, grace_s: float = 10.0) -> None:
        """Take no new work and wait (up to `grace_s`) for sends and sweeps in progress.

        Cancelling a task in the middle of a database call can leave its connection hanging, so
        `run()` should be cancelled only after this has returned: then every worker is idle.
        """
        self._closing = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), grace_s)

    async def run(self) -> None:
        """Deliver until cancelled: sorting into lanes, workers per lane and a periodic sweep."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._sorter(), name="notify-sorter")
            for n in range(self.urgent_workers):
                group.create_task(self._worker(Lane.URGENT), name=f"notify-urgent-{n}")
            for n in range(self.workers):
                group.create_task(self._worker(Lane.NORMAL), name=f"notify-worker-{n}")
            group.create_task(self._sweeper(), name="notify-sweeper")

    async def sweep(self) -> None:
        """Submit every notification that is due: pending, or claimed by a process that died."""
        # The most severe first: when the backlog is larger than the queue, critical ones get in.
        async with self.engine.connect() as conn:
            ids = await conn.scalars(
                sa.select(notifications.c.id)
                .outerjoin(alerts, alerts.c.id == notifications.c.alert_id)
                .where(_due(self.clock.now()))
                .order_by(severity_rank(_SEVERITY), notifications.c.id)
                .limit(self.queue.maxsize)
            )
            # Those already waiting in a lane would only fill the queue new submissions use.
            self.submit(nid for nid in ids if not self.lanes.holds(nid))

    async def _sort(self, notification_ids: list[int]) -> None:
        """Put each of these notifications that is due in its lane, by its alert's severity."""
        async with self.engine.connect() as conn:
            result = await conn.execute(
                sa.select(notifications.c.id, _SEVERITY.label("severity"))
                .outerjoin(alerts, alerts.c.id == notifications.c.alert_id)
                .where(notifications.c.id.in_(notification_ids), _due(self.clock.now()))
                .order_by(severity_rank(_SEVERITY), notifications.c.id)
            )
            due = result.all()
        left = [row.id for row in due if not self.lanes.put(row.id, Severity(row.severity))]
        if left:
            log.warning("notification lane full; %s of them wait for the next sweep", len(left))

    async def deliver(self, notification_id: int) -> None:
        """Claim, send with retries, and record one notification."""
        message = await self._claim(notification_id)
        if message is None:
            return
        notifier = self.notifiers.get(message.channel)
        if notifier is None:
            await self._record_failure(notification_id, f"no notifier for {message.channel}", 0)
            return
        for attempt in range(1, self.attempts + 1):
            try:
                delivery = await notifier.send(message)
            except SendError as exc:
                retry = exc.retryable and attempt < self.attempts
                log.warning(
                    "notification %s to %s failed (attempt %s/%s): %s",
                    notification_id,
                    mask_phone(message.to_phone),
                    attempt,
                    self.attempts,
                    exc,
                )
                if not retry:
                    await self._record_failure(notification_id, str(exc), attempt)
                    return
                await self.sleep(self.backoff_s * 2 ** (attempt - 1))
            except Exception as exc:  # a notifier bug must not kill the worker
                log.exception(
                    "notifier %s crashed on notification %s", notifier.name, notification_id
                )
                await self._record_failure(notification_id, f"notifier error: {exc}", attempt)
                return
            else:
                await self._record_success(notification_id, delivery, attempt, message)
                return

    async def _sorter(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while len(batch) < SORT_BATCH and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            try:
                if not self._closing:  # else still pending in the database: the next start
                    with self._working():
                        await self._sort(batch)
            except Exception:
                # The database may be down; the rows stay pending and are swept later.
                log.exception("could not sort notifications %s...; will retry", batch[0])
            finally:
                for _ in batch:
                    self.queue.task_done()

    async def _worker(self, lane: Lane) -> None:
        # One lane only: an urgent worker is never busy with, or waiting behind, lower work.
        while True:
            nid = await self.lanes.take(lane)
            if self._closing:
                continue  # still pending in the database: the next start sends it
            try:
                with self._working():
                    await self.deliver(nid)
            except Exception:
                # The database may be down; the row stays pending/claimed and is swept later.
                log.exception("could not deliver notification %s; will retry", nid)

    async def _sweeper(self) -> None:
        while True:
            if not self._closing:
                try:
                    with self._working():
                        await self.sweep()
                except Exception:
                    log.exception("notification sweep failed; will retry")
            await self.sleep(self.sweep_interval_s)

    @contextlib.contextmanager
    def _working(self) -> Iterator[None]:
        self._busy += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._busy -= 1
            if not self._busy:
                self._idle.set()

    async def _claim(self, notification_id: int) -> OutboundMessage | None:
        now = self.clock.now()
        async with self.engine.begin() as conn:
            claimed = await conn.execute(
                sa.update(notifications)
                .where(notifications.c.id == notification_id, _due(now))
                .values(status="sending", claimed_at=now)
                .returning(*_CLAIMED)
            )
            row = claimed.first()
            if row is None:
                return None  # already sent, cancelled, claimed by another worker, or held
            rows = [row]
            if self.batch_window and row.purpose == Purpose.ALERT.value:
                batch = await self._batch(conn, row, now)
                if batch is None:
                    return None  # held: goes with the others when the window ends
                rows += batch
        body = row.body if len(rows) == 1 else self._digest(rows)
        prompt = None
        if self.gather and row.channel == Channel.VOICE.value:
            name = "checkin_prompt" if row.purpose == Purpose.CHECKIN.value else "ack_voice"
            prompt = self.texts.render(name, row.language)
        return OutboundMessage(
            Channel(row.channel),
            row.recipient_phone,
            row.recipient_name,
            body,
            notification_id=row.id,
            purpose=Purpose(row.purpose),
            prompt=prompt,
            title=self._title(row) if row.channel == Channel.ROBOT.value else None,
            link=(row.fields or {}).get("link") if row.channel == Channel.ROBOT.value else None,
            language=row.language,
            fields=dict(row.fields or {}),
        )

    async def _batch(self, conn: AsyncConnection, row: Any, now: datetime) -> list[Any] | None:
        """The other messages that go out with this one; None if this one must wait."""
        about = (
            await conn.execute(
                sa.select(alerts.c.household_id, alerts.c.severity).where(
                    alerts.c.id == row.alert_id
                )
            )
        ).one()
        same = (
            (notifications.c.recipient_phone == row.recipient_phone)
            & (notifications.c.channel == row.channel)
            & (notifications.c.purpose == Purpose.ALERT.value)
            & (alerts.c.household_id == about.household_id)
        )
        last: datetime | None = await conn.scalar(
            sa.select(notifications.c.sent_at)
            .join(alerts, alerts.c.id == notifications.c.alert_id)
            .where(same, notifications.c.status == "sent", notifications.c.id != row.id)
            .order_by(notifications.c.sent_at.desc())
            .limit(1)
        )
        if (
            last is not None
            and about.severity != Severity.CRITICAL.value
            and now - last < self.batch_window
        ):
            await conn.execute(
                sa.update(notifications)
                .where(notifications.c.id == row.id)
                .values(status="pending", claimed_at=None, not_before=last + self.batch_window)
            )
            return None
        waiting = (
            (
                await conn.execute(
                    sa.select(notifications.c.id)
                    .join(alerts, alerts.c.id == notifications.c.alert_id)
                    .where(same, notifications.c.status == "pending", notifications.c.id != row.id)
                    .order_by(notifications.c.id)
                    .limit(20)
                )
            )
            .scalars()
            .all()
        )
        if not waiting:
            return []
        taken = await conn.execute(
            sa.update(notifications)
            .where(notifications.c.id.in_(waiting), notifications.c.status == "pending")
            .values(status="sending", claimed_at=now, batched_into=row.id)
            .returning(*_CLAIMED)
        )
        return sorted(taken.all(), key=lambda r: r.id)

    def _digest(self, rows: list[Any]) -> str:
        """One message for several alerts of a household."""
        first = rows[0]
        fields = [r.fields or {} for r in rows]
        if not all(fields):
            return "\n".join(r.body for r in rows)[:1000]
        sep = "；" if first.language != "en" else "; "
        events = sep.join(f"{f.get('event', '')} {f.get('time', '')}".strip() for f in fields)
        ack = ""
        if self.gather and first.channel == Channel.SMS.value:
            ack = self.texts.render("ack_sms", first.language)
        return self.texts.render(
            "digest",
            first.language,
            elder=fields[0].get("elder", ""),
            address=fields[0].get("address", ""),
            count=len(rows),
            events=events,
            ack=ack,
        )[:1000]

    def _title(self, row: Any) -> str | None:
        fields = row.fields or {}
        if not fields:
            return None
        return self.texts.render(
            "robot_title",
            row.language,
            urgent=fields.get("urgent", ""),
            event=fields.get("event", ""),
            elder=fields.get("elder", ""),
        )

    async def _record_success(
        self, notification_id: int, delivery: Delivery, attempts: int, message: OutboundMessage
    ) -> None:
        now = self.clock.now()
        async with self.engine.begin() as conn:
            result = await conn.execute(
                sa.update(notifications)
                .where(
                    (notifications.c.id == notification_id)
                    | (notifications.c.batched_into == notification_id),
                    notifications.c.status == "sending",
                )
                .values(
                    status="sent",
                    attempts=attempts,
                    provider=delivery.provider,
                    provider_id=delivery.provider_id,
                    sent_at=now,
                )
                .returning(notifications.c.alert_id)
            )
            alert_ids = sorted({int(a) for a in result.scalars() if a is not None})
            await conn.execute(
                sa.update(alerts)
                .where(alerts.c.id.in_(alert_ids), alerts.c.status == AlertStatus.OPEN.value)
                .values(status=AlertStatus.NOTIFIED.value, updated_at=now)
            )
            together = f" (one message for {len(alert_ids)} alerts)" if len(alert_ids) > 1 else ""
            for alert_id in alert_ids:
                await add_event(
                    conn,
                    alert_id,
                    now,
                    "notified",
                    delivery.provider,
                    f"{message.channel.value} to {message.to_name} "
                    f"{mask_phone(message.to_phone)}{together}",
                )
        self.metrics.notifications.labels(message.channel.value, "sent").inc()

    async def _record_failure(self, notification_id: int, error: str, attempts: int) -> None:
        now = self.clock.now()
        async with self.engine.begin() as conn:
            result = await conn.execute(
                sa.update(notifications)
                .where(
                    (notifications.c.id == notification_id)
                    | (notifications.c.batched_into == notification_id),
                    notifications.c.status == "sending",
                )
                .values(status="failed", attempts=attempts, error=error[:500])
                .returning(notifications.c.id, notifications.c.alert_id, notifications.c.channel)
            )
            failed = result.all()
            for row in failed:
                if row.alert_id is not None:
                    await add_event(conn, row.alert_id, now, "notification_failed", None, error)
        for row in failed:
            self.metrics.notifications.labels(row.channel, "failed").inc()
        if self.on_failed is not None and failed:
            await self.on_failed(sorted(int(row.id) for row in failed), error)


_CLAIMED = (
    notifications.c.id,
    notifications.c.alert_id,
    notifications.c.channel,
    notifications.c.recipient_phone,
    notifications.c.recipient_name,
    notifications.c.body,
    notifications.c.purpose,
    notifications.c.language,
    notifications.c.fields,
)


# The lane of a message: its alert's severity; a message about no alert goes by its purpose
# (an emergency warning to visitors before anything but critical alerts, a reminder last).
_SEVERITY = sa.func.coalesce(
    alerts.c.severity,
    sa.case(
        (notifications.c.purpose == Purpose.WARNING.value, Severity.HIGH.value),
        else_=Severity.LOW.value,
    ),
)


def _due(now: datetime) -> sa.ColumnElement[bool]:
    """Rows to send at `now`: pending and not held, or claimed by a process that died."""
    pending = (notifications.c.status == "pending") & (
        notifications.c.not_before.is_(None) | (notifications.c.not_before <= now)
    )
    stale = (notifications.c.status == "sending") & (notifications.c.claimed_at < now - STALE_CLAIM)
    return pending | stale
