"""Device registry and device health over a real database, driven by a manual clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa

from gateway.app import Gateway
from gateway.clock import ManualClock
from gateway.ingest.mqtt import InboundMessage
from gateway.store.tables import alerts
from tests.integration.harness import HOUSEHOLD, api_client, offline_gateway

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T0 = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)


@pytest.fixture
async def gateway(database_url: str, unique_id: str) -> AsyncIterator[Gateway]:
    async with offline_gateway(database_url, unique_id, clock=ManualClock(T0)) as gw:
        yield gw


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(gateway, TOKEN) as c:
        await c.post("/api/households", json=HOUSEHOLD, headers=AUTH)
        yield c


def message(topic: str, payload: str, at: datetime) -> InboundMessage:
    return InboundMessage(topic, payload.encode(), 1, 1, False, at)


async def active_alerts(gateway: Gateway) -> list[dict[str, object]]:
    async with gateway.db.connect() as conn:
        rows = await conn.execute(sa.select(alerts).where(alerts.c.status != "resolved"))
        return [dict(r._mapping) for r in rows]


async def test_installed_smoke_alarm_that_never_reports_is_flagged_then_cleared(
    gateway: Gateway, client: httpx.AsyncClient, unique_id: str
):
    clock = gateway.clock
    assert isinstance(clock, ManualClock)
    put = await client.put(
        "/api/households/H001/devices/smoke-1",
        json={"kind": "smoke_detector", "label": "厨房烟感"},
        headers=AUTH,
    )
    assert put.status_code == 200, put.text
    assert put.json()["never_reported"] is True
    assert put.json()["review"] == "confirmed"

    clock.advance(timedelta(hours=24))
    await gateway.detector.tick()
    assert await active_alerts(gateway) == []

    clock.advance(timedelta(hours=2))
    await gateway.detector.tick()
    (flagged,) = await active_alerts(gateway)
    assert (flagged["rule_id"], flagged["device_id"], flagged["severity"]) == (
        "device_offline",
        "smoke-1",
        "high",
    )
    assert flagged["summary"] == "never reported since installation"

    # The installer fixes it: the detector reports, and the alert resolves itself.
    await gateway.pipeline.process(
        [message(f"{unique_id}/homes/H001/smoke-1/telemetry", '{"smoke": false}', clock.now())]
    )
    await gateway.detector.follow()  # on PostgreSQL the detector reads it back from the table
    assert await active_alerts(gateway) == []
    detail = (await client.get("/api/households/H001", headers=AUTH)).json()
    (device,) = detail["devices"]
    assert device["never_reported"] is False
    assert device["label"] == "厨房烟感"
    assert device["kind"] == "smoke_detector"  # installed kind, not guessed
    assert device["state"]["smoke"]["value"] is False


async def test_discovered_device_is_new_for_review_and_confirmable(
    gateway: Gateway, client: httpx.AsyncClient, unique_id: str
):
    await gateway.pipeline.process(
        [message(f"{unique_id}/homes/H001/leak-1/telemetry", '{"water_leak": false}', T0)]
    )
    (device,) = (await client.get("/api/households/H001", headers=AUTH)).json()["devices"]
    assert (device["kind"], device["review"], device["source"]) == (
        "water_leak_sensor",
        "new",
        "native",
    )
    confirmed = await client.put(
        "/api/households/H001/devices/leak-1", json={"kind": "water_leak_sensor"}, headers=AUTH
    )
    assert confirmed.json()["review"] == "confirmed"
    assert confirmed.json()["first_seen"] is not None


async def test_a_silent_meter_is_flagged_and_clears_when_heard(
    gateway: Gateway, client: httpx.AsyncClient, unique_id: str
):
    clock = gateway.clock
    assert isinstance(clock, ManualClock)
    topic = f"{unique_id}/homes/H001/water-1/telemetry"
    await gateway.pipeline.process([message(topic, '{"water_total_l": 10.0}', T0)])
    await gateway.detector.follow()  # on PostgreSQL the detector reads it back from the table
    clock.advance(timedelta(minutes=50))
    await gateway.detector.tick()
    assert await active_alerts(gateway) == []
    clock.advance(timedelta(minutes=20))
    await gateway.detector.tick()
    (silent,) = await active_alerts(gateway)
    assert silent["summary"] == "silent for longer than allowed"
    await gateway.pipeline.process([message(topic, '{"water_total_l": 11.0}', clock.now())])
    await gateway.detector.follow()
    assert await active_alerts(gateway) == []


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/api/households/H404/devices/d1", {"kind": "smoke_detector"}, 404),
        ("/api/households/H001/devices/d1", {"kind": "toaster"}, 422),
        ("/api/households/H001/devices/a+b", {"kind": "smoke_detector"}, 422),
        ("/api/households/H001/devices/d1", {"kind": "smoke_detector", "x": 1}, 422),
    ],
)
async def test_bad_device_registrations_are_refused(
    client: httpx.AsyncClient, path: str, body: dict[str, object], status: int
):
    assert (await client.put(path, json=body, headers=AUTH)).status_code == status
