"""Escalation on an injected clock (issue 10): steps, acknowledgement, the closed loop, check-in
calls, failed deliveries, batching, restarts, and two gateways sharing PostgreSQL.

A real database and the gateway's own alert book, escalator and dispatcher; the notifier
records what it is asked to send. Twilio itself is in test_twilio_webhooks.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.alerts.book import AlertChange
from gateway.alerts.notifiers.base import (
    Channel,
    Delivery,
    OutboundMessage,
    PermanentSendError,
    Purpose,
)
from gateway.app import Gateway
from gateway.clock import ManualClock
from gateway.models import Finding, FindingAction, Severity
from gateway.store.tables import alert_events, alerts, escalations, notifications, visits
from tests.integration.harness import HOUSEHOLD, api_client, isolated_settings, register, rows

T0 = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)  # noon in Shanghai
TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
VISITOR, RELATIVE, ELDER = "+8613900000000", "+8613700000000", "+8613800000000"
SECOND_RELATIVE, CONTROL_ROOM = "+8613600000000", "+8657100000000"
PUBLIC_URL = "https://care.example.org"

FAMILY = {
    **HOUSEHOLD,
    "relatives": [
        {"name": "王强", "phone": RELATIVE, "relation": "son"},
        {"name": "王芳", "phone": SECOND_RELATIVE, "relation": "daughter", "language": "en"},
    ],
}


class RecordingNotifier:
    """Accepts every message (or refuses the numbers in `refuse`) and remembers it."""

    name = "recording"

    def __init__(self) -> None:
        self.sent: list[OutboundMessage] = []
        self.refuse: set[str] = set()

    async def send(self, message: OutboundMessage) -> Delivery:
        if message.to_phone in self.refuse:
            raise PermanentSendError(f"{message.channel} refused")
        self.sent.append(message)
        return Delivery(self.name, f"SID{len(self.sent)}", "queued")

    def taken(self) -> list[tuple[str, str]]:
        """(channel, to) of everything sent so far, then forgotten."""
        out = [(m.channel.value, m.to_phone) for m in self.sent]
        self.sent.clear()
        return out


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


def settings_for(database_url: str, unique_id: str, **extra: Any) -> Any:
    escalation = {
        "control_room": {"name": "县值班室", "phone": CONTROL_ROOM},
        "batch_window_s": 0,
        **extra.pop("escalation", {}),
    }
    return isolated_settings(
        "mqtt://127.0.0.1:1", database_url, unique_id, escalation=escalation, **extra
    )


@pytest.fixture
async def gateway(
    database_url: str, unique_id: str, notifier: RecordingNotifier
) -> AsyncIterator[Gateway]:
    settings = settings_for(database_url, unique_id, public_url=PUBLIC_URL)
    gw = Gateway(settings, clock=ManualClock(T0), notifier=notifier)
    await gw.prepare()
    await register(gw, FAMILY)
    yield gw
    await gw.close()


def clock_of(gw: Gateway) -> ManualClock:
    assert isinstance(gw.clock, ManualClock)
    return gw.clock


async def deliver(gw: Gateway) -> None:
    """What the dispatcher's workers do: send everything queued."""
    while not gw.dispatcher.queue.empty():
        await gw.dispatcher.deliver(gw.dispatcher.queue.get_nowait())
        gw.dispatcher.queue.task_done()


async def at(gw: Gateway, minutes: float) -> None:
    """Move the clock to T0 + minutes; run the escalation job and the dispatcher."""
    clock_of(gw).set(T0 + timedelta(minutes=minutes))
    await gw.escalator.run_due()
    await deliver(gw)


def finding(
    rule: str, severity: Severity, at: datetime, household: str = "H001", device: str | None = None
) -> Finding:
    return Finding(
        rule_id=rule,
        household_id=household,
        device_id=device or ("smoke-1" if rule == "smoke_alarm" else "household"),
        severity=severity,
        action=FindingAction.OPEN,
        ts=at,
        summary=rule,
    )


async def open_alert(
    gw: Gateway,
    rule: str = "smoke_alarm",
    severity: Severity = Severity.CRITICAL,
    household: str = "H001",
    device: str | None = None,
) -> int:
    """Open an alert as the pipeline does, and send what its first step queued."""
    opened = finding(rule, severity, gw.clock.now(), household, device)
    async with gw.db.begin() as conn:
        applied = await gw.book.apply(conn, [opened])
    gw.dispatcher.submit(applied.notification_ids)
    await deliver(gw)
    (alert_id,) = applied.opened
    return alert_id


async def events(gw: Gateway, alert_id: int) -> list[str]:
    found = await rows(
        gw,
        sa.select(alert_events)
        .where(alert_events.c.alert_id == alert_id)
        .order_by(alert_events.c.id),
    )
    return [e["event"] for e in found]


async def alert_row(gw: Gateway, alert_id: int) -> dict[str, Any]:
    (row,) = await rows(gw, sa.select(alerts).where(alerts.c.id == alert_id))
    return row


async def test_a_smoke_alarm_reaches_visitor_and_relative_then_relatives_then_the_control_room(
    gateway: Gateway, notifier: RecordingNotifier
):
    alert_id = await open_alert(gateway)
    assert sorted(notifier.taken()) == [
        ("sms", RELATIVE),
        ("sms", VISITOR),
        ("voice", RELATIVE),
        ("voice", VISITOR),
    ]
    await at(gateway, 1.9)
    assert notifier.taken() == []
    await at(gateway, 2)
    assert sorted(notifier.taken()) == [
        ("sms", SECOND_RELATIVE),
        ("sms", RELATIVE),
        ("voice", SECOND_RELATIVE),
        ("voice", RELATIVE),
    ]
    assert (await alert_row(gateway, alert_id))["status"] == "escalated"
    await at(gateway, 5)
    assert sorted(notifier.taken()) == [("sms", CONTROL_ROOM), ("voice", CONTROL_ROOM)]
    flagged = await alert_row(gateway, alert_id)
    assert (flagged["flag_reason"], flagged["flagged_at"]) == (
        "control_room",
        T0 + timedelta(minutes=5),
    )
    # The last step repeats every 10 minutes, saying so, until someone acknowledges.
    await at(gateway, 14.9)
    assert notifier.taken() == []
    await at(gateway, 15)
    repeated = list(notifier.sent)
    assert [m.to_phone for m in repeated] == [CONTROL_ROOM, CONTROL_ROOM]
    assert repeated[0].body.startswith("【第2次提醒】")
    notifier.taken()
    await at(gateway, 25)
    assert len(notifier.taken()) == 2

    await gateway.book.acknowledge(alert_id, "值班员")
    await at(gateway, 40)
    assert notifier.taken() == [], "acknowledged: the steps stop"
    assert await events(gateway, alert_id) == [
        "opened",
        "notifying",
        "notified",
        "notified",
        "notified",
        "notified",
        "escalated",
        *["notified"] * 4,
        "escalated",
        "flagged",
        *["notified"] * 2,
        "escalated",
        *["notified"] * 2,
        "escalated",
        *["notified"] * 2,
        "acknowledged",
    ]


async def test_the_steps_in_the_audit_trail_name_who_and_how_never_a_number(gateway: Gateway):
    alert_id = await open_alert(gateway)
    await at(gateway, 2)
    async with api_client(gateway, TOKEN) as client:
        detail = (await client.get(f"/api/alerts/{alert_id}", headers=AUTH)).json()
    steps = [e for e in detail["history"] if e["event"] in ("notifying", "escalated")]
    assert steps[0]["detail"].startswith("step 1: relative, visitor by sms, voice: ")
    assert "李敏 (visitor)" in steps[0]["detail"]
    assert "王强 (relative)" in steps[0]["detail"]
    assert steps[1]["detail"].startswith("step 2: relative by sms, voice: ")
    assert not any(p in str(detail["history"]) for p in (VISITOR, RELATIVE, SECOND_RELATIVE))
    assert detail["escalation"]["next_step"] == 3
    assert detail["escalation"]["first_contact"] == "visitor"
    assert [s["to"] for s in detail["escalation"]["policy"]["steps"]] == [
        ["visitors", "first_relative"],
        ["relatives"],
        ["control_room"],
    ]


async def test_messages_follow_each_persons_language(gateway: Gateway, notifier: RecordingNotifier):
    await open_alert(gateway)
    await at(gateway, 2)
    by_phone = {m.to_phone: m for m in notifier.sent if m.channel is Channel.SMS}
    assert by_phone[RELATIVE].body.startswith("紧急！【居家关爱】张桂兰家")
    assert "回复1确认，到达现场后回复2。" in by_phone[RELATIVE].body
    assert by_phone[SECOND_RELATIVE].body.startswith("URGENT: [Care alert] smoke/gas alarm")
    assert "Reply 1 to acknowledge" in by_phone[SECOND_RELATIVE].body
    calls = [m for m in notifier.sent if m.channel is Channel.VOICE]
    assert {m.prompt for m in calls} == {"确认收到请按1。", "Press 1 to acknowledge."}


async def test_a_critical_alert_nobody_reaches_within_30_minutes_of_acknowledgement_escalates_again(
    gateway: Gateway, notifier: RecordingNotifier
):
    alert_id = await open_alert(gateway)
    await at(gateway, 1)
    await gateway.book.acknowledge(alert_id, "李敏")
    notifier.taken()
    await at(gateway, 30.9)
    assert notifier.taken() == []
    await at(gateway, 31)
    again = notifier.sent
    assert sorted((m.channel.value, m.to_phone) for m in again) == [
        ("sms", RELATIVE),
        ("sms", VISITOR),
        ("voice", RELATIVE),
        ("voice", VISITOR),
    ]
    sms = next(m for m in again if m.channel is Channel.SMS and m.to_phone == VISITOR)
    assert sms.body.startswith("【已由李敏确认，但30分钟内无人到达现场】")
    assert (await alert_row(gateway, alert_id))["status"] == "escalated"
    assert "reescalated" in await events(gateway, alert_id)


async def test_arrival_ends_the_closed_loop_and_resolving_files_a_remote_monitoring_visit(
    gateway: Gateway, notifier: RecordingNotifier
):
    alert_id = await open_alert(gateway)
    await at(gateway, 1)
    async with api_client(gateway, TOKEN) as client:
        ack = await client.post(f"/api/alerts/{alert_id}/ack", json={"by": "李敏"}, headers=AUTH)
        assert ack.status_code == 200
        clock_of(gateway).set(T0 + timedelta(minutes=12))
        arrived = await client.post(
            f"/api/alerts/{alert_id}/arrive", json={"by": "李敏"}, headers=AUTH
        )
        assert arrived.json()["arrived_by"] == "李敏"
        notifier.taken()
        await at(gateway, 45)
        assert notifier.taken() == [], "someone is there: no re-escalation"
        clock_of(gateway).set(T0 + timedelta(minutes=50))
        resolved = await client.post(
            f"/api/alerts/{alert_id}/resolve", json={"note": "锅烧干了，已关火通风"}, headers=AUTH
        )
        assert resolved.status_code == 200
        listed = (await client.get("/api/households/H001/visits", headers=AUTH)).json()
    (visit,) = await rows(gateway, sa.select(visits))
    assert visit["method"] == "remote_monitoring"
    assert visit["alert_id"] == alert_id
    assert visit["visitor"] == "李敏"
    assert visit["visited_at"] == T0 + timedelta(minutes=1)
    assert visit["details"]["acknowledged_by"] == "李敏"
    assert visit["details"]["arrived_by"] == "李敏"
    assert {n["name"] for n in visit["details"]["notified"]} == {"李敏", "王强"}
    assert "锅烧干了" in visit["summary"]
    assert "烟雾" in visit["summary"]
    assert not any(p in str(visit) for p in (VISITOR, RELATIVE))
    if isinstance(listed, list):  # the listing endpoint lands with the visits API
        assert listed[0]["method"] == "remote_monitoring"


async def test_a_non_critical_alert_stops_escalating_when_acknowledged(
    gateway: Gateway, notifier: RecordingNotifier
):
    alert_id = await open_alert(gateway, "device_offline", Severity.HIGH)
    assert sorted(notifier.taken()) == [("sms", VISITOR), ("voice", VISITOR)]
    await gateway.book.acknowledge(alert_id, "李敏")
    for minutes in (5, 10, 40, 200):
        await at(gateway, minutes)
    assert notifier.taken() == []
    (esc,) = await rows(gateway, sa.select(escalations))
    assert esc["state"] == "done"


# Check-in calls.


async def test_an_inactivity_alert_calls_the_elder_first_and_a_1_closes_it_as_a_false_alarm(
    gateway: Gateway, notifier: RecordingNotifier
):
    heard: list[AlertChange] = []
    gateway.book.listeners.append(heard.append)
    alert_id = await open_alert(gateway, "no_water_use", Severity.HIGH)
    (call,) = notifier.sent
    assert (call.channel, call.to_phone, call.purpose) == (Channel.VOICE, ELDER, Purpose.CHECKIN)
    assert call.body == "您好，这里是居家关爱服务中心，张桂兰，我们关心您的情况。"
    assert call.prompt == "如果您一切平安，请按1。"
    assert call.notification_id is not None

    spoken = await gateway.responses.keypress(call.notification_id, "1")
    assert spoken.text == "谢谢您，祝您平安。我们已记录。"
    closed = await alert_row(gateway, alert_id)
    assert (closed["status"], closed["acknowledged_by"], closed["resolved_by"]) == (
        "resolved",
        "张桂兰",
        "张桂兰",
    )
    assert "平安" in closed["resolution_note"]
    (visit,) = await rows(gateway, sa.select(visits))
    assert (visit["method"], visit["visitor"]) == ("phone", "自动回访电话")
    assert visit["details"]["outcome"] == "well"
    assert [c.outcome for c in heard if not c.active] == ["well"]
    # The rules keep it (and save it): where this home's quiet spells are normal.
    log = gateway.detector.engine.state("H001").log
    assert log.false_alarms == {"no_water_use": [T0]}
    assert type(log).from_json(log.to_json()).false_alarms == {"no_water_use": [T0]}
    notifier.taken()
    await at(gateway, 60)
    assert notifier.taken() == [], "nobody else is bothered"


@pytest.mark.parametrize("outcome", ["no-answer", "busy", "completed", "key 9"])
async def test_a_check_in_call_without_the_1_moves_on_to_the_visitor_at_once(
    gateway: Gateway, notifier: RecordingNotifier, outcome: str
):
    alert_id = await open_alert(gateway, "no_water_use", Severity.HIGH)
    (call,) = notifier.sent
    notifier.taken()
    assert call.notification_id is not None
    if outcome == "key 9":
        await gateway.responses.keypress(call.notification_id, "9")
    else:
        assert await gateway.responses.delivery_report("SID1", outcome, None)
    await at(gateway, 0)  # the job the report woke
    assert sorted(notifier.taken()) == [("sms", VISITOR), ("voice", VISITOR)]
    assert "checkin_unanswered" in await events(gateway, alert_id)


async def test_a_check_in_call_nobody_reports_on_times_out_to_the_next_step(
    gateway: Gateway, notifier: RecordingNotifier
):
    await open_alert(gateway, "missed_routine", Severity.MEDIUM)
    assert notifier.taken() == [("voice", ELDER)]
    await at(gateway, 2.9)
    assert notifier.taken() == []
    await at(gateway, 3)
    assert notifier.taken() == [("sms", VISITOR)]


async def test_without_a_public_url_the_check_in_is_skipped(
    database_url: str, unique_id: str, notifier: RecordingNotifier
):
    gw = Gateway(settings_for(database_url, unique_id), clock=ManualClock(T0), notifier=notifier)
    await gw.prepare()
    try:
        await register(gw, FAMILY)
        alert_id = await open_alert(gw, "no_water_use", Severity.HIGH)
        assert sorted(notifier.taken()) == [("sms", VISITOR), ("voice", VISITOR)]
        assert "step_skipped" in await events(gw, alert_id)
    finally:
        await gw.close()


# Failed deliveries.


async def test_a_person_whose_sms_fails_is_called_and_when_that_fails_too_the_next_step_runs(
    gateway: Gateway, notifier: RecordingNotifier
):
    notifier.refuse = {VISITOR}
    alert_id = await open_alert(gateway, "device_offline", Severity.MEDIUM)
    # MEDIUM: the visitor by SMS; refused, so a call; refused too: the relatives at once.
    await deliver(gateway)
    await at(gateway, 0)
    assert sorted(notifier.taken()) == [("sms", SECOND_RELATIVE), ("sms", RELATIVE)]
    trail = await events(gateway, alert_id)
    assert trail.count("notification_failed") == 2
    assert "fallback" in trail
    assert "step_failed" in trail


async def test_when_every_message_of_the_last_step_fails_the_alert_is_flagged_undeliverable(
    gateway: Gateway, notifier: RecordingNotifier
):
    notifier.refuse = {VISITOR}
    alert_id = await open_alert(gateway, "low_battery", Severity.LOW)  # one step only
    await deliver(gateway)
    flagged = await alert_row(gateway, alert_id)
    assert flagged["flag_reason"] == "undeliverable"
    async with api_client(gateway, TOKEN) as client:
        listed = (await client.get("/api/alerts?flagged=true", headers=AUTH)).json()
        metrics = (await client.get("/metrics")).text
    assert [a["id"] for a in listed] == [alert_id]
    assert 'iot_gateway_alerts_flagged{reason="undeliverable"} 1.0' in metrics


async def test_a_household_with_nobody_on_file_is_flagged_for_the_control_room(
    gateway: Gateway, notifier: RecordingNotifier
):
    await register(gateway, {"id": "H002", "elder": {"name": "孤老"}})
    alert_id = await open_alert(gateway, household="H002")
    # Visitors and relatives: nobody; the control room at once.
    assert sorted(notifier.taken()) == [("sms", CONTROL_ROOM), ("voice", CONTROL_ROOM)]
    assert (await alert_row(gateway, alert_id))["flag_reason"] == "control_room"


# Several alerts of one household at once.


async def test_several_alerts_of_a_household_within_the_window_go_out_as_one_message(
    database_url: str, unique_id: str, notifier: RecordingNotifier
):
    settings = settings_for(database_url, unique_id, escalation={"batch_window_s": 60})
    gw = Gateway(settings, clock=ManualClock(T0), notifier=notifier)
    await gw.prepare()
    try:
        await register(gw, FAMILY)
        for n, rule in enumerate(["low_battery", "device_offline", "appliance_left_on"]):
            clock_of(gw).set(T0 + timedelta(seconds=10 * n))
            await open_alert(gw, rule, Severity.MEDIUM, device=f"dev-{n}")
        (first,) = notifier.sent
        assert "设备电量低" in first.body
        notifier.taken()
        clock_of(gw).set(T0 + timedelta(seconds=61))
        await gw.dispatcher.sweep()
        await deliver(gw)
        (digest,) = notifier.sent
        assert digest.body.startswith("【居家关爱】张桂兰家（某县某镇某村3组12号）2条报警：")
        assert "设备离线" in digest.body
        assert "电器长时间未关" in digest.body
        sent = await rows(gw, sa.select(notifications).order_by(notifications.c.id))
        assert [n["status"] for n in sent] == ["sent"] * 3
        assert sent[2]["batched_into"] == sent[1]["id"]
    finally:
        await gw.close()


async def test_a_critical_alert_is_never_held_for_a_batch(
    database_url: str, unique_id: str, notifier: RecordingNotifier
):
    settings = settings_for(database_url, unique_id, escalation={"batch_window_s": 60})
    gw = Gateway(settings, clock=ManualClock(T0), notifier=notifier)
    await gw.prepare()
    try:
        await register(gw, FAMILY)
        await open_alert(gw, "low_battery", Severity.LOW)
        notifier.taken()
        clock_of(gw).set(T0 + timedelta(seconds=5))
        await open_alert(gw)
        assert ("sms", VISITOR) in notifier.taken()
    finally:
        await gw.close()


# Restarts and several processes.


async def test_a_restart_resumes_every_escalation_where_it_stood(
    database_url: str, unique_id: str, notifier: RecordingNotifier
):
    settings = settings_for(database_url, unique_id, public_url=PUBLIC_URL)
    first = Gateway(settings, clock=ManualClock(T0), notifier=notifier)
    await first.prepare()
    await register(first, FAMILY)
    alert_id = await open_alert(first)
    await first.close()
    assert len(notifier.taken()) == 4

    later = Gateway(settings, clock=ManualClock(T0 + timedelta(minutes=3)), notifier=notifier)
    await later.prepare()
    try:
        await at(later, 3)
        assert sorted(notifier.taken()) == [
            ("sms", SECOND_RELATIVE),
            ("sms", RELATIVE),
            ("voice", SECOND_RELATIVE),
            ("voice", RELATIVE),
        ]
        await at(later, 3)
        assert notifier.taken() == [], "a step runs once"
        # Step 2 ran at 3 minutes, late; its people get their full 3 minutes to answer.
        await at(later, 5.9)
        assert notifier.taken() == []
        await at(later, 6)
        assert sorted(notifier.taken()) == [("sms", CONTROL_ROOM), ("voice", CONTROL_ROOM)]
        assert (await alert_row(later, alert_id))["status"] == "escalated"
    finally:
        await later.close()


@pytest.mark.postgres
async def test_two_gateways_on_postgresql_run_each_step_exactly_once(
    postgres_url: str, unique_id: str
):
    settings = settings_for(postgres_url, unique_id, public_url=PUBLIC_URL)
    notifiers = [RecordingNotifier(), RecordingNotifier()]
    clock = ManualClock(T0)
    gateways = [Gateway(settings, clock=clock, notifier=n) for n in notifiers]
    for gw in gateways:
        await gw.prepare()
    try:
        households = [f"H{n:03d}" for n in range(1, 21)]
        for household_id in households:
            await register(gateways[0], {**FAMILY, "id": household_id})
        findings = [finding("smoke_alarm", Severity.CRITICAL, T0, h) for h in households]
        async with gateways[0].db.begin() as conn:
            await gateways[0].book.apply(conn, findings)
        # Both run the escalation job at once, at every minute of the next 30.
        for minute in range(31):
            clock.set(T0 + timedelta(minutes=minute))
            await asyncio.gather(*(gw.escalator.run_due() for gw in gateways))
            await asyncio.gather(*(gw.dispatcher.sweep() for gw in gateways))
            await asyncio.gather(*(deliver(gw) for gw in gateways))
        sent = notifiers[0].sent + notifiers[1].sent
        # Per household: step 1 (4), step 2 (4), control room at 5, 15, 25 min (2 each).
        assert len(sent) == 20 * (4 + 4 + 3 * 2)
        assert notifiers[0].sent, "both gateways took a share"
        assert notifiers[1].sent, "both gateways took a share"
        steps = await rows(
            gateways[0],
            sa.select(
                notifications.c.alert_id,
                notifications.c.run,
                notifications.c.channel,
                notifications.c.recipient_phone,
            ),
        )
        keys = [(s["alert_id"], s["run"], s["channel"], s["recipient_phone"]) for s in steps]
        assert len(keys) == len(set(keys)), "no step ran twice"
    finally:
        for gw in gateways:
            await gw.close()


# A household's own policy.


async def test_a_household_with_its_own_steps_gets_them_on_alerts_opened_afterwards(
    gateway: Gateway, notifier: RecordingNotifier
):
    first = await open_alert(gateway, "device_offline", Severity.HIGH)
    notifier.taken()
    own = {"policies": {"high": [{"to": ["relatives"], "channels": ["sms"], "wait_min": 20}]}}
    async with api_client(gateway, TOKEN) as client:
        put = await client.put("/api/households/H001/escalation", json=own, headers=AUTH)
        assert put.status_code == 200
        shown = (await client.get("/api/households/H001/escalation", headers=AUTH)).json()
        bad = await client.put(
            "/api/households/H001/escalation",
            json={
                "policies": {"high": [{"to": ["neighbours"], "channels": ["sms"], "wait_min": 1}]}
            },
            headers=AUTH,
        )
        missing = await client.put("/api/households/H404/escalation", json=own, headers=AUTH)
    assert shown["policies"]["high"][0]["to"] == ["relatives"]
    assert shown["effective"]["critical"][0]["to"] == ["visitors", "first_relative"]
    assert (bad.status_code, missing.status_code) == (422, 404)

    await gateway.book.resolve(first, "李敏", "路由器重启")
    await open_alert(gateway, "device_offline", Severity.HIGH)
    assert sorted(notifier.taken()) == [("sms", SECOND_RELATIVE), ("sms", RELATIVE)]
    # The alert opened before the change kept the steps frozen on it.
    (old,) = await rows(gateway, sa.select(escalations).where(escalations.c.alert_id == first))
    assert old["policy"]["steps"][0]["to"] == ["visitors"]


# Group robots and their acknowledge links.


async def test_the_control_room_step_posts_to_group_robots_with_a_link_that_acknowledges(
    database_url: str, unique_id: str, notifier: RecordingNotifier
):
    robots = [
        {"name": "control-room", "kind": "wecom", "url": "https://qyapi.example/send?key=k1"},
        {"name": "east", "kind": "dingtalk", "url": "https://oapi.example/x", "villages": ["某村"]},
        {"name": "west", "kind": "dingtalk", "url": "https://oapi.example/y", "villages": ["西村"]},
    ]
    settings = settings_for(
        database_url, unique_id, public_url=PUBLIC_URL, escalation={"robots": robots}
    )
    gw = Gateway(settings, clock=ManualClock(T0), notifier=notifier)
    await gw.prepare()
    try:
        await register(gw, FAMILY)
        gw.api_context(TOKEN)  # serving the API turns the links on
        alert_id = await open_alert(gw)
        notifier.taken()
        await at(gw, 2)
        notifier.taken()
        await at(gw, 5)
        posted = [m for m in notifier.sent if m.channel is Channel.ROBOT]
        # The control room's robot and the village team's; not another village's.
        assert sorted(m.to_phone for m in posted) == ["control-room", "east"]
        message = posted[0]
        assert message.title == "紧急！烟雾/燃气报警：张桂兰家"
        assert "某县某镇某村3组12号" in message.body
        assert message.link is not None
        assert message.link.startswith(PUBLIC_URL + "/ack/")
        path = message.link.removeprefix(PUBLIC_URL)
        async with api_client(gw, TOKEN) as client:
            page = await client.get(path)
            assert page.status_code == 200
            assert "烟雾/燃气报警" in page.text
            assert "我来处理" in page.text
            assert (await alert_row(gw, alert_id))["acknowledged_at"] is None, "GET changes nothing"
            forged = await client.post(path[:-3] + "abc", data={"name": "某人"})
            assert forged.status_code == 404
            taken = await client.post(path, data={"name": "村干部老刘"})
            assert taken.status_code == 200
            assert "已有人确认" in taken.text
        assert (await alert_row(gw, alert_id))["acknowledged_by"] == "村干部老刘（群链接）"
    finally:
        await gw.close()
