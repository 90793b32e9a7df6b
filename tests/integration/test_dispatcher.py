"""The notification dispatcher: critical alerts first, retries, permanent failures, crashes.

A real database, alerts opened by the real alert book, and the real TwilioNotifier talking to
the fake Twilio API over loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.alerts.book import AlertBook
from gateway.alerts.dispatcher import NotificationDispatcher
from gateway.alerts.escalation import Escalator
from gateway.alerts.notifiers.base import Channel, Delivery, Notifier, OutboundMessage, Purpose
from gateway.alerts.notifiers.twilio import TwilioNotifier
from gateway.alerts.outbox import queue_message
from gateway.alerts.policy import Audience, Step
from gateway.care.households import HouseholdIn, create_household
from gateway.clock import ManualClock
from gateway.config import EscalationSettings, TwilioSettings
from gateway.models import Finding, FindingAction, Severity
from gateway.observability import GatewayMetrics
from gateway.store.database import create_engine
from gateway.store.tables import alert_events, alerts, notifications
from tests.fakes.twilio import FakeTwilio, RecordedRequest
from tests.integration.harness import eventually

NOW = datetime(2026, 11, 29, 4, 0, tzinfo=UTC)  # noon in Shanghai
HUB_VISITOR = "+8613900000001"
"""Visits the home whose hub invents devices."""
KITCHEN_VISITOR = "+8613900000002"
"""Visits the home whose smoke alarm goes off."""
HOMES = [
    {
        "id": "H001",
        "elder": {"name": "张桂兰"},
        "visitors": [{"name": "李敏", "phone": HUB_VISITOR}],
    },
    {
        "id": "H002",
        "elder": {"name": "王秀英"},
        "visitors": [{"name": "赵磊", "phone": KITCHEN_VISITOR}],
    },
]


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    async with engine.begin() as conn:
        for body in HOMES:
            await create_household(conn, HouseholdIn.model_validate(body), NOW)
    yield engine
    await engine.dispose()


def dispatcher_for(
    engine: AsyncEngine, notifier: Notifier, **options: Any
) -> NotificationDispatcher:
    channels = {Channel.SMS: notifier, Channel.VOICE: notifier}
    return NotificationDispatcher(engine, channels, ManualClock(NOW), GatewayMetrics(), **options)


def twilio(fake: FakeTwilio) -> TwilioNotifier:
    settings = {
        "account_sid": fake.account_sid,
        "auth_token": fake.auth_token,
        "from": "+8675500000000",
        "api_base_url": fake.base_url,
        "timeout_s": 2.0,
    }
    return TwilioNotifier(TwilioSettings.model_validate(settings))


@contextlib.asynccontextmanager
async def running(dispatcher: NotificationDispatcher, grace_s: float = 10.0) -> AsyncIterator[None]:
    """The dispatcher's workers, sorter and sweeper, stopped the way the gateway stops them."""
    task = asyncio.create_task(dispatcher.run())
    try:
        yield
    finally:
        await dispatcher.stop(grace_s)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def offline(device_id: str, severity: Severity = Severity.MEDIUM) -> Finding:
    return Finding(
        rule_id="device_offline",
        household_id="H001",
        device_id=device_id,
        severity=severity,
        action=FindingAction.OPEN,
        ts=NOW,
        summary="device went offline",
    )


def smoke() -> Finding:
    return Finding(
        rule_id="smoke_alarm",
        household_id="H002",
        device_id="smoke-1",
        severity=Severity.CRITICAL,
        action=FindingAction.OPEN,
        ts=NOW,
        summary="smoke detected",
    )


# One SMS to the visitor per alert, whatever its severity: these tests are about sending.
SMS_ONLY = EscalationSettings(
    policies={
        severity: [Step(to=[Audience.VISITORS], channels=[Channel.SMS], wait_min=5)]
        for severity in Severity
    }
)


async def open_alerts(engine: AsyncEngine, findings: list[Finding]) -> list[int]:
    """Open an alert per finding, as the pipeline does; the ids of the notifications queued."""
    clock, zone = ManualClock(NOW), ZoneInfo("Asia/Shanghai")
    escalator = Escalator(
        engine,
        clock,
        SMS_ONLY,
        GatewayMetrics(),
        language="zh",
        default_zone=zone,
        public_url=None,
        submit=lambda ids: None,
    )
    book = AlertBook(engine, clock, "zh", zone, escalator=escalator)
    async with engine.begin() as conn:
        applied = await book.apply(conn, findings)
    return applied.notification_ids


async def notification(engine: AsyncEngine, notification_id: int) -> dict[str, Any]:
    async with engine.connect() as conn:
        row = await conn.execute(
            sa.select(notifications).where(notifications.c.id == notification_id)
        )
        return dict(row.one()._mapping)


async def events_of(engine: AsyncEngine, notification_id: int) -> list[tuple[str, str | None]]:
    """(event, detail) of the alert the notification belongs to, oldest first."""
    async with engine.connect() as conn:
        result = await conn.execute(
            sa.select(alert_events.c.event, alert_events.c.detail)
            .join(notifications, notifications.c.alert_id == alert_events.c.alert_id)
            .where(notifications.c.id == notification_id)
            .order_by(alert_events.c.id)
        )
        return [(row.event, row.detail) for row in result]


async def alert_status(engine: AsyncEngine, notification_id: int) -> str:
    async with engine.connect() as conn:
        status: str = await conn.scalar(
            sa.select(alerts.c.status)
            .join(notifications, notifications.c.alert_id == alerts.c.id)
            .where(notifications.c.id == notification_id)
        )
        return status


def counted(dispatcher: NotificationDispatcher, status: str) -> float:
    value = dispatcher.metrics.registry.get_sample_value(
        "iot_gateway_notifications_total", {"channel": "sms", "status": status}
    )
    return value or 0.0


class RecordingSleep:
    """Stands in for asyncio.sleep in the backoff: remembers the delays, waits for nothing."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


# --- priority -----------------------------------------------------------------------------------


def sms_to(fake: FakeTwilio, phone: str) -> list[RecordedRequest]:
    return [r for r in fake.requests if r.form.get("To") == phone]


async def first_sms_to(fake: FakeTwilio, phone: str) -> RecordedRequest:
    async def arrived() -> list[RecordedRequest]:
        return sms_to(fake, phone)

    (request, *_) = await eventually(arrived, within=5.0, interval=0.01)
    return request


async def test_a_smoke_alarm_is_texted_within_a_second_while_2000_lower_messages_drain(
    engine: AsyncEngine, fake_twilio: FakeTwilio
):
    # A hub inventing 2,000 devices that all go "offline", as in issue 9.
    storm = await open_alerts(
        engine,
        [offline(f"made-up-{n}", Severity.HIGH if n % 2 else Severity.MEDIUM) for n in range(2000)],
    )
    fake_twilio.delay_s = 0.03  # a provider answering in 30 ms: the storm takes seconds to drain
    dispatcher = dispatcher_for(engine, twilio(fake_twilio))
    async with running(dispatcher):
        dispatcher.submit(storm)
        await asyncio.to_thread(fake_twilio.wait_for_requests, 100, 20.0)  # workers are busy
        (alarm,) = await open_alerts(engine, [smoke()])
        submitted = time.monotonic()
        dispatcher.submit([alarm])

        request = await first_sms_to(fake_twilio, KITCHEN_VISITOR)

    assert request.received_at - submitted < 1.0
    arrived_before = [
        r for r in sms_to(fake_twilio, HUB_VISITOR) if r.received_at < request.received_at
    ]
    assert len(arrived_before) < 1000, "the storm was still draining"
    assert (await notification(engine, alarm))["status"] == "sent"


async def test_retries_waiting_in_backoff_do_not_hold_up_a_smoke_alarm(
    engine: AsyncEngine, fake_twilio: FakeTwilio
):
    lower = await open_alerts(engine, [offline(f"door-{n}") for n in range(4)])
    fake_twilio.fail_next(4, status=503)
    dispatcher = dispatcher_for(engine, twilio(fake_twilio), workers=4, backoff_s=30.0)
    # A short grace: the workers are still waiting to retry when the test ends.
    async with running(dispatcher, grace_s=0.2):
        dispatcher.submit(lower)
        await asyncio.to_thread(fake_twilio.wait_for_requests, 4, 5.0)
        (alarm,) = await open_alerts(engine, [smoke()])
        submitted = time.monotonic()
        dispatcher.submit([alarm])

        request = await first_sms_to(fake_twilio, KITCHEN_VISITOR)

    assert request.received_at - submitted < 1.0
    assert sms_to(fake_twilio, HUB_VISITOR) == fake_twilio.requests[:4]  # never retried yet
    assert {(await notification(engine, nid))["status"] for nid in lower} == {"sending"}


async def test_after_a_restart_critical_rows_go_first_even_past_a_full_queue(
    engine: AsyncEngine, fake_twilio: FakeTwilio
):
    backlog = await open_alerts(engine, [offline(f"made-up-{n}") for n in range(30)])
    (alarm,) = await open_alerts(engine, [smoke()])  # the newest row: last by id
    fake_twilio.delay_s = 0.02
    # Nothing submitted: the gateway restarted, and its first sweep finds 31 rows for 10 places.
    dispatcher = dispatcher_for(engine, twilio(fake_twilio), queue_size=10, workers=1)
    async with running(dispatcher):
        await asyncio.to_thread(fake_twilio.wait_for_requests, 3, 5.0)

    first = [r.form["To"] for r in fake_twilio.requests[:2]]
    assert KITCHEN_VISITOR in first
    assert (await notification(engine, alarm))["status"] == "sent"
    assert (await notification(engine, backlog[-1]))["status"] == "pending"


async def test_lower_messages_go_high_then_medium_then_low(
    engine: AsyncEngine, fake_twilio: FakeTwilio
):
    severities = [Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.MEDIUM]
    ids = await open_alerts(engine, [offline(f"d{n}", s) for n, s in enumerate(severities)])
    bodies = {
        (await notification(engine, nid))["body"]: s for nid, s in zip(ids, severities, strict=True)
    }
    dispatcher = dispatcher_for(engine, twilio(fake_twilio), workers=1)
    async with running(dispatcher):
        dispatcher.submit(ids)
        await asyncio.to_thread(fake_twilio.wait_for_requests, 4, 5.0)

    sent = [bodies[r.form["Body"]] for r in fake_twilio.requests]
    assert sent == [Severity.HIGH, Severity.MEDIUM, Severity.MEDIUM, Severity.LOW]


# --- retry, permanent failure, crash --------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 429])
async def test_a_retryable_failure_is_sent_on_the_next_attempt_after_a_backoff(
    engine: AsyncEngine, fake_twilio: FakeTwilio, status: int
):
    (nid,) = await open_alerts(engine, [offline("door-1")])
    fake_twilio.fail_next(1, status=status)
    sleep = RecordingSleep()
    dispatcher = dispatcher_for(engine, twilio(fake_twilio), backoff_s=2.0, sleep=sleep)

    await dispatcher.deliver(nid)

    note = await notification(engine, nid)
    assert (note["status"], note["attempts"], note["provider"]) == ("sent", 2, "twilio")
    assert note["provider_id"].startswith("SM")
    assert sleep.delays == [2.0]
    assert [r.status for r in fake_twilio.requests] == [status, 201]
    assert [event for event, _ in await events_of(engine, nid)] == [
        "opened",
        "notifying",
        "notified",
    ]
    assert await alert_status(engine, nid) == "notified"
    assert (counted(dispatcher, "sent"), counted(dispatcher, "failed")) == (1, 0)


async def test_retryable_failures_on_every_attempt_fail_after_doubling_backoffs(
    engine: AsyncEngine, fake_twilio: FakeTwilio
):
    (nid,) = await open_alerts(engine, [offline("door-1")])
    fake_twilio.fail_next(3, status=503)
    sleep = RecordingSleep()
    dispatcher = dispatcher_for(engine, twilio(fake_twilio), attempts=3, backoff_s=2.0, sleep=sleep)

    await dispatcher.deliver(nid)

    note = await notification(engine, nid)
    assert (note["status"], note["attempts"]) == ("failed", 3)
    assert "HTTP 503" in note["error"]
    assert sleep.delays == [2.0, 4.0]
    assert len(fake_twilio.requests) == 3
    assert counted(dispatcher, "failed") == 1


async def test_a_permanent_failure_is_recorded_at_once_and_not_retried(
    engine: AsyncEngine, fake_twilio: FakeTwilio
):
    (nid,) = await open_alerts(engine, [offline("door-1")])
    fake_twilio.fail_next(1, status=400, code=21211)  # "not a valid phone number"
    sleep = RecordingSleep()
    dispatcher = dispatcher_for(engine, twilio(fake_twilio), sleep=sleep)

    await dispatcher.deliver(nid)

    note = await notification(engine, nid)
    assert (note["status"], note["attempts"], note["sent_at"]) == ("failed", 1, None)
    assert "21211" in note["error"]
    assert HUB_VISITOR not in note["error"]
    event, detail = (await events_of(engine, nid))[-1]
    assert event == "notification_failed"
    assert detail == note["error"]
    assert await alert_status(engine, nid) == "open"
    assert (counted(dispatcher, "failed"), counted(dispatcher, "sent")) == (1, 0)
    assert sleep.delays == []
    assert len(fake_twilio.requests) == 1


class CrashesOnce:
    """A notifier with a bug that shows on its first message only."""

    name = "crashes-once"

    def __init__(self, inner: Notifier) -> None:
        self.inner = inner
        self.crashed = False

    async def send(self, message: OutboundMessage) -> Delivery:
        if not self.crashed:
            self.crashed = True
            raise KeyError("template")
        return await self.inner.send(message)


async def test_a_notifier_crash_is_recorded_and_the_worker_delivers_the_next(
    engine: AsyncEngine, fake_twilio: FakeTwilio
):
    first, second = await open_alerts(engine, [offline("door-1"), offline("door-2")])
    dispatcher = dispatcher_for(engine, CrashesOnce(twilio(fake_twilio)), workers=1)

    async def settled() -> bool:
        statuses = [(await notification(engine, nid))["status"] for nid in (first, second)]
        return "pending" not in statuses and "sending" not in statuses

    async with running(dispatcher):
        dispatcher.submit([first, second])
        await eventually(settled, within=5.0)

    crashed = await notification(engine, first)
    assert (crashed["status"], crashed["attempts"]) == ("failed", 1)
    assert crashed["error"] == "notifier error: 'template'"
    assert [event for event, _ in await events_of(engine, first)] == [
        "opened",
        "notifying",
        "notification_failed",
    ]
    assert (await notification(engine, second))["status"] == "sent"
    assert [r.form["To"] for r in fake_twilio.messages] == [HUB_VISITOR]
    assert (counted(dispatcher, "failed"), counted(dispatcher, "sent")) == (1, 1)


# --- messages about no alert (reminders, warnings) -----------------------------------------------


async def queue_care_message(engine: AsyncEngine, purpose: Purpose, body: str) -> int:
    async with engine.begin() as conn:
        return await queue_message(
            conn,
            purpose=purpose,
            recipient_role="visitor",
            name="李敏",
            phone=HUB_VISITOR,
            body=body,
            language="zh",
            reason=f"{purpose.value} test",
            now=NOW,
        )


async def test_a_message_about_no_alert_is_sent_and_a_warning_goes_before_lower_alerts(
    engine: AsyncEngine, fake_twilio: FakeTwilio
):
    (low,) = await open_alerts(engine, [offline("door-1", Severity.LOW)])
    reminder = await queue_care_message(engine, Purpose.REMINDER, "本月尚未探访：张桂兰")
    warning = await queue_care_message(engine, Purpose.WARNING, "台风橙色预警")
    dispatcher = dispatcher_for(engine, twilio(fake_twilio), workers=1)
    async with running(dispatcher):
        dispatcher.submit([low, reminder, warning])
        await asyncio.to_thread(fake_twilio.wait_for_requests, 3, 5.0)

    bodies = [r.form["Body"] for r in fake_twilio.requests]
    assert bodies[0] == "台风橙色预警"  # a warning is served as a high-severity alert would be
    assert "本月尚未探访：张桂兰" in bodies
    for nid in (reminder, warning):
        note = await notification(engine, nid)
        assert (note["status"], note["alert_id"], note["provider"]) == ("sent", None, "twilio")
    assert counted(dispatcher, "sent") == 3


async def test_a_message_about_no_alert_that_fails_is_recorded_failed(
    engine: AsyncEngine, fake_twilio: FakeTwilio
):
    nid = await queue_care_message(engine, Purpose.REMINDER, "本月尚未探访：张桂兰")
    fake_twilio.fail_next(1, status=400, code=21211)
    dispatcher = dispatcher_for(engine, twilio(fake_twilio))

    await dispatcher.deliver(nid)

    note = await notification(engine, nid)
    assert (note["status"], note["attempts"]) == ("failed", 1)
    assert counted(dispatcher, "failed") == 1
