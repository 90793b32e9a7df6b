"""Escalation against a fake Twilio (issue 10): calls and SMS go to a real HTTP server on
loopback with Twilio's API, which calls the gateway's webhooks back, signed with Twilio's real
algorithm, over real HTTP: keys pressed, SMS replies, delivery reports, forgeries.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
import uvicorn

from gateway.api.app import create_api
from gateway.app import Gateway, listen
from gateway.clock import ManualClock
from gateway.models import Finding, FindingAction, Severity
from gateway.store.tables import alert_events, alerts, notifications, visits
from tests.fakes.twilio import FakeTwilio, message_texts
from tests.integration.harness import HOUSEHOLD, isolated_settings, register, rows

T0 = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)
TOKEN = "test-token-0123456789"
VISITOR, RELATIVE, ELDER = "+8613900000000", "+8613700000000", "+8613800000000"


class Served:
    """A gateway whose API listens on loopback, with Twilio pointed at the fake."""

    def __init__(self, gateway: Gateway, fake: FakeTwilio, base: str) -> None:
        self.gw = gateway
        self.fake = fake
        self.base = base

    @property
    def clock(self) -> ManualClock:
        assert isinstance(self.gw.clock, ManualClock)
        return self.gw.clock

    async def deliver(self) -> None:
        queue = self.gw.dispatcher.queue
        while not queue.empty():
            await self.gw.dispatcher.deliver(queue.get_nowait())
            queue.task_done()

    async def escalate(self, minutes: float | None = None) -> None:
        if minutes is not None:
            self.clock.set(T0 + timedelta(minutes=minutes))
        await self.gw.escalator.run_due()
        await self.deliver()

    async def open(self, rule: str, severity: Severity, device: str = "household") -> int:
        finding = Finding(
            rule_id=rule,
            household_id="H001",
            device_id=device,
            severity=severity,
            action=FindingAction.OPEN,
            ts=self.clock.now(),
            summary=rule,
        )
        async with self.gw.db.begin() as conn:
            applied = await self.gw.book.apply(conn, [finding])
        self.gw.dispatcher.submit(applied.notification_ids)
        await self.deliver()
        (alert_id,) = applied.opened
        return alert_id

    async def sid(self, channel: str, phone: str) -> str:
        """The provider id of the newest message or call to `phone`."""
        found = await rows(
            self.gw,
            sa.select(notifications)
            .where(notifications.c.channel == channel, notifications.c.recipient_phone == phone)
            .order_by(notifications.c.id.desc()),
        )
        sid = found[0]["provider_id"]
        assert isinstance(sid, str)
        return sid

    async def alert(self, alert_id: int) -> dict[str, Any]:
        (row,) = await rows(self.gw, sa.select(alerts).where(alerts.c.id == alert_id))
        return row

    async def events(self, alert_id: int) -> list[str]:
        found = await rows(
            self.gw,
            sa.select(alert_events.c.event)
            .where(alert_events.c.alert_id == alert_id)
            .order_by(alert_events.c.id),
        )
        return [e["event"] for e in found]

    def to(self, phone: str) -> list[dict[str, str]]:
        return [dict(r.form) for r in self.fake.requests if r.form.get("To") == phone]


@pytest.fixture
async def served(database_url: str, unique_id: str) -> AsyncIterator[Served]:
    sock = listen("127.0.0.1", 0)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with FakeTwilio() as fake:
        settings = isolated_settings(
            "mqtt://127.0.0.1:1",
            database_url,
            unique_id,
            public_url=base,
            twilio={
                "account_sid": fake.account_sid,
                "auth_token": fake.auth_token,
                "from": "+8675500000000",
                "api_base_url": fake.base_url,
                "timeout_s": 5.0,
            },
            alerts={"retry_backoff_s": 0.0},
            escalation={"batch_window_s": 0},
        )
        gw = Gateway(settings, clock=ManualClock(T0))
        await gw.prepare()
        await register(gw, HOUSEHOLD)
        server = uvicorn.Server(
            uvicorn.Config(create_api(gw.api_context(TOKEN)), log_level="warning", lifespan="off")
        )
        task = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            while not server.started:
                await asyncio.sleep(0.01)
            yield Served(gw, fake, base)
        finally:
            server.should_exit = True
            await task
            await gw.close()


async def test_a_check_in_call_speaks_mandarin_and_a_1_closes_the_alert_as_a_phone_visit(
    served: Served,
):
    alert_id = await served.open("no_water_use", Severity.HIGH)
    (call,) = served.fake.calls
    assert call.form["To"] == ELDER
    assert call.form["StatusCallback"] == served.base + "/api/webhooks/twilio/status"
    outcome = await served.fake.aanswer_call(await served.sid("voice", ELDER), "1")
    assert outcome.gather_status == 200
    assert outcome.gather_url is not None
    assert outcome.gather_url.startswith(served.base + "/api/webhooks/twilio/voice?n=")
    assert set(outcome.languages) == {"cmn-CN"}
    assert "如果您一切平安，请按1。" in outcome.texts
    assert outcome.texts[-1] == "谢谢您，祝您平安。我们已记录。"
    assert outcome.status_callback_status == 204
    closed = await served.alert(alert_id)
    assert (closed["status"], closed["acknowledged_by"]) == ("resolved", "张桂兰")
    (visit,) = await rows(served.gw, sa.select(visits))
    assert visit["method"] == "phone"
    await served.escalate(30)
    assert served.to(VISITOR) == [], "the visitor is never bothered"


@pytest.mark.parametrize("how", ["no-answer", "busy", "silence"])
async def test_a_check_in_call_nobody_answers_with_1_reaches_the_visitor_at_once(
    served: Served, how: str
):
    alert_id = await served.open("no_water_use", Severity.HIGH)
    sid = await served.sid("voice", ELDER)
    if how == "silence":
        outcome = await served.fake.aanswer_call(sid, None)  # picked up, no key: completed
        assert outcome.status_callback_status == 204
    else:
        assert await served.fake.aend_call(sid, how) == 204
    await served.escalate()
    sms, call = served.to(VISITOR)
    assert sms["Body"].startswith("【居家关爱】张桂兰家")
    assert "Twiml" in call
    assert "checkin_unanswered" in await served.events(alert_id)


async def test_an_sms_reply_acknowledges_and_a_2_confirms_arrival(served: Served):
    alert_id = await served.open("smoke_alarm", Severity.CRITICAL, "smoke-1")
    sms_url = served.base + "/api/webhooks/twilio/sms"
    status, answer = await served.fake.ainbound_sms(sms_url, VISITOR, "收到")
    assert status == 200
    (reply,) = message_texts(answer)
    assert reply.startswith("已确认：张桂兰家烟雾/燃气报警")
    acked = await served.alert(alert_id)
    assert (acked["status"], acked["acknowledged_by"]) == ("acknowledged", "李敏（短信）")

    status, answer = await served.fake.ainbound_sms(sms_url, VISITOR, " ２ ")
    assert message_texts(answer) == [
        "已记录您到达张桂兰家（烟雾/燃气报警）。处理完毕请在系统中填写结果。"
    ]
    arrived = await served.alert(alert_id)
    assert arrived["arrived_by"] == "李敏（短信）"
    # On site: the 30-minute closed loop does not fire.
    before = len(served.fake.requests)
    await served.escalate(45)
    assert len(served.fake.requests) == before


async def test_replies_from_strangers_get_silence_and_unclear_ones_get_help(served: Served):
    await served.open("smoke_alarm", Severity.CRITICAL, "smoke-1")
    sms_url = served.base + "/api/webhooks/twilio/sms"
    status, answer = await served.fake.ainbound_sms(sms_url, "+8613111111111", "1")
    assert (status, message_texts(answer)) == (200, [])
    status, answer = await served.fake.ainbound_sms(sms_url, RELATIVE, "什么事？")
    assert message_texts(answer) == ["回复1确认报警，到达现场后回复2。"]
    (alert,) = await rows(served.gw, sa.select(alerts))
    assert alert["acknowledged_at"] is None


async def test_pressing_1_on_an_alert_call_acknowledges_it(served: Served):
    alert_id = await served.open("smoke_alarm", Severity.CRITICAL, "smoke-1")
    outcome = await served.fake.aanswer_call(await served.sid("voice", RELATIVE), "1")
    assert "确认收到请按1。" in outcome.texts
    assert outcome.texts[-1] == "已确认，谢谢。请尽快联系老人或上门查看。"
    acked = await served.alert(alert_id)
    assert acked["acknowledged_by"] == "王强（电话按键）"


async def test_an_undelivered_sms_is_followed_by_a_call_and_then_the_next_step(served: Served):
    alert_id = await served.open("device_offline", Severity.MEDIUM, "door-1")
    sms_sid = await served.sid("sms", VISITOR)
    assert await served.fake.amessage_status(sms_sid, "undelivered", 30003) == 204
    await served.deliver()
    (fallback,) = [f for f in served.to(VISITOR) if "Twiml" in f]
    assert "设备离线" in fallback["Twiml"]
    assert await served.fake.aend_call(await served.sid("voice", VISITOR), "no-answer") == 204
    await served.escalate()
    (relative,) = served.to(RELATIVE)
    assert relative["Body"].startswith("【居家关爱】张桂兰家（某县某镇某村3组12号）设备离线")
    trail = await served.events(alert_id)
    assert trail.count("not_delivered") == 2
    assert "step_failed" in trail


async def test_provider_down_retries_then_tries_the_next_channel_then_the_next_step(
    served: Served,
):
    served.fake.fail_next(6, status=503)  # the SMS and the call, three attempts each
    alert_id = await served.open("device_offline", Severity.MEDIUM, "door-1")
    await served.deliver()
    await served.escalate()
    to_visitor = served.to(VISITOR)
    assert [("Body" in f) for f in to_visitor] == [True] * 3 + [False] * 3
    assert len(served.to(RELATIVE)) == 1
    assert [r.status for r in served.fake.requests if r.form.get("To") == RELATIVE] == [201]
    trail = await served.events(alert_id)
    assert trail.count("notification_failed") == 2
    assert ("fallback" in trail, "step_failed" in trail) == (True, True)


@pytest.mark.parametrize("path", ["sms", "voice?n=1", "status"])
@pytest.mark.parametrize("signature", ["bad", None])
async def test_a_forged_or_unsigned_webhook_gets_403_and_changes_nothing(
    served: Served, path: str, signature: str | None
):
    alert_id = await served.open("smoke_alarm", Severity.CRITICAL, "smoke-1")
    params = {
        "From": VISITOR,
        "Body": "1",
        "Digits": "1",
        "MessageSid": await served.sid("sms", VISITOR),
        "MessageStatus": "undelivered",
    }
    sent = await served.fake.apost_webhook(
        f"{served.base}/api/webhooks/twilio/{path}",
        params,
        signature=signature,
        signed=signature is not None,
    )
    assert sent.status == 403
    alert = await served.alert(alert_id)
    assert (alert["status"], alert["acknowledged_at"]) == ("notified", None)
    statuses = await rows(served.gw, sa.select(notifications.c.delivery_status))
    assert {s["delivery_status"] for s in statuses} == {None}
    forged = served.gw.metrics.registry.get_sample_value(
        "iot_gateway_webhooks_total", {"kind": path.split("?")[0], "outcome": "forged"}
    )
    assert forged == 1
