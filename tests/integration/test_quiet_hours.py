"""Quiet hours: a low-severity alert opened at night is messaged in the morning (issue 5, item 1).

A real database and the gateway's own alert book and dispatcher, driven by a manual clock; the
notifier records what it was asked to send.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from gateway.alerts.notifiers.base import Delivery, OutboundMessage
from gateway.app import Gateway
from gateway.clock import ManualClock
from gateway.models import Finding, FindingAction, Severity
from gateway.store.rule_settings import put_overrides
from gateway.store.tables import alert_events, escalations, notifications
from tests.integration.harness import (
    HOUSEHOLD,
    api_client,
    eventually,
    isolated_settings,
    register,
    rows,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def shanghai(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI)


class RecordingNotifier:
    """Accepts every message and remembers it."""

    name = "recording"

    def __init__(self) -> None:
        self.sent: list[OutboundMessage] = []

    async def send(self, message: OutboundMessage) -> Delivery:
        self.sent.append(message)
        return Delivery(self.name, f"msg-{len(self.sent)}", "accepted")


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
async def gateway(
    database_url: str, unique_id: str, notifier: RecordingNotifier
) -> AsyncIterator[Gateway]:
    # The gateway's own zone is UTC, the household's is Shanghai: quiet hours follow the home.
    settings = isolated_settings("mqtt://127.0.0.1:1", database_url, unique_id, timezone="UTC")
    gw = Gateway(settings, clock=ManualClock(shanghai(29, 12)), notifier=notifier)
    await gw.prepare()
    await register(gw, {**HOUSEHOLD, "timezone": "Asia/Shanghai"})
    await gw.core.household_changed("H001")
    yield gw
    await gw.close()


def clock_of(gw: Gateway) -> ManualClock:
    assert isinstance(gw.clock, ManualClock)
    return gw.clock


async def open_alert(
    gw: Gateway, at: datetime, rule: str, severity: Severity, device: str = "door-1"
) -> list[int]:
    """Open an alert at local time `at` (the clock is set there); the notifications it queued
    at once (none while it is held)."""
    clock_of(gw).set(at)
    finding = Finding(
        rule_id=rule,
        household_id="H001",
        device_id=device,
        severity=severity,
        action=FindingAction.OPEN,
        ts=at,
        summary=f"{rule} on {device}",
        evidence={"metric": "battery_pct", "value": 9},
    )
    async with gw.db.begin() as conn:
        applied = await gw.book.apply(conn, [finding])
    return applied.notification_ids


async def run_workers(gw: Gateway) -> None:
    """What the dispatcher's workers do: deliver everything queued."""
    while not gw.dispatcher.queue.empty():
        await gw.dispatcher.deliver(gw.dispatcher.queue.get_nowait())
        gw.dispatcher.queue.task_done()


async def submit_and_deliver(gw: Gateway, ids: list[int]) -> None:
    gw.dispatcher.submit(ids)
    await run_workers(gw)


async def escalate_and_deliver(gw: Gateway) -> None:
    """What the scheduler's escalation job and the dispatcher do at the clock's time."""
    await gw.escalator.run_due()
    await run_workers(gw)


async def notes(gw: Gateway) -> list[dict[str, Any]]:
    return await rows(gw, sa.select(notifications).order_by(notifications.c.id))


async def sms(gw: Gateway) -> list[dict[str, Any]]:
    return [n for n in await notes(gw) if n["channel"] == "sms"]


async def escalation(gw: Gateway) -> dict[str, Any]:
    (row,) = await rows(gw, sa.select(escalations))
    return row


async def test_low_alert_at_night_is_held_until_seven_next_morning(
    gateway: Gateway, notifier: RecordingNotifier
):
    assert await open_alert(gateway, shanghai(29, 23, 30), "low_battery", Severity.LOW) == []
    assert await notes(gateway) == []
    held = await escalation(gateway)
    assert held["started_at"] == held["next_at"] == shanghai(30, 7)
    assert held["next_at"] == datetime(2026, 11, 29, 23, 0, tzinfo=UTC)
    events = await rows(gateway, sa.select(alert_events).order_by(alert_events.c.id))
    assert [e["event"] for e in events] == ["opened", "notification_held"]
    assert "2026-11-30 07:00" in events[1]["detail"]

    # The escalation job runs all night: nothing goes out, nothing fails.
    for at in (shanghai(29, 23, 31), shanghai(30, 3), shanghai(30, 6, 59)):
        clock_of(gateway).set(at)
        await escalate_and_deliver(gateway)
    assert notifier.sent == []
    assert await notes(gateway) == []

    clock_of(gateway).set(shanghai(30, 7) + timedelta(seconds=10))
    await escalate_and_deliver(gateway)
    (sent,) = await notes(gateway)
    assert sent["status"] == "sent"
    assert sent["sent_at"] == shanghai(30, 7) + timedelta(seconds=10)
    assert [m.to_name for m in notifier.sent] == ["李敏"]
    # The message says when the battery ran low, at night.
    assert "23:30" in notifier.sent[0].body


async def test_the_running_gateway_sends_a_held_message_once_it_is_due(
    gateway: Gateway, notifier: RecordingNotifier
):
    await open_alert(gateway, shanghai(29, 23, 30), "low_battery", Severity.LOW)
    task = asyncio.create_task(gateway.dispatcher.run())
    try:
        for _ in range(3):  # the job's runs at night
            await gateway.escalator.run_due()
        await asyncio.sleep(0.1)
        assert notifier.sent == []
        clock_of(gateway).set(shanghai(30, 7, 1))
        await gateway.escalator.run_due()
        await eventually(lambda: _sent(gateway))
    finally:
        await gateway.dispatcher.stop()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert len(notifier.sent) == 1


async def _sent(gw: Gateway) -> list[dict[str, Any]]:
    return [n for n in await notes(gw) if n["status"] == "sent"]


async def test_high_alert_at_night_is_sent_at_once(gateway: Gateway, notifier: RecordingNotifier):
    ids = await open_alert(gateway, shanghai(29, 23, 30), "device_offline", Severity.HIGH)
    await submit_and_deliver(gateway, ids)
    (sent,) = await sms(gateway)
    assert (sent["status"], sent["not_before"]) == ("sent", None)
    assert [m.channel.value for m in notifier.sent] == ["sms", "voice"]


async def test_low_alert_at_noon_is_sent_at_once(gateway: Gateway, notifier: RecordingNotifier):
    ids = await open_alert(gateway, shanghai(29, 12), "low_battery", Severity.LOW)
    await submit_and_deliver(gateway, ids)
    (sent,) = await notes(gateway)
    assert (sent["status"], sent["not_before"]) == ("sent", None)
    assert len(notifier.sent) == 1


@pytest.mark.parametrize("action", ["resolve", "acknowledge"])
async def test_alert_dealt_with_during_the_night_sends_nothing_in_the_morning(
    gateway: Gateway, notifier: RecordingNotifier, action: str
):
    await open_alert(gateway, shanghai(29, 23, 30), "low_battery", Severity.LOW)
    clock_of(gateway).set(shanghai(30, 1))
    if action == "resolve":
        await gateway.book.resolve(1, "值班员", "battery replaced")
    else:
        await gateway.book.acknowledge(1, "值班员")
    clock_of(gateway).set(shanghai(30, 8))
    await escalate_and_deliver(gateway)
    assert await notes(gateway) == []
    assert notifier.sent == []
    assert (await escalation(gateway))["state"] == "done"


@pytest.fixture
def quiet_hours_off(tmp_path: Path) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text("[quiet_hours]\nenabled = false\n", encoding="utf-8")
    return path


async def test_quiet_hours_disabled_in_rules_file_sends_at_once(
    database_url: str, unique_id: str, notifier: RecordingNotifier, quiet_hours_off: Path
):
    settings = isolated_settings(
        "mqtt://127.0.0.1:1", database_url, unique_id, rules_file=quiet_hours_off
    )
    gw = Gateway(settings, clock=ManualClock(shanghai(29, 12)), notifier=notifier)
    await gw.prepare()
    try:
        await register(gw)
        ids = await open_alert(gw, shanghai(29, 23, 30), "low_battery", Severity.LOW)
        await submit_and_deliver(gw, ids)
        (sent,) = await notes(gw)
        assert (sent["status"], sent["not_before"]) == ("sent", None)
    finally:
        await gw.close()


async def set_quiet_hours(gw: Gateway, quiet_hours: dict[str, Any]) -> None:
    """What PUT /api/households/H001/rules does: store the overrides, reload the household."""
    async with gw.db.begin() as conn:
        await put_overrides(conn, "H001", {"quiet_hours": quiet_hours}, "test", gw.clock.now())
    await gw.core.household_changed("H001")


async def test_quiet_hours_disabled_for_one_household_sends_at_once(
    gateway: Gateway, notifier: RecordingNotifier
):
    await set_quiet_hours(gateway, {"enabled": False})
    ids = await open_alert(gateway, shanghai(29, 23, 30), "low_battery", Severity.LOW)
    await submit_and_deliver(gateway, ids)
    (sent,) = await notes(gateway)
    assert (sent["status"], sent["not_before"]) == ("sent", None)


async def test_a_window_within_the_day_holds_until_its_end(
    gateway: Gateway, notifier: RecordingNotifier
):
    await set_quiet_hours(gateway, {"start": "13:00", "end": "14:00"})
    night = await open_alert(gateway, shanghai(29, 23, 30), "low_battery", Severity.LOW)
    await submit_and_deliver(gateway, night)
    assert len(notifier.sent) == 1, "outside 13:00-14:00 the night is not quiet"

    nap = await open_alert(gateway, shanghai(30, 13, 20), "low_battery", Severity.LOW, "pir-1")
    assert nap == []
    clock_of(gateway).set(shanghai(30, 13, 59))
    await escalate_and_deliver(gateway)
    assert len(notifier.sent) == 1
    clock_of(gateway).set(shanghai(30, 14))
    await escalate_and_deliver(gateway)
    assert len(notifier.sent) == 2


async def test_alert_detail_shows_until_when_escalation_is_held(gateway: Gateway):
    await open_alert(gateway, shanghai(29, 23, 30), "low_battery", Severity.LOW)
    async with api_client(gateway, TOKEN) as client:
        detail = (await client.get("/api/alerts/1", headers=AUTH)).json()
    assert detail["notifications"] == []
    assert detail["escalation"]["state"] == "running"
    assert detail["escalation"]["next_step"] == 1
    assert datetime.fromisoformat(detail["escalation"]["next_at"]) == shanghai(30, 7)
    assert [e["event"] for e in detail["history"]] == ["opened", "notification_held"]
