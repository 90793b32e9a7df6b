"""Retained messages are current state, not new events: through the pipeline, and end to end
on a real broker that sends them again when a restarted gateway subscribes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.app import Core
from gateway.store.tables import alerts, dead_letters, devices
from tests.integration.harness import (
    Publisher,
    core_with_household,
    eventually,
    inbound,
    isolated_settings,
    register,
    rows,
    running,
)

T0 = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


@pytest.fixture
async def core(database_url: str, unique_id: str) -> AsyncIterator[Core]:
    async with core_with_household(database_url, unique_id, T0) as core:
        yield core


async def select(core: Core, query: sa.Select[Any]) -> list[dict[str, Any]]:
    async with core.db.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(query)]


async def test_a_retained_copy_of_a_known_alarm_does_not_reopen_the_resolved_alert(
    core: Core, unique_id: str
):
    topic = f"{unique_id}/homes/H001/smoke-1/telemetry"
    await core.pipeline.process([inbound(topic, {"smoke": True}, T0)])
    (alert,) = await select(core, sa.select(alerts))
    await core.book.resolve(alert["id"], "值班员", "burnt toast")
    later = T0 + timedelta(hours=2)
    result = await core.pipeline.process([inbound(topic, {"smoke": True}, later, retain=True)])
    assert (result.readings, result.dead_letters) == (0, [])
    assert len(await select(core, sa.select(alerts))) == 1


async def test_a_retained_button_press_is_an_old_event_kept_as_a_dead_letter(
    core: Core, unique_id: str
):
    topic = f"{unique_id}/homes/H001/btn-1/event"
    await core.pipeline.process([inbound(topic, {"event": "sos"}, T0, retain=True)])
    assert await select(core, sa.select(alerts)) == []
    (letter,) = await select(core, sa.select(dead_letters))
    assert letter["reason_code"] == "retained_event"
    assert "not a new one" in letter["reason"]


async def test_a_retained_state_the_gateway_did_not_know_is_judged(core: Core, unique_id: str):
    # The live message was missed (a lost session): a smoke alarm is a smoke alarm.
    topic = f"{unique_id}/homes/H001/smoke-1/telemetry"
    await core.pipeline.process([inbound(topic, {"smoke": True}, T0, retain=True)])
    (alert,) = await select(core, sa.select(alerts))
    assert alert["rule_id"] == "smoke_alarm"


async def test_a_retained_last_will_is_news_of_the_device_but_no_sign_that_it_lives(
    core: Core, unique_id: str
):
    status = f"{unique_id}/homes/H001/smoke-1/status"
    await core.pipeline.process([inbound(status, "online", T0)])
    later = T0 + timedelta(hours=3)
    await core.pipeline.process([inbound(status, "offline", later, retain=True)])
    (alert,) = await select(core, sa.select(alerts))
    assert (alert["rule_id"], alert["device_id"]) == ("device_offline", "smoke-1")
    (device,) = await select(core, sa.select(devices))
    assert device["last_seen"] == T0
    assert core.detector.engine.state("H001").devices["smoke-1"].last_seen == T0


@pytest.mark.mqtt
async def test_after_a_restart_retained_alarms_and_presses_open_nothing_again(
    mqtt_url: str, sqlite_url: str, unique_id: str
):
    settings = isolated_settings(mqtt_url, sqlite_url, unique_id)
    smoke = f"{unique_id}/homes/H001/smoke-1/telemetry"
    button = f"{unique_id}/homes/H001/btn-1/event"
    publisher = Publisher(mqtt_url)
    try:
        async with running(settings) as gateway:
            await register(gateway)
            # Hubs that retain their devices' state: delivered live the first time.
            publisher.send(smoke, {"smoke": True}, retain=True)
            publisher.send(button, {"event": "sos"}, retain=True)

            async def both_opened() -> list[dict[str, Any]]:
                found = await rows(gateway, sa.select(alerts))
                return found if len(found) == 2 else []

            for alert in await eventually(both_opened):
                await gateway.book.resolve(alert["id"], "值班员", "checked, all well")
        async with running(settings) as gateway:  # subscribes again: the broker resends both

            async def both_judged() -> bool:
                def count(outcome: str) -> float:
                    name, labels = "iot_gateway_retained_readings_total", {"outcome": outcome}
                    return gateway.metrics.registry.get_sample_value(name, labels) or 0.0

                return count("unchanged") + count("event") >= 2

            await eventually(both_judged)
            assert len(await rows(gateway, sa.select(alerts))) == 2
            letters = await rows(gateway, sa.select(dead_letters))
            assert [d["reason_code"] for d in letters] == ["retained_event"]
    finally:
        for topic in (smoke, button):
            publisher.send(topic, b"", retain=True)  # clear the broker's copies
        publisher.close()
