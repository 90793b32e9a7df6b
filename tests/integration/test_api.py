"""The HTTP API over a real database (the ASGI app called in-process through httpx)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from gateway.app import Gateway
from gateway.models import DeviceKind, Finding, FindingAction, Metric, Reading, Severity
from gateway.store.dead_letters import DeadLetter, insert_dead_letters
from tests.integration.harness import HOUSEHOLD, api_client, offline_gateway

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T0 = datetime(2026, 11, 29, 5, 52, tzinfo=UTC)


@pytest.fixture
async def gateway(database_url: str, unique_id: str) -> AsyncIterator[Gateway]:
    async with offline_gateway(database_url, unique_id) as gw:
        yield gw


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(gateway, TOKEN) as c:
        yield c


async def open_smoke_alert(gateway: Gateway, household: str = "H001") -> int:
    finding = Finding(
        rule_id="smoke_alarm",
        household_id=household,
        device_id="smoke-1",
        severity=Severity.CRITICAL,
        action=FindingAction.OPEN,
        ts=datetime(2026, 11, 29, 5, 52, tzinfo=UTC),
        summary="smoke detected",
        evidence={"metric": "smoke", "value": True},
    )
    async with gateway.db.begin() as conn:
        applied = await gateway.book.apply(conn, [finding])
    return applied.opened[0]


async def test_every_resource_needs_the_token(client: httpx.AsyncClient):
    for method, path in [
        ("GET", "/api/households"),
        ("POST", "/api/households"),
        ("GET", "/api/households/H001"),
        ("GET", "/api/alerts"),
        ("POST", "/api/alerts/1/ack"),
        ("POST", "/api/alerts/1/resolve"),
    ]:
        response = await client.request(method, path)
        assert response.status_code == 401, (method, path)
        assert response.headers["www-authenticate"] == "Bearer"
    wrong = await client.get("/api/alerts", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401


async def test_health_needs_no_token_and_reports_components(client: httpx.AsyncClient):
    response = await client.get("/api/health")
    body = response.json()
    # The broker is not connected in this test, so the gateway is degraded.
    assert response.status_code == 503
    assert body["status"] == "degraded"
    assert body["database"]["ok"] is True
    assert body["broker"]["ok"] is False
    assert body["broker"]["detail"].startswith("mqtt://127.0.0.1")


async def test_metrics_are_prometheus_text(client: httpx.AsyncClient, gateway: Gateway):
    await client.post("/api/households", json=HOUSEHOLD, headers=AUTH)
    await open_smoke_alert(gateway)
    text = (await client.get("/metrics")).text
    for name in (
        "iot_gateway_readings_total",
        "iot_gateway_dead_letters_total",
        "iot_gateway_notifications_total",
        "iot_gateway_ingest_lag_seconds",
    ):
        assert f"# TYPE {name.removesuffix('_total')}" in text, name
    assert 'iot_gateway_alerts_open{severity="critical"} 1.0' in text


async def test_metrics_show_the_rule_tick_and_saved_rule_state(
    client: httpx.AsyncClient, gateway: Gateway
):
    await client.post("/api/households", json=HOUSEHOLD, headers=AUTH)
    ts = datetime(2026, 11, 29, 5, 52, tzinfo=UTC)
    reading = Reading("H001", "door-1", DeviceKind.DOOR_SENSOR, Metric.DOOR_OPEN, True, None, ts)
    gateway.detector.engine.on_reading(reading)  # the household's activity log changed
    await gateway.detector.tick()
    assert await gateway.detector.save_state() == 1
    text = (await client.get("/metrics")).text
    assert "iot_gateway_rule_tick_seconds_count 1.0" in text
    assert "iot_gateway_rule_state_saved_total 1.0" in text


async def test_register_and_read_households(client: httpx.AsyncClient):
    created = await client.post("/api/households", json=HOUSEHOLD, headers=AUTH)
    assert created.status_code == 201, created.text
    again = await client.post("/api/households", json=HOUSEHOLD, headers=AUTH)
    assert again.status_code == 409

    listed = (await client.get("/api/households", headers=AUTH)).json()
    assert [h["id"] for h in listed] == ["H001"]
    # Lists mask phone numbers.
    assert listed[0]["elder_phone"] == "+86138****0000"
    assert listed[0]["visitors"][0] == {"name": "李敏", "phone": "+86139****0000", "relation": None}

    detail = (await client.get("/api/households/H001", headers=AUTH)).json()
    assert detail["address"]["village"] == "某村"
    assert detail["relatives"][0]["relation"] == "son"
    assert detail["devices"] == []
    assert detail["active_alerts"] == 0
    missing = await client.get("/api/households/H404", headers=AUTH)
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"id": "H/1"}, "id"),
        ({"id": "#"}, "id"),
        ({"elder": {"name": ""}}, "name"),
        ({"visitors": [{"name": "李敏", "phone": "call me"}]}, "phone"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
async def test_invalid_household_is_refused_with_the_field(
    client: httpx.AsyncClient, change: dict[str, object], field: str
):
    response = await client.post("/api/households", json={**HOUSEHOLD, **change}, headers=AUTH)
    assert response.status_code == 422
    assert field in response.text


async def test_alert_list_ack_and_resolve(client: httpx.AsyncClient, gateway: Gateway):
    await client.post("/api/households", json=HOUSEHOLD, headers=AUTH)
    alert_id = await open_smoke_alert(gateway)

    listed = (await client.get("/api/alerts", headers=AUTH)).json()
    assert listed[0]["id"] == alert_id
    assert {
        k: listed[0][k] for k in ("rule", "severity", "status", "household_id", "device_id")
    } == {
        "rule": "smoke_alarm",
        "severity": "critical",
        "status": "open",
        "household_id": "H001",
        "device_id": "smoke-1",
    }
    assert listed[0]["opened_at"].startswith("2026-11-29T05:52:00")

    acked = await client.post(f"/api/alerts/{alert_id}/ack", json={"by": "李敏"}, headers=AUTH)
    assert acked.json()["status"] == "acknowledged"
    assert acked.json()["acknowledged_by"] == "李敏"

    no_note = await client.post(f"/api/alerts/{alert_id}/resolve", json={}, headers=AUTH)
    assert no_note.status_code == 422
    resolved = await client.post(
        f"/api/alerts/{alert_id}/resolve", json={"note": "厨房烧水，已确认安全"}, headers=AUTH
    )
    assert resolved.json()["status"] == "resolved"
    assert resolved.json()["resolution_note"] == "厨房烧水，已确认安全"
    again = await client.post(f"/api/alerts/{alert_id}/ack", headers=AUTH)
    assert again.status_code == 409

    by_status = await client.get("/api/alerts?status=open&status=notified", headers=AUTH)
    assert by_status.json() == []
    by_household = await client.get("/api/alerts?household=H001", headers=AUTH)
    assert len(by_household.json()) == 1
    bad_status = await client.get("/api/alerts?status=bogus", headers=AUTH)
    assert bad_status.status_code == 422

    detail = (await client.get(f"/api/alerts/{alert_id}", headers=AUTH)).json()
    assert [e["event"] for e in detail["history"]] == [
        "opened",
        "notifying",
        "acknowledged",
        "resolved",
    ]
    assert detail["notifications"][0]["recipient_name"] == "李敏"
    # Nothing was sending here, so the message still pending at resolution is cancelled.
    assert detail["notifications"][0]["status"] == "cancelled"


async def test_unknown_alert_is_404(client: httpx.AsyncClient):
    assert (await client.post("/api/alerts/999/ack", headers=AUTH)).status_code == 404
    assert (await client.get("/api/alerts/999", headers=AUTH)).status_code == 404


async def test_openapi_docs_are_served(client: httpx.AsyncClient):
    assert (await client.get("/docs")).status_code == 200
    spec = (await client.get("/openapi.json")).json()
    assert "/api/alerts/{alert_id}/ack" in spec["paths"]


async def test_dead_letters_are_listed_newest_first_and_filterable(
    client: httpx.AsyncClient, gateway: Gateway
):
    letters = [
        DeadLetter("homes/H001/x/telemetry", b"{oops", "invalid_json", "not JSON", T0),
        DeadLetter("homes/H9/x/telemetry", b"\xff\x00", "invalid_encoding", "not UTF-8", T0),
    ]
    async with gateway.db.begin() as conn:
        await insert_dead_letters(conn, letters)
    listed = (await client.get("/api/dead-letters", headers=AUTH)).json()
    assert [d["reason_code"] for d in listed] == ["invalid_encoding", "invalid_json"]
    assert listed[0]["payload"] == "\\xff\\x00"
    only_json = (await client.get("/api/dead-letters?reason=invalid_json", headers=AUTH)).json()
    assert [d["payload"] for d in only_json] == ["{oops"]
    assert (await client.get("/api/dead-letters")).status_code == 401
