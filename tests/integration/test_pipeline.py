"""The spine end to end: a real broker, a real database, the gateway in-process."""

from __future__ import annotations

import asyncio
import io
import time

import pytest
import sqlalchemy as sa

from gateway.alerts.notifiers.console import ConsoleNotifier
from gateway.store.tables import (
    alert_events,
    alerts,
    dead_letters,
    device_state,
    devices,
    notifications,
    readings,
)
from tests.integration.harness import (
    eventually,
    isolated_settings,
    register,
    rows,
    running,
)

pytestmark = pytest.mark.mqtt


async def test_reading_is_stored_with_device_state(mqtt_url, database_url, unique_id, publisher):
    settings = isolated_settings(mqtt_url, database_url, unique_id)
    async with running(settings) as gw:
        await register(gw)
        publisher.send(
            f"{unique_id}/homes/H001/water-1/telemetry",
            {"kind": "water_meter", "ts": 1764400000, "water_total_l": 183402.5},
        )
        stored = await eventually(lambda: rows(gw, sa.select(readings)))
        assert [(r["device_id"], r["metric"], r["value_num"], r["unit"]) for r in stored] == [
            ("water-1", "water_total_l", 183402.5, "L")
        ]
        assert stored[0]["ts"].timestamp() == 1764400000
        state = await rows(gw, sa.select(device_state))
        assert state[0]["value_num"] == 183402.5
        device = (await rows(gw, sa.select(devices)))[0]
        assert (device["kind"], device["review"]) == ("water_meter", "new")


async def test_smoke_alarm_opens_alert_and_notifies_visitor(
    mqtt_url, database_url, unique_id, publisher
):
    console = io.StringIO()
    settings = isolated_settings(mqtt_url, database_url, unique_id)
    async with running(settings, ConsoleNotifier(console)) as gw:
        await register(gw)
        publisher.send(
            f"{unique_id}/homes/H001/smoke-1/telemetry", {"kind": "smoke_detector", "smoke": True}
        )
        opened = await eventually(lambda: rows(gw, sa.select(alerts)))
        assert (opened[0]["rule_id"], opened[0]["severity"], opened[0]["device_id"]) == (
            "smoke_alarm",
            "critical",
            "smoke-1",
        )
        sent = await eventually(
            lambda: rows(gw, sa.select(notifications).where(notifications.c.status == "sent"))
        )
        assert sent[0]["recipient_name"] == "李敏"
        assert sent[0]["recipient_phone"] == "+8613900000000"
        assert "张桂兰" in sent[0]["body"]
        assert "烟雾" in sent[0]["body"]
        assert "某村3组12号" in sent[0]["body"]
        # The console shows the message with the number masked.
        assert "张桂兰" in console.getvalue()
        assert "+8613900000000" not in console.getvalue()
        status = await eventually(
            lambda: rows(gw, sa.select(alerts.c.status).where(alerts.c.status == "notified"))
        )
        assert status


async def test_repeated_alarm_updates_the_open_alert(mqtt_url, database_url, unique_id, publisher):
    settings = isolated_settings(mqtt_url, database_url, unique_id)
    async with running(settings) as gw:
        await register(gw)
        for ts in (1764400000, 1764400010, 1764400020):
            publisher.send(
                f"{unique_id}/homes/H001/smoke-1/telemetry",
                {"kind": "smoke_detector", "smoke": True, "ts": ts},
            )

        async def three_occurrences():
            found = await rows(gw, sa.select(alerts))
            return found if found and found[0]["occurrences"] == 3 else None

        found = await eventually(three_occurrences)
        assert len(found) == 1
        notes = await rows(gw, sa.select(notifications))
        # The first step only (visitor and first relative, by SMS and by call), once.
        assert sorted((n["recipient_role"], n["channel"]) for n in notes) == [
            ("relative", "sms"),
            ("relative", "voice"),
            ("visitor", "sms"),
            ("visitor", "voice"),
        ], "a repeat must not message anyone again"


async def test_sos_withdrawn_by_cancel_within_window(mqtt_url, database_url, unique_id, publisher):
    settings = isolated_settings(mqtt_url, database_url, unique_id)
    async with running(settings) as gw:
        await register(gw)
        topic = f"{unique_id}/homes/H001/btn-1/event"
        publisher.send(topic, {"kind": "call_button", "event": "sos", "ts": 1764400000})
        publisher.send(topic, {"event": "cancel", "ts": 1764400012})
        resolved = await eventually(
            lambda: rows(gw, sa.select(alerts).where(alerts.c.status == "resolved"))
        )
        assert resolved[0]["rule_id"] == "call_button"
        assert "withdrawn" in resolved[0]["resolution_note"]
        events = [e["event"] for e in await rows(gw, sa.select(alert_events))]
        assert events[0] == "opened"
        assert "auto_resolved" in events


async def test_bad_payloads_become_dead_letters_and_ingest_carries_on(
    mqtt_url, database_url, unique_id, publisher
):
    settings = isolated_settings(mqtt_url, database_url, unique_id)
    async with running(settings) as gw:
        await register(gw)
        base = f"{unique_id}/homes"
        publisher.send(f"{base}/H001/water-1/telemetry", b"{not json")
        publisher.send(f"{base}/H001/water-1/telemetry", {"water_total_l": "lots"})
        publisher.send(f"{base}/H999/water-1/telemetry", {"water_total_l": 5.0})
        publisher.send(f"{unique_id}/elsewhere/H001", {"water_total_l": 5.0})
        publisher.send(f"{base}/H001/hm-1/telemetry", {"heart_rate_bpm": 900, "spo2_pct": 97})
        publisher.send(f"{base}/H001/water-1/telemetry", {"water_total_l": 12.5})

        stored = await eventually(
            lambda: rows(gw, sa.select(readings).where(readings.c.metric == "water_total_l"))
        )
        assert [r["value_num"] for r in stored] == [12.5]
        letters = await eventually(
            lambda: _at_least(rows(gw, sa.select(dead_letters).order_by(dead_letters.c.id)), 4)
        )
        codes = {letter["reason_code"] for letter in letters}
        assert {"invalid_json", "invalid_value", "unknown_household"} <= codes
        assert any("900" in letter["reason"] for letter in letters)
        assert all(letter["reason"] for letter in letters)
        # The valid SpO2 next to the impossible heart rate is kept.
        spo2 = await rows(gw, sa.select(readings).where(readings.c.metric == "spo2_pct"))
        assert [r["value_num"] for r in spo2] == [97.0]
        exposition = gw.metrics.exposition().decode()
        assert 'iot_gateway_dead_letters_total{reason="invalid_json"} 1.0' in exposition


async def test_topic_outside_every_source_is_a_dead_letter(
    mqtt_url, database_url, unique_id, publisher
):
    # Subscribed broadly (homes/#-like), a topic with a reserved device id matches no source.
    settings = isolated_settings(mqtt_url, database_url, unique_id)
    async with running(settings) as gw:
        await register(gw)
        publisher.send(f"{unique_id}/homes/H001/z2m/telemetry", {"smoke": True})
        letters = await eventually(lambda: rows(gw, sa.select(dead_letters)))
        assert letters[0]["reason_code"] == "no_source"


async def _at_least(query_rows, n):
    found = await query_rows
    return found if len(found) >= n else None


async def test_restart_loses_nothing_and_stores_nothing_twice(
    mqtt_url, database_url, unique_id, publisher
):
    settings = isolated_settings(mqtt_url, database_url, unique_id)
    async with running(settings) as gw:
        await register(gw)
    # The gateway is down; its persistent session keeps what arrives meanwhile.
    start = 1764400000
    for i in range(60):
        publisher.send(
            f"{unique_id}/homes/H001/power-1/telemetry",
            {"kind": "power_meter", "power_w": float(i), "ts": start + i},
        )
    t0 = time.monotonic()
    async with running(settings) as gw:
        stored = await eventually(
            lambda: _at_least(rows(gw, sa.select(readings.c.value_num)), 60), within=15
        )
        await asyncio.sleep(0.5)  # time for a redelivery, if there were one, to land
        stored = await rows(gw, sa.select(readings.c.value_num))
    assert sorted(r["value_num"] for r in stored) == [float(i) for i in range(60)]
    assert time.monotonic() - t0 < 15
