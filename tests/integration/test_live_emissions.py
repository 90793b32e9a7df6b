"""Every kind of committed change reaches the live feed, and nothing rolled back does: the
emission points (store functions noting on their connection) on a real database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.app import Gateway
from gateway.clock import ManualClock
from gateway.live.hub import Subscriber, Visible
from gateway.store.visits import VisitMethod, add_visit
from tests.integration.harness import HOUSEHOLD, api_client, inbound, offline_gateway, register

TOKEN = "emission-token-0123456789"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
Frame = dict[str, Any]


async def everything() -> Visible:
    return None


@asynccontextmanager
async def listening(gateway: Gateway) -> AsyncIterator[Subscriber]:
    """The gateway's live feed running, and an admin's subscription to it."""
    task = asyncio.create_task(gateway.live.run())
    try:
        with gateway.live.subscribe(None, everything) as subscriber:
            yield subscriber
    finally:
        gateway.live.stop()
        await asyncio.wait_for(task, 5)


async def heard(subscriber: Subscriber, match: Callable[[Frame], bool], within: float = 2) -> Frame:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        frame = await asyncio.wait_for(subscriber.next_frame(), deadline - loop.time())
        assert frame is not None
        if match(frame):
            return frame


def change(kind: str) -> Callable[[Frame], bool]:
    return lambda f: any(a["change"] == kind for a in f.get("alerts", ()))


async def test_alert_changes_from_ingest_escalation_sms_and_api_each_reach_the_feed(
    database_url: str, unique_id: str
):
    clock = ManualClock(T0)
    async with offline_gateway(database_url, unique_id, clock=clock) as gateway:
        await register(gateway, HOUSEHOLD)
        async with listening(gateway) as feed, api_client(gateway, TOKEN) as client:
            topic = f"{unique_id}/homes/H001/smoke-1/telemetry"
            smoke = {"kind": "smoke_detector", "smoke": True}
            await gateway.pipeline.process([inbound(topic, smoke, T0)])
            opened = await heard(feed, change("opened"))
            alert_id = opened["alerts"][0]["id"]
            assert opened["alerts"][0]["severity"] == "critical"
            # A repeat of the same alarm.
            await gateway.pipeline.process([inbound(topic, smoke, T0 + timedelta(seconds=5))])
            await heard(feed, change("updated"))
            # Nobody answered: the next step runs.
            clock.advance(timedelta(minutes=10))
            assert await gateway.escalator.run_due()
            await heard(feed, change("escalated"))
            # The visitor replies "1" by SMS.
            assert await gateway.responses.sms_reply("+8613900000000", "1")
            acked = await heard(feed, change("acknowledged"))
            assert acked["alerts"][0]["status"] == "acknowledged"
            reply = await client.post(f"/api/alerts/{alert_id}/arrive", headers=ADMIN)
            assert reply.status_code == 200, reply.text
            await heard(feed, change("arrived"))
            reply = await client.post(
                f"/api/alerts/{alert_id}/resolve", json={"note": "做饭冒烟"}, headers=ADMIN
            )
            assert reply.status_code == 200, reply.text
            resolved = await heard(feed, change("resolved"))
            assert resolved["alerts"][0]["status"] == "resolved"
            assert "H001" in resolved["households"]  # the alert was filed as a visit


async def test_visits_warnings_devices_and_the_registry_reach_the_feed(
    database_url: str, unique_id: str
):
    async with offline_gateway(database_url, unique_id, clock=ManualClock(T0)) as gateway:
        await register(gateway, HOUSEHOLD)
        async with listening(gateway) as feed, api_client(gateway, TOKEN) as client:
            topic = f"{unique_id}/homes/H001/power-1/telemetry"
            reading = {"kind": "power_meter", "power_w": 850.0}
            await gateway.pipeline.process([inbound(topic, reading, T0)])
            await heard(feed, lambda f: f["households"] == ["H001"])
            async with gateway.db.begin() as conn:
                await file_a_phone_visit(conn)
            await heard(feed, lambda f: f["households"] == ["H001"])
            warning = {
                "title": "台风红色预警",
                "body": "今夜台风登陆。",
                "kind": "typhoon",
                "level": "red",
                "county": "某县",
                "township": "某镇",
            }
            issued = await client.post("/api/warnings", json=warning, headers=ADMIN)
            assert issued.status_code == 201, issued.text
            warning_id = issued.json()["id"]
            marked = await client.post(
                f"/api/warnings/{warning_id}/checks",
                json={"household_id": "H001", "status": "safe"},
                headers=ADMIN,
            )
            assert marked.status_code == 200, marked.text
            await heard(feed, lambda f: f["warnings"] == [warning_id])
            other = {
                "id": "H002",
                "elder": {"name": "刘淑珍"},
                "address": {"county": "某县", "township": "另一镇", "village": "西村"},
            }
            created = await client.post("/api/households", json=other, headers=ADMIN)
            assert created.status_code == 201, created.text
            await heard(feed, lambda f: "H002" in f["households"])


async def file_a_phone_visit(conn: AsyncConnection) -> None:
    await add_visit(
        conn,
        household_id="H001",
        method=VisitMethod.PHONE,
        visited_at=T0,
        visitor="李敏",
        summary="电话探访",
        details={},
        now=T0,
        by="admin",
    )


async def file_a_visit_then_fail(gateway: Gateway) -> None:
    async with gateway.db.begin() as conn:
        await file_a_phone_visit(conn)
        raise RuntimeError("refused after the visit was written")


async def test_a_change_rolled_back_is_never_heard(sqlite_url: str, unique_id: str):
    async with offline_gateway(sqlite_url, unique_id) as gateway:
        await register(gateway, HOUSEHOLD)
        async with listening(gateway) as feed:
            with pytest.raises(RuntimeError):
                await file_a_visit_then_fail(gateway)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(feed.next_frame(), 0.6)
