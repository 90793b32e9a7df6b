"""The broker connection on the event loop, against a real Mosquitto: a full buffer stops the
socket being read until the pipeline takes from it, a broker that restarts (or is not there yet)
is reconnected to, and no network thread runs beside the loop."""

from __future__ import annotations

import asyncio
import shutil
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway.clock import SystemClock
from gateway.config import MqttSettings
from gateway.ingest.embedded_broker import free_port
from gateway.ingest.lanes import Lane, Lanes
from gateway.ingest.mqtt import InboundMessage, MqttIngest
from gateway.store.tables import readings
from tests.conftest import _MosquittoProcess, missing_service
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

BACKLOG = 2_000
CAPACITY = 100
TIMEOUT_S = 20.0


def network_threads(client_id: str) -> list[str]:
    """paho's network threads of `client_id` (the tests' publishers have threads of their own)."""
    return [t.name for t in threading.enumerate() if t.name == f"paho-mqtt-client-{client_id}"]


def publish_backlog(mqtt_url: str, topics: list[str], count: int) -> None:
    publisher = Publisher(mqtt_url)
    try:
        infos = [
            publisher.client.publish(topics[n % len(topics)], f"{n}", qos=1) for n in range(count)
        ]
        for info in infos:
            info.wait_for_publish(TIMEOUT_S)
    finally:
        publisher.close()


async def test_a_full_buffer_stops_reading_the_socket_until_the_pipeline_takes_from_it(
    mqtt_url: str, mqtt_broker_kind: str, unique_id: str
) -> None:
    if mqtt_broker_kind != "mosquitto":
        pytest.skip("needs our mosquitto's window of 20,000 unacknowledged messages")
    settings = MqttSettings(url=mqtt_url, client_id=f"gw-{unique_id}")
    topics = [f"{unique_id}/homes/H{n}/power-1/telemetry" for n in range(7)]
    async with MqttIngest(settings, [f"{unique_id}/#"], SystemClock()) as ingest:
        assert await ingest.wait_subscribed(TIMEOUT_S)  # the persistent session's subscription
    await asyncio.to_thread(publish_backlog, mqtt_url, topics, BACKLOG)

    ingest = MqttIngest(settings, [f"{unique_id}/#"], SystemClock(), lanes=Lanes(CAPACITY, None))
    received: list[InboundMessage] = []
    async with ingest:
        await eventually(lambda: _true(ingest.lanes.full()), within=TIMEOUT_S)
        await asyncio.sleep(0.3)  # the broker has sent far more than that (its window: 20,000)
        assert ingest.lanes.depth(Lane.ORDINARY) == CAPACITY, "read no further while full"
        assert network_threads(settings.client_id) == []
        async for lane, batch in ingest.lane_batches(max_batch=30):
            assert lane is Lane.ORDINARY
            received.extend(batch)
            ingest.ack(batch)
            if len(received) == 30:
                # Room again: the socket is read, and the buffer fills up once more.
                await eventually(lambda: _true(ingest.lanes.full()), within=TIMEOUT_S)
            assert ingest.lanes.depth(Lane.ORDINARY) <= CAPACITY
            if len(received) >= BACKLOG:
                ingest.stop_receiving()
    payloads = [int(m.payload) for m in received]
    assert payloads == list(range(BACKLOG)), "every message once, in the order published"

    # All were acknowledged before leaving: a new connection finds nothing left.
    async with MqttIngest(settings, [f"{unique_id}/#"], SystemClock()) as again:
        assert await again.wait_subscribed(TIMEOUT_S)
        await asyncio.sleep(0.5)
        assert again.lanes.take(100) is None


async def test_the_broker_is_reached_when_it_starts_and_again_after_a_restart(
    tmp_path: Path, unique_id: str
) -> None:
    mosquitto = shutil.which("mosquitto")
    if mosquitto is None:
        missing_service("no mosquitto to restart")
    port = free_port()
    url = f"mqtt://127.0.0.1:{port}"
    settings = MqttSettings(
        url=url, client_id=f"gw-{unique_id}", reconnect_min_s=0.1, reconnect_max_s=0.5
    )
    topic = f"{unique_id}/homes/H001/btn-1/event"
    async with MqttIngest(settings, [f"{unique_id}/#"], SystemClock()) as ingest:
        assert not await ingest.wait_connected(0.5), "nothing listens there yet"
        batches = aiter(ingest.batches())
        with _MosquittoProcess(mosquitto, tmp_path, port=port):
            assert await ingest.wait_subscribed(TIMEOUT_S)
            await asyncio.to_thread(_send, url, topic, b"before")
            first = await asyncio.wait_for(anext(batches), TIMEOUT_S)
            ingest.ack(first)
        await eventually(lambda: _true(not ingest.connected.is_set()), within=TIMEOUT_S)
        with _MosquittoProcess(mosquitto, tmp_path, port=port):  # its session, from persistence
            assert await ingest.wait_subscribed(TIMEOUT_S)
            await asyncio.to_thread(_send, url, topic, b"after")
            later: list[InboundMessage] = []
            while b"after" not in [m.payload for m in later]:
                later += await asyncio.wait_for(anext(batches), TIMEOUT_S)
            ingest.ack(later)
    assert [(m.topic, m.payload) for m in first] == [(topic, b"before")]
    # "before" again if its PUBACK had not left when the broker stopped: sent again, as such.
    assert [(m.payload, m.dup) for m in later] in (
        [(b"after", False)],
        [(b"before", True), (b"after", False)],
    )


async def test_a_gateway_drains_without_a_network_thread(
    mqtt_url: str, sqlite_url: str, unique_id: str
) -> None:
    settings = isolated_settings(mqtt_url, sqlite_url, unique_id)
    async with running(settings) as gw:
        await register(gw)
        await register(gw, {**HOUSEHOLD, "id": "H002"})
        topics = [f"{unique_id}/homes/H00{n}/power-1/telemetry" for n in (1, 2)]
        publisher = asyncio.create_task(asyncio.to_thread(_publish_power, mqtt_url, topics, 1000))
        seen: set[str] = set()
        while not publisher.done():
            seen.update(network_threads(gw.settings.mqtt.client_id))
            await asyncio.sleep(0.01)
        await publisher
        stored = await eventually(lambda: _count_if(gw, 1000), within=60, interval=0.2)
        seen.update(network_threads(gw.settings.mqtt.client_id))
    assert stored == 1000
    assert seen == set(), "paho's network loop runs on the event loop, in no thread of its own"


def _publish_power(mqtt_url: str, topics: list[str], count: int) -> None:
    publisher = Publisher(mqtt_url)
    try:
        infos = [
            publisher.client.publish(
                topics[n % len(topics)],
                f'{{"kind": "power_meter", "ts": {1_764_400_000 + n}, "power_w": {n}}}',
                qos=1,
            )
            for n in range(count)
        ]
        for info in infos:
            info.wait_for_publish(TIMEOUT_S)
    finally:
        publisher.close()


def _send(mqtt_url: str, topic: str, payload: bytes) -> None:
    publisher = Publisher(mqtt_url)
    try:
        publisher.send(topic, payload)
    finally:
        publisher.close()


async def _count_if(gw, wanted: int) -> int | None:  # type: ignore[no-untyped-def]
    found = len(await rows(gw, sa.select(readings.c.id)))
    return found if found >= wanted else None


async def _true(value: bool) -> bool:
    return value
