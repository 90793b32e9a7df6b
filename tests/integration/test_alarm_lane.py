"""A smoke alarm behind a backlog of 20,000 ordinary readings is stored and alerted first.

The gateway was away; its persistent session kept the readings, then the alarm. On its return
the broker sends them all (its window is the gateway's buffer, as in config/mosquitto), and the
alarm goes ahead: stored before most of the backlog, with its own device's older messages in
their order, and nothing lost or stored twice. Order is asserted (row ids), never timing.
"""

from __future__ import annotations

import json
import time

import pytest
import sqlalchemy as sa

from gateway.store.tables import alerts, dead_letters, device_state, readings
from tests.integration.harness import (
    HOUSEHOLD,
    Publisher,
    eventually,
    isolated_settings,
    register,
    rows,
    running,
)

pytestmark = pytest.mark.mqtt

BACKLOG = 20_000
HOMES = 10
QUIET_REPORTS = 10
"""The alarm's own detector reported "no smoke" this often in the backlog."""
START = int(time.time()) - 6 * 3600  # hours of an outage: within the rate limit's backlog span


async def count(gw, query) -> int:  # type: ignore[no-untyped-def]
    return len(await rows(gw, query))


def publish_backlog(publisher: Publisher, prefix: str) -> None:
    """Ordinary power readings of ten homes, one a second each, with the smoke detector's
    quiet reports spread through them; then the alarm, published last."""
    client = publisher.client
    smoke_topic = f"{prefix}/homes/H001/smoke-1/telemetry"
    every = BACKLOG // QUIET_REPORTS
    last = None
    for n in range(BACKLOG):
        home, second = n % HOMES, n // HOMES
        body = {"kind": "power_meter", "ts": START + second, "power_w": float(n % 2000)}
        client.publish(f"{prefix}/homes/B{home}/power-1/telemetry", json.dumps(body), qos=1)
        if n % every == every - 1:
            quiet = {"kind": "smoke_detector", "ts": START + second, "smoke": False}
            last = client.publish(smoke_topic, json.dumps(quiet), qos=1)
    assert last is not None
    last.wait_for_publish(60)
    alarm = {"kind": "smoke_detector", "ts": START + BACKLOG // HOMES, "smoke": True}
    publisher.send(smoke_topic, alarm)


async def test_a_smoke_alarm_behind_a_backlog_is_stored_before_most_of_it(
    mqtt_url, mqtt_broker_kind, database_url, unique_id, publisher
):
    if mqtt_broker_kind != "mosquitto":
        pytest.skip("needs our mosquitto's window of 20,000 unacknowledged messages")
    settings = isolated_settings(mqtt_url, database_url, unique_id)
    async with running(settings) as gw:  # the session and its subscriptions, kept at the broker
        await register(gw)
        for home in range(HOMES):
            await register(gw, {**HOUSEHOLD, "id": f"B{home}"})
    publish_backlog(publisher, unique_id)

    async with running(settings) as gw:
        total = BACKLOG + QUIET_REPORTS + 1
        # While it drains, the buffer's depth and its oldest message's age show in /metrics.
        await eventually(lambda: _buffered(gw), within=30)
        await eventually(lambda: _stored(gw, total), within=180, interval=0.5)
        smoke = await rows(
            gw, sa.select(readings).where(readings.c.device_id == "smoke-1").order_by(readings.c.id)
        )
        exposition = gw.metrics.exposition().decode()

        assert [r["value_num"] for r in smoke] == [0.0] * QUIET_REPORTS + [1.0]  # in order
        alarm_id = smoke[-1]["id"]
        backlog_before = await count(
            gw,
            sa.select(readings.c.id).where(
                readings.c.id < alarm_id, readings.c.device_id != "smoke-1"
            ),
        )
        assert backlog_before < BACKLOG // 2, (
            f"the alarm was stored after {backlog_before} readings"
        )
        # Nothing lost, nothing twice, nothing refused.
        keys = await rows(gw, sa.select(readings.c.household_id, readings.c.ts))
        stored = [(k["household_id"], k["ts"]) for k in keys]
        assert len(stored) == len(set(stored)) == BACKLOG + QUIET_REPORTS + 1
        assert await count(gw, sa.select(dead_letters)) == 0
        # The backlog's meters last reported hours ago: a rules tick during a slow drain may
        # rightly find them offline. The one alarm is the smoke alarm, opened once.
        opened = await rows(gw, sa.select(alerts).where(alerts.c.rule_id != "device_offline"))
        assert [(a["rule_id"], a["device_id"]) for a in opened] == [("smoke_alarm", "smoke-1")]
        state = await rows(gw, sa.select(device_state).where(device_state.c.metric == "smoke"))
        assert [s["value_num"] for s in state] == [1.0]
        assert 'iot_gateway_alarm_lane_messages_total{outcome="prioritised"} 1.0' in exposition
        assert 'iot_gateway_ingest_batches_total{lane="alarm"} 1.0' in exposition


async def _buffered(gw) -> bool:  # type: ignore[no-untyped-def]
    text = gw.metrics.exposition().decode()
    depth = _sample(text, 'iot_gateway_ingest_buffered_messages{lane="ordinary"}')
    age = _sample(text, "iot_gateway_ingest_buffer_oldest_age_seconds")
    return depth > 1000 and age > 0


async def _stored(gw, total: int) -> bool:  # type: ignore[no-untyped-def]
    return await count(gw, sa.select(readings.c.id)) >= total


def _sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0
