"""GET /api/live against gateways served by uvicorn, on a real broker and database: sign-in,
alerts and device changes within a second, scope, and (PostgreSQL) across processes."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from gateway.alerts.notifiers.console import ConsoleNotifier
from gateway.api.routers import live as live_route
from gateway.app import Gateway
from gateway.live.bus import PostgresBus
from gateway.live.events import Changed
from gateway.live.feed import LiveFeed
from gateway.live.hub import Visible
from gateway.observability import GatewayMetrics
from gateway.store.database import create_engine
from tests.integration.harness import HOUSEHOLD, Publisher, eventually, isolated_settings, register

pytestmark = pytest.mark.mqtt

TOKEN = "live-test-token-0123456789"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
ELSEWHERE = {
    "id": "H002",
    "elder": {"name": "刘淑珍"},
    "address": {"county": "某县", "township": "另一镇", "village": "西村"},
    "visitors": [{"name": "赵磊", "phone": "+8613900000009"}],
}
Frame = dict[str, Any]


@asynccontextmanager
async def serving(mqtt_url: str, database_url: str, prefix: str) -> AsyncIterator[Gateway]:
    """A gateway running in this event loop with its HTTP API on a free port."""
    settings = isolated_settings(mqtt_url, database_url, prefix, http={"port": 0})
    gateway = Gateway(settings, notifier=ConsoleNotifier(io.StringIO()))
    await gateway.prepare()
    stop = asyncio.Event()
    task = asyncio.create_task(gateway.run(stop, admin_token=TOKEN))
    try:
        assert await gateway.ingest.wait_subscribed(10), "gateway did not subscribe"
        while gateway.http is None or not gateway.http.started:
            await asyncio.sleep(0.02)
        yield gateway
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
        await gateway.close()


def ws_url(gateway: Gateway) -> str:
    return f"ws://127.0.0.1:{gateway.http_port}/api/live"


def api(gateway: Gateway) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.http_port}", timeout=5)


@asynccontextmanager
async def signed_in(gateway: Gateway, token: str = TOKEN) -> AsyncIterator[ClientConnection]:
    async with connect(ws_url(gateway)) as ws:
        await ws.send(json.dumps({"token": token}))
        hello = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert hello["type"] == "hello"
        yield ws


async def frame_where(
    ws: ClientConnection, match: Callable[[Frame], bool], *, within: float
) -> Frame:
    """The first frame `match` accepts, arriving within `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        frame: Frame = json.loads(await asyncio.wait_for(ws.recv(), deadline - loop.time()))
        if match(frame):
            return frame


def alert_change(change: str, severity: str | None = None) -> Callable[[Frame], bool]:
    return lambda f: any(
        a["change"] == change and (severity is None or a["severity"] == severity)
        for a in f.get("alerts", ())
    )


def smoke(prefix: str, household: str = "H001") -> tuple[str, dict[str, Any]]:
    topic = f"{prefix}/homes/{household}/smoke-1/telemetry"
    return topic, {"kind": "smoke_detector", "smoke": True}


async def test_a_missing_bad_or_late_token_is_closed_with_4401(
    mqtt_url: str, sqlite_url: str, unique_id: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(live_route, "SIGN_IN_TIMEOUT_S", 0.3)
    async with serving(mqtt_url, sqlite_url, unique_id) as gateway:
        for first in (json.dumps({"token": "not-a-token"}), "hello", json.dumps({"t": 1}), None):
            async with connect(ws_url(gateway)) as ws:
                if first is not None:
                    await ws.send(first)
                with pytest.raises(ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), 5)
            assert closed.value.rcvd is not None
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4401, "unauthorized")
        async with connect(ws_url(gateway)) as ws:
            await ws.send(json.dumps({"token": "x" * 1024 * 1024}))  # refused unread
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1009  # message too big
        async with connect(ws_url(gateway)) as ws:
            await ws.send(json.dumps({"token": TOKEN}))
            hello = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert hello == {"type": "hello", "name": "admin", "role": "admin", "township": None}


async def test_a_smoke_alarm_arrives_opened_within_1s_and_its_acknowledgement_follows(
    mqtt_url: str, database_url: str, unique_id: str, publisher: Publisher
):
    async with serving(mqtt_url, database_url, unique_id) as gateway:
        await register(gateway, HOUSEHOLD)
        async with signed_in(gateway) as ws, api(gateway) as client:
            loop = asyncio.get_running_loop()
            sent = loop.time()
            publisher.send(*smoke(unique_id))
            frame = await frame_where(ws, alert_change("opened", "critical"), within=1.0)
            assert loop.time() - sent < 1.0
            opened = next(a for a in frame["alerts"] if a["change"] == "opened")
            assert opened["household_id"] == "H001"
            assert opened["rule"] == "smoke_alarm"
            assert opened["status"] in {"open", "notified"}
            reply = await client.post(f"/api/alerts/{opened['id']}/ack", headers=ADMIN)
            assert reply.status_code == 200, reply.text
            acked = await frame_where(ws, alert_change("acknowledged"), within=1.0)
            entry = next(a for a in acked["alerts"] if a["change"] == "acknowledged")
            assert (entry["id"], entry["status"]) == (opened["id"], "acknowledged")
            # A device reading: the household's tiles change.
            publisher.send(
                f"{unique_id}/homes/H001/power-1/telemetry",
                {"kind": "power_meter", "power_w": 850.0},
            )
            await frame_where(ws, lambda f: "H001" in f.get("households", ()), within=1.0)
            metrics = (await client.get("/metrics")).text
            assert "iot_gateway_live_clients 1.0" in metrics
            assert 'iot_gateway_live_events_total{kind="alerts"}' in metrics


async def test_a_visitor_hears_of_their_elders_only(
    mqtt_url: str, sqlite_url: str, unique_id: str, publisher: Publisher
):
    async with serving(mqtt_url, sqlite_url, unique_id) as gateway, api(gateway) as client:
        await register(gateway, HOUSEHOLD)
        await register(gateway, ELSEWHERE)
        tokens = {}
        for name, body in {
            "visitor": {"name": "李敏", "role": "visitor", "phone": "+8613900000000"},
            "operator": {"name": "值班员", "role": "operator", "township": "某镇"},
        }.items():
            reply = await client.post("/api/accounts", json=body, headers=ADMIN)
            assert reply.status_code == 201, reply.text
            tokens[name] = reply.json()["token"]
        async with (
            signed_in(gateway, tokens["visitor"]) as visitor,
            signed_in(gateway, tokens["operator"]) as operator,
        ):
            publisher.send(*smoke(unique_id, "H002"))
            publisher.send(*smoke(unique_id, "H001"))
            for ws in (visitor, operator):
                seen: list[Frame] = []

                def h001_opened(f: Frame, seen: list[Frame] = seen) -> bool:
                    seen.append(f)
                    return alert_change("opened")(f)

                await frame_where(ws, h001_opened, within=2.0)
                # Whatever else comes within a moment is H001's too.
                with pytest.raises(TimeoutError):
                    await frame_where(ws, h001_opened, within=0.5)
                heard = {a["household_id"] for f in seen for a in f.get("alerts", ())}
                heard |= {h for f in seen for h in f.get("households", ())}
                assert heard == {"H001"}


@pytest.mark.postgres
async def test_an_alert_change_committed_in_one_process_reaches_a_client_of_another(
    mqtt_url: str, postgres_url: str, unique_id: str, publisher: Publisher
):
    async with (
        serving(mqtt_url, postgres_url, unique_id) as ingesting,
        serving(mqtt_url, postgres_url, f"{unique_id}-b") as other,
    ):
        await register(ingesting, HOUSEHOLD)
        async with signed_in(other) as far, signed_in(ingesting) as near:
            publisher.send(*smoke(unique_id))
            frame = await frame_where(far, alert_change("opened", "critical"), within=2.0)
            alert_id = next(a["id"] for a in frame["alerts"] if a["change"] == "opened")
            async with api(other) as client:
                reply = await client.post(f"/api/alerts/{alert_id}/ack", headers=ADMIN)
                assert reply.status_code == 200, reply.text
            await frame_where(near, alert_change("acknowledged"), within=2.0)


@pytest.mark.postgres
async def test_after_the_listen_connection_is_lost_every_client_is_told_to_resync(
    mqtt_url: str, postgres_url: str, unique_id: str, publisher: Publisher
):
    async with serving(mqtt_url, postgres_url, unique_id) as gateway:
        await register(gateway, HOUSEHOLD)
        bus = gateway.live.bus
        assert isinstance(bus, PostgresBus)
        await asyncio.wait_for(bus.listening.wait(), 5)
        lost = bus.listener_pid
        async with signed_in(gateway) as ws:
            async with gateway.db.connect() as conn:
                await conn.execute(sa.select(sa.func.pg_terminate_backend(lost)))
            await frame_where(ws, lambda f: f["type"] == "resync", within=15.0)
            assert bus.listener_pid not in (None, lost)
            # Listening again: changes flow as before.
            publisher.send(*smoke(unique_id))
            await frame_where(ws, alert_change("opened", "critical"), within=2.0)


@pytest.mark.postgres
async def test_a_change_too_large_for_one_notification_arrives_whole_in_another_process(
    postgres_url: str,
):
    engines = [create_engine(postgres_url) for _ in range(2)]
    feeds = [LiveFeed(engine, GatewayMetrics()) for engine in engines]
    tasks = [asyncio.create_task(feed.run()) for feed in feeds]
    try:
        for feed in feeds:
            assert isinstance(feed.bus, PostgresBus)
            await asyncio.wait_for(feed.bus.listening.wait(), 5)

        async def everything() -> Visible:
            return None

        with feeds[1].subscribe(None, everything) as far:
            households = frozenset(f"户{n:05}" for n in range(3000))  # ~30 KB of ids
            feeds[0].publish(Changed(households=households))
            heard: set[str] = set()
            while heard != households:
                frame = await asyncio.wait_for(far.next_frame(), 5)
                assert frame is not None
                assert frame["type"] == "changes"
                heard.update(frame["households"])
    finally:
        for feed in feeds:
            feed.stop()
        await asyncio.gather(*tasks)
        for engine in engines:
            await engine.dispose()


async def test_a_gateway_stopping_closes_its_feeds_with_1012(
    mqtt_url: str, sqlite_url: str, unique_id: str
):
    loop = asyncio.get_running_loop()
    async with serving(mqtt_url, sqlite_url, unique_id) as gateway:
        signed = await connect(ws_url(gateway))
        await signed.send(json.dumps({"token": TOKEN}))
        await asyncio.wait_for(signed.recv(), 5)
        waiting = await connect(ws_url(gateway))  # not signed in yet
        stopping = loop.time()
    assert loop.time() - stopping < 5, "the open feeds held the gateway's shutdown up"
    for ws in (signed, waiting):
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1012


@pytest.mark.postgres
async def test_settings_changed_through_one_process_reach_the_others_detector(
    mqtt_url: str, postgres_url: str, unique_id: str
):
    """The detector owning a household may run in another process than the API that changed
    its rules: it hears of the change through the live feed and reloads them."""
    async with (
        serving(mqtt_url, postgres_url, unique_id) as changing,
        serving(mqtt_url, postgres_url, f"{unique_id}-b") as other,
    ):
        await register(changing, HOUSEHOLD)
        async with api(changing) as client:
            reply = await client.put(
                "/api/households/H001/rules",
                json={"no_water_use": {"window_h": 20}},
                headers=ADMIN,
            )
            assert reply.status_code == 200, reply.text

        async def reloaded() -> bool:
            rules = other.detector.engine.state("H001").rules
            return rules is not None and any(
                getattr(r.config, "window_h", None) == 20 for r in rules.rules
            )

        assert await eventually(reloaded, within=5.0)
