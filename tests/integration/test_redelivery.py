"""A QoS 1 redelivery of a payload without a timestamp changes nothing.

The gateway talks to a real Mosquitto through a proxy that loses its PUBACKs, then cuts the
connection: on the reconnect the broker really sends the messages again (DUP set).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.app import Gateway
from gateway.config import Settings
from gateway.store.tables import alerts, readings
from tests.conftest import mqtt_host_port
from tests.fakes.mqtt_proxy import MqttProxy
from tests.integration.harness import (
    Publisher,
    eventually,
    isolated_settings,
    register,
    rows,
    running,
)

pytestmark = pytest.mark.mqtt


@pytest.fixture
async def proxy(mqtt_url: str) -> AsyncIterator[MqttProxy]:
    proxy = await MqttProxy(*mqtt_host_port(mqtt_url)).start()
    yield proxy
    await proxy.close()


@pytest.fixture
def settings(proxy: MqttProxy, sqlite_url: str, unique_id: str) -> Settings:
    return isolated_settings(proxy.url, sqlite_url, unique_id)


async def redelivered(gateway: Gateway, wanted: int) -> bool:
    name = "iot_gateway_redelivered_messages_total"
    return (gateway.metrics.registry.get_sample_value(name) or 0.0) >= wanted


async def stored(gateway: Gateway) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return await rows(gateway, sa.select(readings)), await rows(gateway, sa.select(alerts))


async def send_unstamped_and_lose_the_acks(
    gateway: Gateway, proxy: MqttProxy, mqtt_url: str, unique_id: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A call for help and a meter total, neither with a timestamp, stored by the gateway
    whose acknowledgements never reach the broker."""
    await register(gateway)
    proxy.drop_pubacks = True
    publisher = Publisher(mqtt_url)
    try:
        publisher.send(f"{unique_id}/homes/H001/btn-1/event", {"event": "sos"})
        publisher.send(f"{unique_id}/homes/H001/water-1/telemetry", {"water_total_l": 1234.5})
    finally:
        publisher.close()

    async def both_stored() -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
        # Wait for the dispatcher too: its open -> notified is not the redelivery's doing.
        found = await stored(gateway)
        settled = [alert["status"] for alert in found[1]] == ["notified"]
        return found if len(found[0]) == 2 and settled and proxy.dropped >= 2 else None

    first = await eventually(both_stored)
    proxy.drop_pubacks = False
    return first


async def test_a_redelivery_after_a_lost_connection_changes_nothing(
    proxy: MqttProxy, settings: Settings, mqtt_url: str, unique_id: str
):
    async with running(settings) as gateway:
        before = await send_unstamped_and_lose_the_acks(gateway, proxy, mqtt_url, unique_id)
        await proxy.cut()  # paho reconnects; the broker sends both again
        await eventually(lambda: redelivered(gateway, 2), within=15)
        after = await stored(gateway)
    assert after == before
    (alert,) = after[1]
    assert alert["occurrences"] == 1


async def test_a_redelivery_to_a_restarted_gateway_changes_nothing(
    proxy: MqttProxy, settings: Settings, mqtt_url: str, unique_id: str
):
    async with running(settings) as gateway:
        before = await send_unstamped_and_lose_the_acks(gateway, proxy, mqtt_url, unique_id)
        proxy.drop_pubacks = True  # the last acknowledgements are lost on the way out too
    proxy.drop_pubacks = False
    async with running(settings) as gateway:  # same session: the broker sends both again
        await eventually(lambda: redelivered(gateway, 2), within=15)
        after = await stored(gateway)
    assert after == before
