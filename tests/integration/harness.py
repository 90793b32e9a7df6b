"""Helpers for integration tests: a gateway in-process, a publisher, polling."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import paho.mqtt.client as paho
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion

from gateway.alerts.notifiers.base import Notifier
from gateway.alerts.notifiers.console import ConsoleNotifier
from gateway.api.app import ApiOptions, create_api
from gateway.app import Core, Gateway
from gateway.care.households import HouseholdIn, create_household
from gateway.clock import Clock, ManualClock
from gateway.config import Settings, SourceSettings
from gateway.ingest.mqtt import InboundMessage
from gateway.observability import GatewayMetrics

T = TypeVar("T")

HOUSEHOLD = {
    "id": "H001",
    "elder": {"name": "张桂兰", "phone": "+8613800000000"},
    "address": {"county": "某县", "township": "某镇", "village": "某村", "detail": "3组12号"},
    "visitors": [{"name": "李敏", "phone": "+8613900000000"}],
    "relatives": [{"name": "王强", "phone": "+8613700000000", "relation": "son"}],
}


def isolated_settings(mqtt_url: str, database_url: str, prefix: str, **extra: Any) -> Settings:
    """Settings isolated from other tests: own client id and topic prefix."""
    return Settings(
        mqtt={"url": mqtt_url, "client_id": f"gw-{prefix}"},
        database={"url": database_url},
        sources=[
            SourceSettings(
                name="native",
                format="native",
                topics=[
                    f"{prefix}/homes/{{household}}/{{device}}/telemetry",
                    f"{prefix}/homes/{{household}}/{{device}}/event",
                    f"{prefix}/homes/{{household}}/{{device}}/status",
                ],
            )
        ],
        **extra,
    )


async def register(gateway: Gateway, body: dict[str, Any] | None = None) -> None:
    household = HouseholdIn.model_validate(body or HOUSEHOLD)
    async with gateway.db.begin() as conn:
        await create_household(conn, household, gateway.clock.now())
    await gateway.core.household_changed(household.id)


@asynccontextmanager
async def running(settings: Settings, notifier: Notifier | None = None) -> AsyncIterator[Gateway]:
    """A gateway running in this event loop, connected and subscribed."""
    gateway = Gateway(settings, notifier=notifier or ConsoleNotifier(io.StringIO()))
    gateway.dispatcher.sweep_interval_s = 0.2
    await gateway.prepare()
    stop = asyncio.Event()
    task = asyncio.create_task(gateway.run(stop, admin_token=None))
    try:
        assert await gateway.ingest.wait_subscribed(10), "gateway did not subscribe"
        yield gateway
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await gateway.close()


@asynccontextmanager
async def offline_gateway(
    database_url: str, prefix: str, *, clock: Clock | None = None
) -> AsyncIterator[Gateway]:
    """A prepared gateway that never contacts its broker: for the API and the database."""
    settings = isolated_settings("mqtt://127.0.0.1:1", database_url, prefix)
    gateway = Gateway(settings, clock=clock, notifier=ConsoleNotifier(io.StringIO()))
    await gateway.prepare()
    try:
        yield gateway
    finally:
        await gateway.close()


@asynccontextmanager
async def api_client(
    gateway: Gateway, token: str, options: ApiOptions | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client calling the gateway's API in process (no socket)."""
    transport = httpx.ASGITransport(app=create_api(gateway.api_context(token), options))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client


@asynccontextmanager
async def core_with_household(database_url: str, prefix: str, at: datetime) -> AsyncIterator[Core]:
    """The gateway's core (no broker, no dispatcher) on a manual clock at `at`, with HOUSEHOLD
    registered: for driving the pipeline and the detector directly."""
    settings = isolated_settings("mqtt://127.0.0.1:1", database_url, prefix)
    core = Core(settings, ManualClock(at), GatewayMetrics(), lambda ids: None)
    await core.prepare()
    try:
        async with core.db.begin() as conn:
            await create_household(conn, HouseholdIn.model_validate(HOUSEHOLD), at)
        await core.household_changed(HOUSEHOLD["id"])
        yield core
    finally:
        await core.close()


def inbound(topic: str, payload: object, at: datetime, *, retain: bool = False) -> InboundMessage:
    """A message as ingest hands it to the pipeline (QoS 1); a payload that is not text is
    sent as JSON."""
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return InboundMessage(topic, data.encode(), 1, 1, retain, at)


class Publisher:
    """A device side: publishes with QoS 1 and waits for the broker's acknowledgement."""

    def __init__(self, mqtt_url: str) -> None:
        parts = urlsplit(mqtt_url)
        self.client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
        if parts.username:
            self.client.username_pw_set(parts.username, parts.password)
        self.client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
        self.client.loop_start()

    def send(self, topic: str, payload: object, *, retain: bool = False) -> None:
        data = payload if isinstance(payload, bytes | str) else json.dumps(payload)
        self.client.publish(topic, data, qos=1, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


async def eventually(
    check: Callable[[], Awaitable[T]], *, within: float = 10.0, interval: float = 0.05
) -> T:
    """Poll `check` until it returns something truthy; fail with the last value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {within} s (last: {value!r})")
        await asyncio.sleep(interval)


async def rows(gateway: Gateway, query: sa.Select[Any]) -> list[dict[str, Any]]:
    async with gateway.db.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(query)]
